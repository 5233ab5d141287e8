package movavg

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/point"
)

func TestParseFieldPattern(t *testing.T) {
	f := func(in string, want FieldPattern, wantErr string) {
		t.Helper()
		got, err := ParseFieldPattern(in)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("%q: err %v, want %q", in, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("%q = %+v, %v; want %+v", in, got, err, want)
		}
	}
	f("cpu:usage_*", FieldPattern{"cpu", "usage_*"}, "")
	f("*:value", FieldPattern{"*", "value"}, "")
	f("cpu", FieldPattern{}, "want measurement:field")
	f(":x", FieldPattern{}, "want measurement:field")
	f("cpu:[a-", FieldPattern{}, "syntax error in pattern")
}

// fieldKeys returns the keys of the derived points' fields, sorted.
func fieldKeys(pts []point.Point) []string {
	var keys []string
	for _, p := range pts {
		for _, f := range p.Fields {
			keys = append(keys, p.Measurement+"."+f.Key)
		}
	}
	slices.Sort(keys)
	return keys
}

// TestDeriveFieldsSelects: only the fields --derive-fields selects get
// moving averages and rollups; the others, and whole measurements with no
// selected field, get no state at all.
func TestDeriveFieldsSelects(t *testing.T) {
	cfg := Config{Default: Params{SMAWindow: 2, EMAAlpha: 0.5, Rollup: time.Minute}, MaxSeries: 100,
		Fields: []FieldPattern{{"cpu", "usage_*"}, {"disk", "free"}}}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []point.Point
	for i := range 3 {
		out, _ = s.ProcessResult(pt("cpu,host=a", at(float64(i)), "usage_user", i, "idle", 9, "usage_system", 2*i), 0, out)
		out, _ = s.ProcessResult(pt("mem,host=a", at(float64(i)), "used", i), 0, out)
		out, _ = s.ProcessResult(pt("disk,host=a", at(float64(i)), "used", i, "free", 100-i), 0, out)
	}
	out = s.Flush(out)
	want := []string{}
	for _, f := range []string{"cpu.usage_system", "cpu.usage_user", "disk.free"} {
		want = append(want, f+"_ema", f+"_ema", f+"_ema", f+"_sma", f+"_sma") // SMA from the 2nd point
		for _, r := range []string{"_count", "_last", "_max", "_mean", "_min", "_p95"} {
			want = append(want, f+r)
		}
	}
	slices.Sort(want)
	if got := fieldKeys(out); !slices.Equal(got, want) {
		t.Errorf("derived fields\n got %v\nwant %v", got, want)
	}
	if st := s.Stats(); st.Series != 3 {
		t.Errorf("%d series-fields tracked, want 3 (cpu usage_user, usage_system, disk free)", st.Series)
	}
}
