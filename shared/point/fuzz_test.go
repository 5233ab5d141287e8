package point

import (
	"errors"
	"os"
	"testing"
)

// addGoldenSeeds seeds f with the golden inputs of the given extension.
func addGoldenSeeds(f *testing.F, ext string) {
	for _, in := range goldenInputs(f, ext) {
		payload, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(payload)
	}
}

// checkDecode asserts the decoder contract on one input: errors are
// positioned *DecodeErrors wrapping a sentinel and leave dst alone, and
// decoded points are valid and round-trip through both formats.
func checkDecode(t *testing.T, fm Format, in []byte, decode func([]Point, []byte) ([]Point, error)) {
	prior := Point{Measurement: "prior", Fields: []Field{{"v", 1}}}
	dst := []Point{prior}
	ps, err := decode(dst, in)
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("error %v is a %T, not a *DecodeError", err, err)
		}
		if de.Format != fm || de.Offset < 0 || de.Offset > len(in) || de.Line < 0 ||
			(fm == FormatLine && de.Line < 1) || (fm == FormatJSON && de.Line != 0) {
			t.Fatalf("bad position in %#v for input of %d bytes", de, len(in))
		}
		if sentinelName(err) == "" {
			t.Fatalf("error %v wraps no sentinel", err)
		}
		if len(ps) != 1 || ps[0].Measurement != "prior" {
			t.Fatalf("dst changed on error: %q", dumpAll(ps))
		}
		_ = err.Error()
		return
	}
	if len(ps) < 2 || ps[0].Measurement != "prior" {
		t.Fatalf("success without points, or dst[0] changed: %q", dumpAll(ps))
	}
	checkRoundTrip(t, ps[1:])
}

func FuzzDecodeLine(f *testing.F) {
	addGoldenSeeds(f, ".lp")
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecode(t, FormatLine, in, Decoder{}.DecodeLine)
	})
}

func FuzzDecodeJSON(f *testing.F) {
	addGoldenSeeds(f, ".json")
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecode(t, FormatJSON, in, Decoder{}.DecodeJSON)
	})
}

// FuzzRoundTrip builds points from arbitrary names and values: valid ones
// must round-trip, and the series key must be the line-protocol prefix.
func FuzzRoundTrip(f *testing.F) {
	f.Add("cpu", "host", "a", "usage", 0.5, int64(1700000000000000000))
	f.Add(`c p,u=`, `k\ `, `v\=x`, "f,=", -1e300, int64(-1))
	f.Add("#m", "time", "", "a\nb", 0.0, int64(0))
	f.Fuzz(func(t *testing.T, m, tk, tv, fk string, v float64, ts int64) {
		p := Point{Measurement: m, Fields: []Field{{fk, v}}, Time: ts}
		if tk != "" || tv != "" {
			p.Tags = []Tag{{tk, tv}}
		}
		line := AppendLine(nil, &p)
		if p.Validate() != nil {
			// Whatever the encoder wrote, the decoder may not panic and
			// must only return valid points.
			ps, err := Decoder{}.DecodeLine(nil, line)
			if err == nil {
				checkRoundTrip(t, ps)
			}
			return
		}
		key := AppendSeriesKey(nil, &p)
		if len(line) < len(key) || string(line[:len(key)]) != string(key) || line[len(key)] != ' ' {
			t.Fatalf("series key %q is not the prefix of line %q", key, line)
		}
		ps, err := Decoder{}.DecodeLine(nil, line)
		if err != nil || !samePoints(ps, []Point{p}) {
			t.Fatalf("line round trip of %s via %q: %q, %v", dump(p), line, dumpAll(ps), err)
		}
		js := AppendJSON(nil, &p)
		ps, err = Decoder{}.DecodeJSON(nil, js)
		if err != nil || !samePoints(ps, []Point{p}) {
			t.Fatalf("JSON round trip of %s via %s: %q, %v", dump(p), js, dumpAll(ps), err)
		}
	})
}
