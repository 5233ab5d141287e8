package nab

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// counter scores each row with its row number in the series divided by 3,
// so scores are unique per row and need all 17 digits to round-trip.
type counter struct{ n float64 }

func (c *counter) Score(time.Time, float64) float64 { c.n++; return (c.n - 1) / 3 }

func TestRunLoadResultsRoundTrip(t *testing.T) {
	c, err := LoadCorpus(testData, testLabels)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	got, err := Run(t.Context(), c, func(string) Detector { return &counter{} }, out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Series {
		sc := got[s.Name]
		if len(sc) != len(s.Times) || sc[len(sc)-1] != float64(len(sc)-1)/3 {
			t.Fatalf("%s: scores %v", s.Name, sc)
		}
		// Timestamps and values come out as they went in, repeats and the
		// step back included.
		in, err := os.ReadFile(filepath.Join(testData, s.Name))
		if err != nil {
			t.Fatal(err)
		}
		res, err := os.ReadFile(filepath.Join(out, s.Name))
		if err != nil {
			t.Fatal(err)
		}
		inLines, resLines := strings.Split(string(in), "\n"), strings.Split(string(res), "\n")
		if len(inLines) != len(resLines) || resLines[0] != "timestamp,value,anomaly_score" {
			t.Fatalf("%s: %d lines in, %d out:\n%s", s.Name, len(inLines), len(resLines), res)
		}
		for i := 1; i < len(inLines)-1; i++ {
			if j := strings.LastIndexByte(resLines[i], ','); resLines[i][:j] != inLines[i] {
				t.Fatalf("%s line %d: %q, input %q", s.Name, i+1, resLines[i], inLines[i])
			}
		}
	}
	back, err := LoadResults(out, c)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, got) {
		t.Fatalf("LoadResults = %v, Run returned %v", back, got)
	}
	if ents, _ := os.ReadDir(filepath.Join(out, "cat")); len(ents) != 2 {
		t.Fatalf("output files %v, want 2", ents)
	}
}

func TestRunErrors(t *testing.T) {
	c := newCorpus(spec{"a/x.csv", 10000, nil}, spec{"a/y.csv", 10, nil}, spec{"b/z.csv", 10, nil})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	out := t.TempDir()
	if _, err := Run(ctx, c, func(string) Detector { return &counter{} }, out); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	_, err := Run(t.Context(), c, func(name string) Detector {
		return DetectorFunc(func(_ time.Time, v float64) float64 {
			if name == "a/y.csv" && v == 5 {
				panic("boom")
			}
			return 0
		})
	}, out)
	if err == nil || err.Error() != "detector for a/y.csv panicked: boom" {
		t.Fatalf("panic: %v", err)
	}
	tmp, _ := filepath.Glob(filepath.Join(out, "*", "*.tmp*"))
	if y, _ := filepath.Glob(filepath.Join(out, "a", "y.csv*")); len(tmp) != 0 || len(y) != 0 {
		t.Fatalf("left behind: %v %v", tmp, y)
	}
}

func TestLoadResults(t *testing.T) {
	c := newCorpus(spec{"a/x.csv", 3, nil})
	const head = "timestamp,value,anomaly_score\n"
	f := func(content string, want []float64, wantErr string) {
		t.Helper()
		dir := writeTree(t, map[string]string{"a/x.csv": content, "a/other.csv": "ignored"})
		got, err := LoadResults(dir, c)
		if wantErr == "" {
			if err != nil || !reflect.DeepEqual(got["a/x.csv"], want) {
				t.Fatalf("got %v, %v; want %v", got, err, want)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error %v, want %q", err, wantErr)
		}
	}
	rows := "2014-04-01 00:00:00,0,0.5\n2014-04-01 00:01:00,1,1e-3\n2014-04-01 00:02:00,2,-Inf\n"
	f(head+rows, []float64{0.5, 0.001, math.Inf(-1)}, "")
	f("timestamp,value,alert\n2014-04-01 00:00:00,0,0\n2014-04-01 00:01:00,1,1\n2014-04-01 00:02:00,2,0\n", []float64{0, 1, 0}, "")
	f("anomaly_score,label,timestamp,value\n1,0,2014-04-01 00:00:00.000,0\n2,0,2014-04-01 00:01:00,1\n3,1,2014-04-01 00:02:00,2\n", []float64{1, 2, 3}, "")
	f("timestamp,value,score,label\n", nil, `a/x.csv:1: header ["timestamp" "value" "score" "label"]`)
	f(head+strings.Replace(rows, "0.5", "high", 1), nil, `a/x.csv:2: anomaly score "high"`)
	f(head+strings.Replace(rows, "00:01:00", "00:03:00", 1), nil, "a/x.csv:3: inputs do not match: timestamp 2014-04-01 00:03:00, but row 2 of a/x.csv is at 2014-04-01 00:01:00")
	f(head+rows+"2014-04-01 00:03:00,3,0\n", nil, "a/x.csv:5: inputs do not match: more rows than the 3 of a/x.csv")
	f(head+rows[:strings.Index(rows, "2014-04-01 00:02")], nil, "a/x.csv: inputs do not match: 2 rows, but a/x.csv has 3")
	f(head+"2014-04-01 00:00:00,0\n", nil, "a/x.csv:2: wrong number of fields")
	if _, err := LoadResults(t.TempDir(), c); err == nil || !strings.Contains(err.Error(), "read results: open") {
		t.Fatalf("missing file: %v", err)
	}
}
