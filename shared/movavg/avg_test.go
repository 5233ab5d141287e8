package movavg

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/stream"
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
			out, _ := s.ProcessResult(pt("m,k=v", at(float64(i)), "x", x), 0, nil)
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
	f := &fieldState{Averages: NewAverages(pl)}
	rng := rand.New(rand.NewPCG(1, 2))
	var worst float64
	for i := range updates {
		f.Add(pl, 1e6+rng.NormFloat64()*1e3)
		if i%997 != 0 && i != updates-1 {
			continue
		}
		got, ok := f.SMA(pl)
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
	f := &fieldState{Averages: NewAverages(pl)}
	small := []float64{0.1, 0.2, 0.3}
	for _, x := range append([]float64{1e15, -1e15, 3e15}, small...) {
		f.Add(pl, x)
	}
	var want float64
	for _, x := range small {
		want += x
	}
	if got, _ := f.SMA(pl); got != want/3 {
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

// TestAveragesMatchTheStage: Averages, used alone as the analyzer does,
// give bit for bit the stage's <f>_sma, <f>_ema and <f>_wma, warm-up
// included, also when checkpointed and restored midway.
func TestAveragesMatchTheStage(t *testing.T) {
	for _, p := range []Params{
		{SMAWindow: 5, EMAAlpha: 0.3, WMAWeights: []float64{0.5, 0.3, 0.2}},
		{SMAWindow: 2, WMAWeights: []float64{0.4, 0.3, 0.2, 0.1}}, // a ring longer than the SMA
		{EMAAlpha: 0.05},
		{WMAWeights: []float64{2, -1}, Rollup: time.Minute},
	} {
		s := mustNew(t, Config{Default: p, MaxSeries: 1})
		pl, err := NewPlan(p)
		if err != nil {
			t.Fatal(err)
		}
		a := NewAverages(pl)
		rng := rand.New(rand.NewPCG(3, 4))
		for i := range 200 {
			x := rng.NormFloat64()*1e3 + 1e6
			if i == 77 { // restore into fresh Averages midway
				var e stream.Encoder
				a.Checkpoint(&e)
				d := stream.NewDecoder(e.B)
				b := NewAverages(pl)
				if b.Restore(d, pl); d.Err() != nil || d.Len() != 0 {
					t.Fatalf("restore: %v, %d bytes left", d.Err(), d.Len())
				}
				a = b
			}
			a.Add(pl, x)
			out, res := s.ProcessResult(pt("m", at(float64(i)), "x", x), 0, nil)
			want := map[string]float64{}
			if res.Derived {
				for _, f := range out[len(out)-1].Fields {
					want[f.Key] = f.Value
				}
			}
			got := map[string]float64{}
			for suf, get := range map[string]func(*Plan) (float64, bool){"_sma": a.SMA, "_ema": a.EMA, "_wma": a.WMA} {
				if v, ok := get(pl); ok {
					got["x"+suf] = v
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%+v after %d values: Averages give %v, the stage %v", p, i+1, got, want)
			}
			for k, w := range want {
				if g := got[k]; math.Float64bits(g) != math.Float64bits(w) {
					t.Fatalf("%+v after %d values: %s = %v from Averages, %v from the stage", p, i+1, k, g, w)
				}
			}
		}
	}
}

func TestNewPlanValidates(t *testing.T) {
	if _, err := NewPlan(Params{SMAWindow: 1, EMAAlpha: 2}); err == nil ||
		!strings.Contains(err.Error(), "--sma-window 1") || !strings.Contains(err.Error(), "--ema-alpha 2") {
		t.Fatalf("NewPlan: %v, want both problems named", err)
	}
	pl, err := NewPlan(Params{})
	if err != nil {
		t.Fatal(err)
	}
	var a Averages // the zero value serves a plan that keeps no ring
	a.Add(pl, 1)
	for _, get := range []func(*Plan) (float64, bool){a.SMA, a.EMA, a.WMA} {
		if v, ok := get(pl); ok {
			t.Fatalf("an average of a plan computing nothing: %v", v)
		}
	}
}

// TestAveragesRestoreRefusesWhatDoesNotFit: Averages of another plan or a
// damaged record fail the decoder instead of being misread.
func TestAveragesRestoreRefusesWhatDoesNotFit(t *testing.T) {
	sma3, _ := NewPlan(Params{SMAWindow: 3})
	sma4, _ := NewPlan(Params{SMAWindow: 4})
	a := NewAverages(sma3)
	for _, x := range []float64{1, 2, 3, 4} {
		a.Add(sma3, x)
	}
	var e stream.Encoder
	a.Checkpoint(&e)
	for name, f := range map[string]func() error{
		"another plan": func() error { d := stream.NewDecoder(e.B); b := NewAverages(sma4); b.Restore(d, sma4); return d.Err() },
		"truncated": func() error {
			d := stream.NewDecoder(e.B[:len(e.B)-1])
			b := NewAverages(sma3)
			b.Restore(d, sma3)
			return d.Err()
		},
	} {
		if err := f(); !errors.Is(err, stream.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}
