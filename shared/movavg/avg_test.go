package movavg

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestMovingAverages checks hand-computed values, warm-up included. want[i]
// is the value of the field with the given suffix after in[i], NaN when the
// derived point must not have it.
func TestMovingAverages(t *testing.T) {
	none := math.NaN()
	f := func(p Params, suffix string, in []float64, want ...float64) {
		t.Helper()
		s := mustNew(t, Config{Default: p, MaxSeries: 1})
		for i, x := range in {
			out, _ := s.Process(pt("m,k=v", at(float64(i)), "x", x), nil)
			got := none
			if len(out) == 1 {
				for _, fd := range out[0].Fields {
					if fd.Key == "x"+suffix {
						got = fd.Value
					}
				}
			}
			if math.IsNaN(want[i]) != math.IsNaN(got) || math.Abs(got-want[i]) > 1e-12 {
				t.Fatalf("%+v: x%s after %v = %v, want %v", p, suffix, in[:i+1], got, want[i])
			}
		}
	}
	seq := []float64{1, 2, 3, 4, 5}
	// SMA: warm-up, then the mean of the last N.
	f(Params{SMAWindow: 3}, "_sma", seq, none, none, 2, 3, 4)
	f(Params{SMAWindow: 2}, "_sma", []float64{1, 4, -2, 0.5}, none, 2.5, 1, -0.75)
	f(Params{SMAWindow: 5}, "_sma", seq, none, none, none, none, 3)
	// Past several wraps of the ring (the sum is recomputed at each).
	f(Params{SMAWindow: 2}, "_sma", []float64{1, 2, 3, 4, 5, 6, 7, 8}, none, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5)
	// EMA: starts at the first value.
	f(Params{EMAAlpha: 0.5}, "_ema", []float64{1, 2, 3, 4}, 1, 1.5, 2.25, 3.125)
	f(Params{EMAAlpha: 0.1}, "_ema", []float64{10, 20, 0}, 10, 11, 9.9)
	f(Params{EMAAlpha: 1}, "_ema", []float64{5, 7, -1}, 5, 7, -1)
	// WMA: Σ aᵢ·x(t−i), a₀ on the newest, not normalised.
	f(Params{WMAWeights: []float64{0.5, 0.3, 0.2}}, "_wma", []float64{1, 2, 3, 4, 5},
		none, none, 0.5*3+0.3*2+0.2*1, 0.5*4+0.3*3+0.2*2, 0.5*5+0.3*4+0.2*3) // 2.3, 3.3, 4.3
	f(Params{WMAWeights: []float64{2, -1}}, "_wma", []float64{1, 4, 9, 16}, none, 7, 14, 23) // a linear extrapolation
	f(Params{WMAWeights: []float64{2}}, "_wma", []float64{1, 4}, 2, 8)                       // not divided by Σa
	// SMA and WMA share one ring of max(N, len(weights)) values.
	f(Params{SMAWindow: 2, WMAWeights: []float64{0.5, 0.3, 0.2}}, "_sma", seq, none, 1.5, 2.5, 3.5, 4.5)
	f(Params{SMAWindow: 2, WMAWeights: []float64{0.5, 0.3, 0.2}}, "_wma", seq, none, none, 2.3, 3.3, 4.3)
	f(Params{SMAWindow: 4, WMAWeights: []float64{0.5, 0.5}}, "_wma", seq, none, 1.5, 2.5, 3.5, 4.5)
	f(Params{SMAWindow: 4, WMAWeights: []float64{0.5, 0.5}}, "_sma", seq, none, none, none, 2.5, 3.5)
	// Overflowing values are left out rather than written as ±Inf.
	f(Params{SMAWindow: 2}, "_sma", []float64{1e308, 1e308, 1, 1}, none, none, none, 1)
	f(Params{EMAAlpha: 0.5}, "_ema", []float64{1e308, -1e308, 1.7e308}, 1e308, 0, 0.85e308)
	f(Params{WMAWeights: []float64{1, 1}}, "_wma", []float64{1e308, 1e308, 1}, none, none, 1e308+1)
}

// TestSMADrift feeds 10 million values around 1e6 and checks that the
// running sum stays within 1e-9 (relative) of the exact sum of the window.
func TestSMADrift(t *testing.T) {
	updates := 10_000_000
	if testing.Short() {
		updates = 1_000_000
	}
	pl := newPlan(Params{SMAWindow: 30})
	f := &fieldState{ring: make([]float64, pl.hist)}
	rng := rand.New(rand.NewPCG(1, 2))
	var worst float64
	for i := range updates {
		f.addAvg(pl, 1e6+rng.NormFloat64()*1e3)
		if i%997 != 0 && i != updates-1 {
			continue
		}
		got, ok := f.sma(pl)
		if !ok {
			continue
		}
		var exact float64
		for _, v := range f.ring { // ≤ 30·ε error, far below the bound
			exact += v
		}
		exact /= 30
		worst = max(worst, math.Abs(got-exact)/exact)
	}
	t.Logf("worst relative SMA error over %d updates: %.3g", updates, worst)
	if worst > 1e-9 {
		t.Fatalf("SMA drifted by %.3g relative, want < 1e-9", worst)
	}
}

// TestSMACancellation: after huge values leave the window, the SMA of small
// ones is exact again once the ring wrapped.
func TestSMACancellation(t *testing.T) {
	pl := newPlan(Params{SMAWindow: 3})
	f := &fieldState{ring: make([]float64, pl.hist)}
	small := []float64{0.1, 0.2, 0.3}
	for _, x := range append([]float64{1e15, -1e15, 3e15}, small...) {
		f.addAvg(pl, x)
	}
	var want float64
	for _, x := range small {
		want += x
	}
	if got, _ := f.sma(pl); got != want/3 {
		t.Fatalf("SMA = %v, want %v", got, want/3)
	}
}

func TestFieldKeys(t *testing.T) {
	f := func(p Params, want string) {
		t.Helper()
		if got := strings.Join(newPlan(p).suffixes(), " "); got != want {
			t.Fatalf("%+v: suffixes %q, want %q", p, got, want)
		}
	}
	f(Params{SMAWindow: 2, EMAAlpha: 1, WMAWeights: []float64{1}, Rollup: time.Second},
		"_sma _ema _wma _count _mean _min _max _last _p95")
	f(Params{EMAAlpha: 1, Rollup: time.Second}, "_ema _count _mean _min _max _last _p95")
	f(Params{WMAWeights: []float64{1}}, "_wma")
	if got := newPlan(Params{SMAWindow: 2, Rollup: time.Second}).keysFor("v"); got != "v_smav_countv_meanv_minv_maxv_lastv_p95" {
		t.Fatalf("keysFor = %q", got)
	}
}
