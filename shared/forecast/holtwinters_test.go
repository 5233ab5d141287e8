package forecast

import (
	"math"
	"testing"
)

// seasonal returns 50 + 0.3t + s[t mod 24], s an irregular daily profile
// summing to zero (a non-zero sum would belong to the level).
func seasonal(t int) float64 {
	profile := [24]float64{-9, -10, -10.5, -11, -10, -8, -4, 2, 7, 9, 8.5, 8,
		9, 9.5, 8, 7, 6, 5.5, 4, 2, -1, -4, -6, 0}
	var sum float64
	for _, v := range profile {
		sum += v
	}
	return 50 + 0.3*float64(t) + profile[t%24] - sum/24
}

// TestHoltWintersRecovers: on a linear trend plus a periodic signal, the
// two-season initialisation is exact, so forecasts are exact from point 48
// on at every horizon, and stay so across missing values, which keep the
// phase.
func TestHoltWintersRecovers(t *testing.T) {
	f := mustNew(t, Config{Kind: HoltWinters, Alpha: 0.3, Beta: 0.1, Gamma: 0.1, Season: 24, ErrorHalfLife: 10})
	for i := range 48 {
		if _, ok := f.Predict(); ok {
			t.Fatalf("Predict ok after %d points, want warm-up of 48", i)
		}
		f.Update(seasonal(i))
	}
	for i := 48; i < 24*10; i++ {
		for _, h := range []int{1, 5, 24, 25, 60} {
			if got, ok := f.Ahead(h); !ok || !near(got, seasonal(i+h-1), 1e-9) {
				t.Fatalf("before point %d: Ahead(%d) = %v, %v, want %v", i, h, got, ok, seasonal(i+h-1))
			}
		}
		if i%37 == 0 {
			f.Update(math.NaN())
		} else {
			f.Update(seasonal(i))
		}
	}
	if s, ok := f.Sigma(); !ok || s > 1e-9 {
		t.Errorf("Sigma = %v, %v, want ~0", s, ok)
	}
}

// TestHoltWintersWarmupGap: a missing value during warm-up is imputed, so
// the model is ready after two seasons of points all the same, its phase
// aligned with time, and the imputation error fades.
func TestHoltWintersWarmupGap(t *testing.T) {
	for _, gap := range []int{5, 30, 47} {
		f := mustNew(t, Config{Kind: HoltWinters, Alpha: 0.3, Beta: 0.1, Gamma: 0.1, Season: 24, ErrorHalfLife: 10})
		for i := range 48 {
			if i == gap {
				f.Update(math.NaN())
			} else {
				f.Update(seasonal(i))
			}
		}
		if _, ok := f.Predict(); !ok {
			t.Fatalf("gap at %d: not ready after 48 points", gap)
		}
		for i := 48; i < 24*30; i++ {
			f.Update(seasonal(i))
		}
		if got, _ := f.Predict(); !near(got, seasonal(24*30), 1e-3) {
			t.Errorf("gap at %d: Predict = %v, want %v", gap, got, seasonal(24*30))
		}
	}
}

// TestHoltWintersVarianceFactor, m = 4, α = 0.5, β = 0.2, γ = 0.4, so
// g = γ(1−α) = 0.2, h = 6: cⱼ = α(1+jβ) + g·[4 divides j] for j = 1..5 is
// 0.6, 0.7, 0.8, 0.9+0.2, 1.0, squares summing to 3.7: v = 4.7.
func TestHoltWintersVarianceFactor(t *testing.T) {
	m := newHW(0.5, 0.2, 0.4, 4)
	if got := m.varianceFactor(6); !near(got, 4.7, 1e-12) {
		t.Errorf("varianceFactor(6) = %v, want 4.7", got)
	}
}
