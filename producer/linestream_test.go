package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/metricpipe/metricpipe/shared/point"
)

// streamAll decodes body with a lineStream and returns its points in line
// protocol and its error.
func streamAll(body []byte, bufMax, maxCost int) (string, error) {
	// OneByteReader: chunks end wherever reads do, not where body does.
	s := newLineStream(iotest.OneByteReader(bytes.NewReader(body)), int64(len(body)), min(16, bufMax), bufMax, maxCost)
	var out []byte
	for {
		pts, err := s.next()
		if err == io.EOF {
			return string(out), nil
		}
		if err != nil {
			return string(out), err
		}
		out = point.AppendLines(out, pts)
	}
}

// wholeBody decodes body in one piece, as the write endpoint did before it
// streamed.
func wholeBody(body []byte) (string, error) {
	pts, err := point.Decoder{MaxMessageBytes: len(body) + 1}.DecodeLine(nil, body)
	return string(point.AppendLines(nil, pts)), err
}

func TestDecoderReasons(t *testing.T) {
	// lineStream recognises two decode errors by their Reason.
	f := func(body string, sentinel error, reason string) {
		t.Helper()
		_, err := point.Decoder{}.DecodeLine(nil, []byte(body))
		if !hasReason(err, sentinel, reason) {
			t.Fatalf("%q: error %v, want %v with reason %q", body, err, sentinel, reason)
		}
	}
	f("m s=\"x\"\n", point.ErrNoFields, reasonStringOnly)
	f("m v=1,s=\"x\n", point.ErrSyntax, reasonUnterminated)
}

func TestLineStreamMatchesWholeBody(t *testing.T) {
	// Every body, cut into chunks as small as a line allows, decodes to the
	// same points or fails with the same error as in one piece.
	many := strings.Repeat("cpu,host=a usage=1.5,idle=2i 1700000000000000000\n", 200)
	f := func(name, body string) {
		t.Helper()
		want, wantErr := wholeBody([]byte(body))
		for _, bufMax := range []int{64, 100, 1000, len(body) + 1} {
			for _, maxCost := range []int{1000, 5000, 1 << 20} {
				got, err := streamAll([]byte(body), bufMax, maxCost)
				if errors.Is(err, errLineTooLarge) && (bufMax <= 100 || maxCost < 5000) {
					continue // a line of these bodies may not fit that small a chunk
				}
				if fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Fatalf("%s, buffer %d, cost %d: error %v, want %v", name, bufMax, maxCost, err, wantErr)
				}
				if wantErr == nil && got != want {
					t.Fatalf("%s, buffer %d, cost %d: points\n%s\nwant\n%s", name, bufMax, maxCost, got, want)
				}
			}
		}
	}
	f("many lines", many)
	f("no final newline", many+"mem used=3")
	f("crlf", strings.ReplaceAll(many, "\n", "\r\n"))
	f("comments and blank lines", "# start\n\n"+strings.Repeat("# comment line\n", 40)+many+strings.Repeat("\n", 300))
	f("string spanning lines", many+"log,host=a msg=\"line one\nline two\nline three\",n=1 5\n"+many)
	f("two strings spanning lines", many+"log a=\"1\n2\n3\",b=\"4\n5\n6\",n=1 5\nnext v=1 6\n"+many)
	f("string holding a comment and an equals sign", many+"log msg=\"x\n# not a comment\nk=v\",n=2\n"+many)
	f("escaped quote in a string", many+"log msg=\"say \\\"hi\\\"\nbye\",n=3\n"+many)
	f("string-only lines, then points", strings.Repeat("system uptime_format=\"1 day\"\n", 50)+many)
	f("string-only lines only", strings.Repeat("system uptime_format=\"1 day\"\n", 50))
	f("comments only", strings.Repeat("# nothing\n", 50))
	f("empty", "")
	f("bad line in a later chunk", many+"cpu v=oops 1\n"+many)
	f("bad key in a later chunk", many+"cpu,host=a,host=b v=1\n")
	f("unterminated string at the end", many+"log msg=\"never closed\n"+strings.Repeat("more\n", 20))
}

