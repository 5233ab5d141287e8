package point

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	f := func(in string, want ...string) {
		t.Helper()
		got, err := Decoder{}.DecodeJSON(nil, []byte(in))
		if err != nil {
			t.Errorf("DecodeJSON(%s): %v", in, err)
			return
		}
		if g := dumpAll(got); !slices.Equal(g, want) {
			t.Errorf("DecodeJSON(%s)\n got %q\nwant %q", in, g, want)
		}
		for _, p := range got {
			if err := p.Validate(); err != nil {
				t.Errorf("DecodeJSON(%s) returned invalid point %s: %v", in, dump(p), err)
			}
		}
	}
	f(`{"measurement":"cpu","tags":{"host":"a","region":"eu"},"fields":{"usage":0.5,"up":true,"n":3},"time":1700000000000000000}`,
		`"cpu" ["host"="a" "region"="eu"] {"usage"=0.5 "up"=1 "n"=3} @1700000000000000000`)
	f(`[{"measurement":"cpu","fields":{"usage":0.5}},{"measurement":"mem","fields":{"used":1e9,"ok":false},"time":"2023-11-14T22:13:20.5Z"}]`,
		`"cpu" [] {"usage"=0.5} @0`, `"mem" [] {"used"=1e+09 "ok"=0} @1700000000500000000`)
	f(`{"measurement":"m","fields":{"v":1},"time":"2023-11-14T23:13:20+01:00"}`, `"m" [] {"v"=1} @1700000000000000000`)
	f(`{"measurement":"m","fields":{"v":1},"time":"2023-11-14T22:13:20.123456789Z"}`, `"m" [] {"v"=1} @1700000000123456789`)
	f(`{"measurement":"m","fields":{"v":1},"time":"1969-12-31T23:59:59Z"}`, `"m" [] {"v"=1} @-1000000000`)
	f(" \t\r\n{ \"measurement\" : \"m\" ,\n \"tags\" : null , \"fields\" : { \"v\" : 1 } , \"time\" : null }\n ",
		`"m" [] {"v"=1} @0`)
	f(`{"time":5,"fields":{"a":1},"tags":{"z":"1","a":"2"},"measurement":"m"}`, `"m" ["a"="2" "z"="1"] {"a"=1} @5`)
	f(`{"measurement":"m","tags":{},"fields":{"v":1}}`, `"m" [] {"v"=1} @0`)
	f(`{"measurement":"m","fields":{"a":-0,"b":1e21,"c":5e-324,"d":1.5E+3,"e":-1.25e-2,"f":0,"g":1e-400,"h":1.7976931348623157e308}}`,
		`"m" [] {"a"=-0 "b"=1e+21 "c"=5e-324 "d"=1500 "e"=-0.0125 "f"=0 "g"=0 "h"=1.7976931348623157e+308}`+" @0")
	f(`{"measurement":"m","fields":{"v":1},"time":-9223372036854775808}`, `"m" [] {"v"=1} @-9223372036854775808`)
	f(`{"measurement":"c\u00e9\ud83d\ude00\"\\\/ \u65E5","tags":{"k\u0020y":"a,b=c \\ x"},"fields":{"\u0076":1}}`,
		`"cé😀\"\\/ 日" ["k y"="a,b=c \\ x"] {"v"=1} @0`)
	f(`[{"measurement":"a","fields":{"v":1}} , {"measurement":"b","tags":{"k":"v"},"fields":{"v":2}}]`,
		`"a" [] {"v"=1} @0`, `"b" ["k"="v"] {"v"=2} @0`)
	f(`{"measurement":"time","tags":{"k":"time"},"fields":{"v":1}}`, `"time" ["k"="time"] {"v"=1} @0`)
}

