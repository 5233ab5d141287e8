package point

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.golden from the decoders' output")

// goldenInputs returns the golden input files with the given extension.
func goldenInputs(tb testing.TB, ext string) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*"+ext))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no golden %s inputs: %v", ext, err)
	}
	return files
}

// renderGolden renders a decoding result as readable text.
func renderGolden(ps []Point, err error) string {
	var b strings.Builder
	if err != nil {
		var de *DecodeError
		errors.As(err, &de)
		fmt.Fprintf(&b, "error %s\n", sentinelName(err))
		fmt.Fprintf(&b, "  line %d, offset %d, key %q\n", de.Line, de.Offset, de.Field)
		fmt.Fprintf(&b, "  %s\n", err)
		return b.String()
	}
	fmt.Fprintf(&b, "points: %d\n", len(ps))
	for i, p := range ps {
		fmt.Fprintf(&b, "\npoint %d\n  measurement %q\n", i+1, p.Measurement)
		for _, t := range p.Tags {
			fmt.Fprintf(&b, "  tag %q = %q\n", t.Key, t.Value)
		}
		for _, f := range p.Fields {
			fmt.Fprintf(&b, "  field %q = %s\n", f.Key, strconv.FormatFloat(f.Value, 'g', -1, 64))
		}
		if p.Time != 0 {
			fmt.Fprintf(&b, "  time %d\n", p.Time)
		}
	}
	return b.String()
}

func decodeFile(path string, payload []byte) ([]Point, error) {
	if filepath.Ext(path) == ".json" {
		return Decoder{}.DecodeJSON(nil, payload)
	}
	return Decoder{}.DecodeLine(nil, payload)
}

// TestGolden decodes every testdata/golden/*.lp and *.json file and compares
// the result with the file of the same name plus ".golden". Inputs whose
// names start with "err_" must fail, the others must decode and round-trip.
// Run with -update to rewrite the .golden files.
func TestGolden(t *testing.T) {
	for _, in := range append(goldenInputs(t, ".lp"), goldenInputs(t, ".json")...) {
		t.Run(filepath.Base(in), func(t *testing.T) {
			payload, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			ps, err := decodeFile(in, payload)
			if wantErr := strings.HasPrefix(filepath.Base(in), "err_"); wantErr != (err != nil) {
				t.Errorf("error = %v; the file name says an error is expected: %v", err, wantErr)
			}
			if err == nil {
				checkRoundTrip(t, ps)
			}
			got := renderGolden(ps, err)
			if *update {
				if err := os.WriteFile(in+".golden", []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(in + ".golden")
			if err != nil {
				t.Fatalf("%v (run go test -run Golden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("decoded %s differs from %s.golden (run with -update to accept)\n--- got\n%s\n--- want\n%s", in, in, got, want)
			}
		})
	}
}

// checkRoundTrip asserts that ps are valid and that encoding them in both
// formats and decoding again gives them back bit for bit.
func checkRoundTrip(t *testing.T, ps []Point) {
	t.Helper()
	for _, p := range ps {
		if err := p.Validate(); err != nil {
			t.Fatalf("decoded invalid point %s: %v", dump(p), err)
		}
		if p.Tags != nil && len(p.Tags) == 0 {
			t.Fatalf("decoded empty non-nil tags: %s", dump(p))
		}
	}
	line := AppendLines(nil, ps)
	back, err := Decoder{}.DecodeLine(nil, line)
	if err != nil || !samePoints(back, ps) {
		t.Fatalf("line-protocol round trip via %q:\n got %q, %v\nwant %q", line, dumpAll(back), err, dumpAll(ps))
	}
	js := AppendJSONArray(nil, ps)
	back, err = Decoder{}.DecodeJSON(nil, js)
	if err != nil || !samePoints(back, ps) {
		t.Fatalf("JSON round trip via %s:\n got %q, %v\nwant %q", js, dumpAll(back), err, dumpAll(ps))
	}
}
