package point

import (
	"errors"
	"slices"
	"testing"
)

func TestFormat(t *testing.T) {
	f := func(fm Format, name, ct string) {
		t.Helper()
		if got := fm.String(); got != name {
			t.Errorf("Format(%d).String() = %q, want %q", fm, got, name)
		}
		if got := fm.ContentType(); got != ct {
			t.Errorf("Format(%d).ContentType() = %q, want %q", fm, got, ct)
		}
		if ct != "" {
			if got, ok := ParseContentType(ct); !ok || got != fm {
				t.Errorf("ParseContentType(%q) = %v, %v; want %v", ct, got, ok, fm)
			}
		}
	}
	f(FormatLine, "line-protocol", "application/vnd.influx.line-protocol")
	f(FormatJSON, "json", "application/json")
	f(0, "Format(0)", "")
	f(7, "Format(7)", "")
}

func TestParseContentType(t *testing.T) {
	f := func(ct string, want Format, wantOK bool) {
		t.Helper()
		if got, ok := ParseContentType(ct); got != want || ok != wantOK {
			t.Errorf("ParseContentType(%q) = %v, %v; want %v, %v", ct, got, ok, want, wantOK)
		}
	}
	f("application/json", FormatJSON, true)
	f("Application/JSON; charset=utf-8", FormatJSON, true)
	f("  application/json ;charset=utf-8", FormatJSON, true)
	f("text/plain", FormatLine, true)
	f("text/plain; charset=utf-8", FormatLine, true)
	f("TEXT/PLAIN", FormatLine, true)
	f("application/vnd.influx.line-protocol", FormatLine, true)
	f("application/x-influx-line-protocol", FormatLine, true)
	f("text/x-influx-line-protocol; version=2", FormatLine, true)
	f("", 0, false)
	f(";charset=utf-8", 0, false)
	f("application/xml", 0, false)
	f("application/jsonx", 0, false)
	f("text/plainjson", 0, false)
}

func TestDetect(t *testing.T) {
	f := func(in string, want Format) {
		t.Helper()
		if got := Detect([]byte(in)); got != want {
			t.Errorf("Detect(%q) = %v, want %v", in, got, want)
		}
	}
	f(`{"measurement":"m"}`, FormatJSON)
	f(` [ ]`, FormatJSON)
	f("\r\n\t {", FormatJSON)
	f("cpu x=1", FormatLine)
	f("# {comment}\ncpu x=1", FormatLine)
	f("", FormatLine)
	f("   ", FormatLine)
	f("\v{", FormatLine) // vertical tab is not JSON white space
}

func TestDecode(t *testing.T) {
	line := []byte("cpu,host=a x=1 5\n")
	js := []byte(`{"measurement":"cpu","tags":{"host":"a"},"fields":{"x":1},"time":5}`)
	want := []string{`"cpu" ["host"="a"] {"x"=1} @5`}
	f := func(payload []byte, ct string) {
		t.Helper()
		got, err := Decoder{}.Decode(nil, payload, ct)
		if err != nil || !slices.Equal(dumpAll(got), want) {
			t.Errorf("Decode(%q, %q) = %q, %v", payload, ct, dumpAll(got), err)
		}
	}
	f(line, "")
	f(js, "")
	f(line, "text/plain; charset=utf-8")
	f(js, "application/json")

	// The content type wins over detection.
	_, err := Decoder{}.Decode(nil, js, "application/vnd.influx.line-protocol")
	var de *DecodeError
	if !errors.As(err, &de) || de.Format != FormatLine {
		t.Errorf("JSON payload decoded as line protocol: got %v", err)
	}
	_, err = Decoder{}.Decode(nil, line, "application/json")
	if !errors.As(err, &de) || de.Format != FormatJSON || !errors.Is(err, ErrSyntax) {
		t.Errorf("line payload decoded as JSON: got %v", err)
	}

	dst := []Point{{Measurement: "prior"}}
	got, err := Decoder{}.Decode(dst, line, "application/xml")
	if !errors.Is(err, ErrUnknownContentType) || !errors.As(err, &de) || de.Format != 0 || len(got) != 1 {
		t.Errorf("unknown content type: got %q, %v", dumpAll(got), err)
	}
}

func TestDecodeErrorText(t *testing.T) {
	f := func(e *DecodeError, want string) {
		t.Helper()
		if got := e.Error(); got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	}
	f(&DecodeError{Format: FormatLine, Line: 3, Offset: 57, Field: "usage", Reason: "NaN", Err: ErrNonFinite},
		`line-protocol: line 3, byte 57: key "usage": non-finite value: NaN`)
	f(&DecodeError{Format: FormatJSON, Offset: 12, Reason: "unterminated string", Err: ErrSyntax},
		`json: byte 12: syntax error: unterminated string`)
	f(&DecodeError{Reason: `"application/xml"`, Err: ErrUnknownContentType},
		`decode: unknown content type: "application/xml"`)
	f(&DecodeError{Format: FormatJSON, Field: "a\nb"}, `json: byte 0: key "a\nb": decode error`)

	// The decoders' own messages.
	_, err := Decoder{}.DecodeLine(nil, []byte("cpu x=1\ncpu,host=a usage=NaN"))
	if got, want := err.Error(), `line-protocol: line 2, byte 25: key "usage": non-finite value: NaN`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	_, err = Decoder{}.DecodeJSON(nil, []byte(`{"measurement":"m","fields":{"a":"x"}}`))
	if got, want := err.Error(), `json: byte 33: key "a": unsupported value: string field values are not supported; fields must be numbers or booleans`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDecoderConcurrentUse(t *testing.T) {
	// One Decoder value shared by goroutines; run with -race.
	d := Decoder{MaxMessageBytes: 4096}
	sp := samplePoint()
	line, js := AppendLine(nil, &sp), AppendJSON(nil, &sp)
	done := make(chan error)
	for i := range 4 {
		go func() {
			var dst []Point
			var err error
			for range 200 {
				payload := line
				if i%2 == 1 {
					payload = js
				}
				if dst, err = d.Decode(dst[:0], payload, ""); err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