func TestDecodeJSONErrors(t *testing.T) {
	prior := Point{Measurement: "prior", Fields: []Field{{"v", 1}}}
	f := func(in string, want error, offset int) {
		t.Helper()
		dst := []Point{prior}
		got, err := Decoder{}.DecodeJSON(dst, []byte(in))
		checkDecodeError(t, FormatJSON, in, err, want, 0, offset)
		if len(got) != 1 || got[0].Measurement != "prior" {
			t.Errorf("%s: dst changed on error: %q", in, dumpAll(got))
		}
	}
	const m = `{"measurement":"m",` // 19 bytes
	f("", ErrEmpty, 0)
	f("  \n", ErrEmpty, 3)
	f("[]", ErrEmpty, 0)
	f(" [ \n ] ", ErrEmpty, 1)
	f("[] x", ErrSyntax, 3)
	f(m+`"fields":{"a":1}} x`, ErrSyntax, 37)
	f(m+`"fields":{"a":1}}{}`, ErrSyntax, 36)
	f("x", ErrSyntax, 0)
	f("\x00", ErrSyntax, 0)
	f("[1]", ErrSyntax, 1)
	f("[[]]", ErrSyntax, 1)
	f(`[`+m+`"fields":{"a":1}},]`, ErrSyntax, 38)
	f(`[`+m+`"fields":{"a":1}}`, ErrSyntax, 37)
	f(`[`+m+`"fields":{"a":1}} {}]`, ErrSyntax, 38)
	f(m, ErrSyntax, 19)
	f(m+`}`, ErrSyntax, 19)
	f(`{"measurement" "m"}`, ErrSyntax, 15)
	f(`{'measurement':"m"}`, ErrSyntax, 1)
	f(`{measurement:"m"}`, ErrSyntax, 1)
	f(m+`"fields":{"a":1,}}`, ErrSyntax, 35)
	f(m+`"fields":{"a":1 "b":2}}`, ErrSyntax, 35)
	f(m+`"fields":{"a":1}`, ErrSyntax, 35)
	f(m+`"foo":1,"fields":{"a":1}}`, ErrSyntax, 19)
	f(m+`"Fields":{"a":1}}`, ErrSyntax, 19)
	f(m+`"fields":{"a":"x"}}`, ErrUnsupportedValue, 33)
	f(m+`"fields":{"a":null}}`, ErrUnsupportedValue, 33)
	f(m+`"fields":{"a":{}}}`, ErrUnsupportedValue, 33)
	f(m+`"fields":{"a":[1]}}`, ErrUnsupportedValue, 33)
	f(m+`"fields":{"a":nul}}`, ErrSyntax, 33)
	f(m+`"fields":{"a":tru}}`, ErrSyntax, 33)
	f(m+`"fields":{"a":truex}}`, ErrSyntax, 37)
	f(m+`"fields":{"a":NaN}}`, ErrSyntax, 33)
	f(m+`"fields":{"a":1e999}}`, ErrNonFinite, 33)
	f(m+`"fields":{"a":-1e400}}`, ErrNonFinite, 33)
	f(m+`"fields":{"a":01}}`, ErrSyntax, 34)
	f(m+`"fields":{"a":1.}}`, ErrSyntax, 33)
	f(m+`"fields":{"a":.5}}`, ErrSyntax, 33)
	f(m+`"fields":{"a":+1}}`, ErrSyntax, 33)
	f(m+`"fields":{"a":-}}`, ErrSyntax, 33)
	f(m+`"fields":{"a":1e}}`, ErrSyntax, 33)
	f(m+`"fields":{"a":1,"a":2}}`, ErrDuplicateKey, 35)
	f(m+`"fields":{"a":1},"fields":{"b":2}}`, ErrDuplicateKey, 36)
	f(m+`"measurement":"n","fields":{"a":1}}`, ErrDuplicateKey, 19)
	f(m+`"tags":{"k":"1","k":"2"},"fields":{"a":1}}`, ErrDuplicateKey, 35)
	f(m+`"tags":{},"tags":{},"fields":{"a":1}}`, ErrDuplicateKey, 29)
	f(`{"fields":{"a":1}}`, ErrInvalidName, 0)
	f(`{}`, ErrInvalidName, 0)
	f(m+`"fields":{}}`, ErrNoFields, 0)
	f(m+`"fields":null}`, ErrNoFields, 0)
	f(`{"measurement":"m"}`, ErrNoFields, 0)
	f(`[`+m+`"fields":{"a":1}},`+m+`"tags":{}}]`, ErrNoFields, 38)
	f(`{"measurement":1,"fields":{"a":1}}`, ErrUnsupportedValue, 15)
	f(`{"measurement":null,"fields":{"a":1}}`, ErrUnsupportedValue, 15)
	f(m+`"tags":[],"fields":{"a":1}}`, ErrUnsupportedValue, 26)
	f(m+`"tags":{"k":1},"fields":{"a":1}}`, ErrUnsupportedValue, 31)
	f(m+`"tags":{"k":null},"fields":{"a":1}}`, ErrUnsupportedValue, 31)
	f(m+`"fields":[1]}`, ErrUnsupportedValue, 28)
	f(m+`"fields":{"a":1},"time":1.5}`, ErrUnsupportedValue, 43)
	f(m+`"fields":{"a":1},"time":1e3}`, ErrUnsupportedValue, 43)
	f(m+`"fields":{"a":1},"time":true}`, ErrUnsupportedValue, 43)
	f(m+`"fields":{"a":1},"time":"yesterday"}`, ErrUnsupportedValue, 43)
	f(m+`"fields":{"a":1},"time":"2023-11-14 22:13:20Z"}`, ErrUnsupportedValue, 43)
	f(m+`"fields":{"a":1},"time":"3000-01-01T00:00:00Z"}`, ErrUnsupportedValue, 43)
	f(m+`"fields":{"a":1},"time":9223372036854775808}`, ErrUnsupportedValue, 43)
	f(m+`"fields":{"a":1},"time":x}`, ErrSyntax, 43)
	// Strings.
	f(`{"measurement":"m`, ErrSyntax, 15)
	f(`{"measurement":"m\"}`, ErrSyntax, 15)
	f("{\"measurement\":\"a\tb\",\"fields\":{\"a\":1}}", ErrSyntax, 17)
	f(`{"measurement":"a\xb","fields":{"a":1}}`, ErrSyntax, 17)
	f(`{"measurement":"a\u12","fields":{"a":1}}`, ErrSyntax, 17)
	f(`{"measurement":"a\u12G4","fields":{"a":1}}`, ErrSyntax, 17)
	f(`{"measurement":"a\ud800","fields":{"a":1}}`, ErrSyntax, 17)
	f(`{"measurement":"a\ud800\u0041","fields":{"a":1}}`, ErrSyntax, 17)
	f(`{"measurement":"a\udc00","fields":{"a":1}}`, ErrSyntax, 17)
	// Names.
	f(`{"measurement":"","fields":{"a":1}}`, ErrInvalidName, 15)
	f(`{"measurement":"a\nb","fields":{"a":1}}`, ErrInvalidName, 15)
	f(`{"measurement":"a\u0000","fields":{"a":1}}`, ErrInvalidName, 15)
	f(`{"measurement":"#m","fields":{"a":1}}`, ErrInvalidName, 15)
	f(`{"measurement":"m\\","fields":{"a":1}}`, ErrInvalidName, 15)
	f("{\"measurement\":\"m\xff\",\"fields\":{\"a\":1}}", ErrInvalidName, 15)
	f(m+`"tags":{"time":"x"},"fields":{"a":1}}`, ErrInvalidName, 27)
	f(m+`"tags":{"":"x"},"fields":{"a":1}}`, ErrInvalidName, 27)
	f(m+`"tags":{"k":""},"fields":{"a":1}}`, ErrInvalidName, 31)
	f(m+`"tags":{"k":"a\r"},"fields":{"a":1}}`, ErrInvalidName, 31)
	f(m+`"fields":{"time":1}}`, ErrInvalidName, 29)
	f(m+`"fields":{"a\\":1}}`, ErrInvalidName, 29)
}

