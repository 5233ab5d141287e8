package nab

import (
	"math"
	"testing"
)

func TestBootstrap(t *testing.T) {
	perfect := FileResult{Name: "a/hit.csv", Raw: 1, TP: 1}  // normalized 100 alone
	missed := FileResult{Name: "a/miss.csv", Raw: -1, FN: 1} // 0 alone
	quiet := FileResult{Name: "b/quiet.csv", Raw: -0.11, FP: 1}
	std := Profiles()[0]
	for _, tc := range []struct {
		name   string
		files  []FileResult
		share  float64
		lo, hi float64 // NaN: NaN
	}{
		// Draws of two files: both hits (1/4), both misses (1/4), one
		// of each (1/2): scores 100, 0 and 50.
		{"hit and miss, 90%", []FileResult{perfect, missed}, 0.9, 0, 100},
		{"hit and miss, 40%", []FileResult{perfect, missed}, 0.4, 50, 50},
		{"files alike", []FileResult{perfect, perfect, perfect}, 0.9, 100, 100},
		{"no window", []FileResult{quiet}, 0.9, math.NaN(), math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := Bootstrap(Result{Files: tc.files}, std, tc.share, 4000, 1)
			if !same(lo, tc.lo) || !same(hi, tc.hi) {
				t.Errorf("interval %v–%v, want %v–%v", lo, hi, tc.lo, tc.hi)
			}
		})
	}
}

func TestBootstrapDifference(t *testing.T) {
	hit := FileResult{Name: "a/x.csv", Raw: 1, TP: 1}
	miss := FileResult{Name: "a/x.csv", Raw: -1, FN: 1}
	other := FileResult{Name: "a/y.csv", Raw: 0.5, TP: 1}
	std := Profiles()[0]
	for _, tc := range []struct {
		name   string
		a, b   []FileResult
		share  float64
		lo, hi float64
	}{
		{"the same detector", []FileResult{hit, other}, []FileResult{hit, other}, 0.9, 0, 0},
		// a beats b by 2 raw on x only. Draws of two files: x twice (1/4),
		// once (1/2), never (1/4): differences 100·4/4, 100·2/4, 0.
		{"better on one series, 90%", []FileResult{hit, other}, []FileResult{miss, other}, 0.9, 0, 100},
		{"better on one series, 40%", []FileResult{hit, other}, []FileResult{miss, other}, 0.4, 50, 50},
		{"worse on one series", []FileResult{miss, other}, []FileResult{hit, other}, 0.9, -100, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := BootstrapDifference(Result{Files: tc.a}, Result{Files: tc.b}, std, tc.share, 4000, 1)
			if lo != tc.lo || hi != tc.hi {
				t.Errorf("interval %v–%v, want %v–%v", lo, hi, tc.lo, tc.hi)
			}
		})
	}
}

// TestBootstrapIsReproducible: one seed, one interval; it holds the
// corpus' own score.
func TestBootstrapIsReproducible(t *testing.T) {
	c, scores := cvCorpus()
	r, err := Score(c, scores, Profiles()[0], 0.5)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := Bootstrap(r, Profiles()[0], 0.9, 2000, 7)
	lo2, hi2 := Bootstrap(r, Profiles()[0], 0.9, 2000, 7)
	if lo != lo2 || hi != hi2 {
		t.Errorf("two runs gave %v–%v and %v–%v", lo, hi, lo2, hi2)
	}
	if !(lo < r.Normalized && r.Normalized < hi) {
		t.Errorf("interval %v–%v does not hold the score %v", lo, hi, r.Normalized)
	}
}

func same(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