func TestLineStreamErrors(t *testing.T) {
	long := "m,host=" + strings.Repeat("x", 200) + " v=1\n"
	wide := "m g=1"
	for i := range 100 {
		wide += fmt.Sprintf(",f%d=1", i)
	}
	wide += "\n"
	wideCost, _ := chunkCost([]byte(wide))
	f := func(name, body string, limit int64, bufMax, maxCost int, want string) {
		t.Helper()
		s := newLineStream(bytes.NewReader([]byte(body)), limit, 16, bufMax, maxCost)
		var err error
		for err == nil {
			_, err = s.next()
		}
		if err.Error() != want {
			t.Fatalf("%s: error %q, want %q", name, err, want)
		}
	}
	f("line longer than the buffer", "a v=1\n"+long, 1<<20, 128, 1<<20, "line 2: line too large")
	f("line fits the buffer", "a v=1\n"+long, 1<<20, 256, 1<<20, "EOF")
	f("too many fields for the cost", "a v=1\n"+wide, 1<<20, 1<<10, wideCost-1, "line 2: line too large")
	f("fields fit the cost", "a v=1\n"+wide, 1<<20, 1<<10, wideCost, "EOF")
	f("body over its limit", strings.Repeat("a v=1\n", 100), 599, 128, 1<<20, "body too large")
	f("body at its limit", strings.Repeat("a v=1\n", 100), 600, 128, 1<<20, "EOF")
	f("string longer than the buffer", "a v=1\nlog msg=\""+strings.Repeat("x\n", 100)+"\",n=1\n", 1<<20, 128, 1<<20, "line 2: line too large")
}

func TestLineChunkerCuts(t *testing.T) {
	// Chunks are whole lines, within the buffer and the cost, and together
	// the body.
	var body []byte
	for i := range 3000 {
		// Lines of 6 to ~300 bytes and 1 to 40 '='.
		body = fmt.Appendf(body, "m%d%s v=%d\n", i, strings.Repeat(",t=x", i%40), i)
	}
	const bufMax, maxCost = 4096, 20_000
	c := lineChunker{r: iotest.HalfReader(bytes.NewReader(body)), buf: make([]byte, 16), max: bufMax, limit: int64(len(body))}
	var got []byte
	chunks := 0
	for {
		chunk, newlines, err := c.next(maxCost)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		chunks++
		cost, _ := chunkCost(chunk)
		if len(chunk) > bufMax || cost > maxCost || chunk[len(chunk)-1] != '\n' || newlines != bytes.Count(chunk, []byte{'\n'}) {
			t.Fatalf("chunk %d: %d bytes, cost %d, %d newlines, ends %q", chunks, len(chunk), cost, newlines, chunk[len(chunk)-1])
		}
		got = append(got, chunk...)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("chunks make %d bytes, body is %d", len(got), len(body))
	}
	if chunks < len(body)/bufMax {
		t.Fatalf("%d chunks for %d bytes in a %d-byte buffer", chunks, len(body), bufMax)
	}
}

// FuzzLineStream: a body decodes in chunks as it does in one piece, unless
// a line is too large for the chunk.
func FuzzLineStream(f *testing.F) {
	seeds, err := filepath.Glob("../shared/point/testdata/golden/*.lp")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(64), uint16(2000))
	}
	f.Add([]byte("a v=1\nlog msg=\"x\ny\",n=1\nb v=2\n"), uint16(8), uint16(600))
	f.Fuzz(func(t *testing.T, body []byte, bufMax, maxCost uint16) {
		want, wantErr := wholeBody(body)
		got, err := streamAll(body, max(int(bufMax), 1), int(maxCost))
		if errors.Is(err, errLineTooLarge) {
			return
		}
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("error %v, want %v", err, wantErr)
		}
		if err == nil && got != want {
			t.Fatalf("points\n%s\nwant\n%s", got, want)
		}
	})
}