func TestDecodeJSONTooLarge(t *testing.T) {
	in := `{"measurement":"m","fields":{"a":1}}`
	_, err := Decoder{MaxMessageBytes: 10}.DecodeJSON(nil, []byte(in))
	checkDecodeError(t, FormatJSON, in, err, ErrTooLarge, 0, 10)
}

func TestAppendJSON(t *testing.T) {
	f := func(p Point, want string) {
		t.Helper()
		got := AppendJSON(nil, &p)
		if string(got) != want {
			t.Errorf("AppendJSON(%s)\n got %s\nwant %s", dump(p), got, want)
		}
		if !json.Valid(got) {
			t.Errorf("AppendJSON(%s) is not valid JSON: %s", dump(p), got)
		}
	}
	f(Point{Measurement: "cpu", Fields: []Field{{"v", 1}}}, `{"measurement":"cpu","fields":{"v":1}}`)
	f(samplePoint(), `{"measurement":"cpu","tags":{"cpu":"cpu-total","host":"web-01.example.com","region":"eu-west-1"},"fields":{"usage_user":12.345,"usage_system":3.25,"usage_idle":84.405,"n":3},"time":1700000000123456789}`)
	f(Point{Measurement: "q\"b\\s/<>&\u2028é😀", Tags: []Tag{{"k", "v"}}, Fields: []Field{{"f", -1}}, Time: -5},
		`{"measurement":"q\"b\\s/<>&`+"\u2028"+`é😀","tags":{"k":"v"},"fields":{"f":-1},"time":-5}`)
	f(Point{Measurement: "m", Fields: []Field{
		{"a", math.Copysign(0, -1)}, {"b", 1e21}, {"c", 1e20}, {"d", 1e-7}, {"e", 1e-6}, {"f", 5e-324},
		{"g", math.MaxFloat64}, {"h", 123456789}, {"i", 0.1}, {"j", -1.5e-10},
	}}, `{"measurement":"m","fields":{"a":-0,"b":1e+21,"c":100000000000000000000,"d":1e-7,"e":0.000001,"f":5e-324,"g":1.7976931348623157e+308,"h":123456789,"i":0.1,"j":-1.5e-10}}`)
	// Invalid points still give valid JSON.
	f(Point{Measurement: "a\x00\n\r\t\x1f\xffb", Fields: []Field{{"n", math.NaN()}, {"i", math.Inf(-1)}}},
		`{"measurement":"a\u0000\n\r\t\u001f\ufffdb","fields":{"n":null,"i":null}}`)
	f(Point{}, `{"measurement":"","fields":{}}`)

	got := AppendJSONArray([]byte("x"), []Point{samplePoint(), {Measurement: "m", Fields: []Field{{"v", 2}}}})
	sp := samplePoint()
	if want := "x[" + string(AppendJSON(nil, &sp)) + `,{"measurement":"m","fields":{"v":2}}]`; string(got) != want {
		t.Errorf("AppendJSONArray = %s, want %s", got, want)
	}
	if got := string(AppendJSONArray(nil, nil)); got != "[]" {
		t.Errorf("AppendJSONArray(nil) = %s", got)
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	// Strings and numbers must read back through encoding/json unchanged.
	for _, s := range []string{"plain", "q\"b\\s", "é😀日本", "<>&", "\u2028\u2029", strings.Repeat("x", 100)} {
		var back string
		if err := json.Unmarshal(appendJSONString(nil, s), &back); err != nil || back != s {
			t.Errorf("string %q: got %q, %v", s, back, err)
		}
	}
	for _, v := range []float64{0, 1, -1, 0.1, 1e21, 1e-7, 1e20, 5e-324, math.MaxFloat64, 123.456e78, -2.5e-300} {
		want, _ := json.Marshal(v)
		if got := appendJSONFloat(nil, v); string(got) != string(want) {
			t.Errorf("float %v: got %s, encoding/json %s", v, got, want)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	p := samplePoint()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], &p)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeJSON(b *testing.B) {
	p := samplePoint()
	one := AppendJSON(nil, &p)
	batch := AppendJSONArray(nil, slices.Repeat([]Point{p}, 100))
	for _, bc := range []struct {
		name    string
		payload []byte
	}{{"point", one}, {"batch100", batch}} {
		b.Run(bc.name, func(b *testing.B) {
			dst := make([]Point, 0, 100)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.payload)))
			for b.Loop() {
				var err error
				if dst, err = (Decoder{}).DecodeJSON(dst[:0], bc.payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestScanNumber checks scanNumber against encoding/json's grammar.
func TestScanNumber(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-12", "1.5", "0.0", "1e5", "1E+5", "1e-05", "-0.5e10",
		"01", "-", "+1", ".5", "1.", "1e", "1e+", "--1", "0x1", "1.e5", "00", "-01"} {
		end, _, ok := scanNumber(s, 0)
		ok = ok && end == len(s)
		if want := json.Valid([]byte(s)); ok != want {
			t.Errorf("scanNumber(%q) ok = %v, encoding/json says %v", s, ok, want)
		}
		if _, isInt, _ := scanNumber(s, 0); ok && isInt != !strings.ContainsAny(s, ".eE") {
			t.Errorf("scanNumber(%q) isInt = %v", s, isInt)
		}
	}
}
