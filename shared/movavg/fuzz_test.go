package movavg

import (
	"strings"
	"testing"
)

// FuzzParseOverride checks that ParseOverride never panics, that its errors
// name the flag, and that whatever it accepts passes Config.Validate.
func FuzzParseOverride(f *testing.F) {
	for _, s := range []string{
		"cpu:sma=60,ema=0.2,wma=0.5/0.3/0.2,rollup=5m", "cpu:", "cpu:ema_span=9", "a:b:sma=2",
		"cpu:rollup=1.5ms", "cpu:wma=1e308/1e308", "cpu:sma=99999999999999999999", ":", "x:ema=NaN",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, p, err := ParseOverride(s)
		if err != nil {
			if !strings.Contains(err.Error(), "--stage-override") {
				t.Fatalf("ParseOverride(%q) error %q does not name --stage-override", s, err)
			}
			return
		}
		c := Config{Overrides: map[string]Params{m: p}, MaxSeries: 1}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseOverride(%q) = %q, %+v, which Validate rejects: %v", s, m, p, err)
		}
		if _, err := New(c); err != nil {
			t.Fatalf("New: %v", err)
		}
	})
}

// FuzzParseWeights checks the same for ParseWeights.
func FuzzParseWeights(f *testing.F) {
	for _, s := range []string{"0.5,0.3,0.2", "1", "", "1,-1", "1e308,1e308", " 2 , -1 ", "0x1p-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWeights(s)
		if err != nil {
			if !strings.Contains(err.Error(), "--wma-weights") {
				t.Fatalf("ParseWeights(%q) error %q does not name --wma-weights", s, err)
			}
			return
		}
		if err := (Config{Default: Params{WMAWeights: w}, MaxSeries: 1}).Validate(); err != nil {
			t.Fatalf("ParseWeights(%q) = %v, which Validate rejects: %v", s, w, err)
		}
	})
}
