package movavg

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func feedP2(xs []float64) (*p2, int64) {
	var e p2
	for i, x := range xs {
		e.add(x, int64(i))
	}
	return &e, int64(len(xs))
}

// TestP2Exact: up to p2Exact samples the quantile, minimum and maximum are
// exact (type 7: position 1 + (n−1)·0.95, interpolated).
func TestP2Exact(t *testing.T) {
	f := func(xs []float64, want, wantMin, wantMax float64) {
		t.Helper()
		e, c := feedP2(xs)
		lo, hi := e.minMax(c)
		if got := e.quantile(c); math.Abs(got-want) > 1e-12 || lo != wantMin || hi != wantMax {
			t.Fatalf("%v: p95 %v min %v max %v, want %v %v %v", xs, got, lo, hi, want, wantMin, wantMax)
		}
	}
	f([]float64{5}, 5, 5, 5)
	f([]float64{2, 1}, 1.95, 1, 2)
	f([]float64{3, 1, 2}, 2.9, 1, 3)
	f([]float64{4, 1, 3, 2}, 3.85, 1, 4)
	f([]float64{5, 1, 4, 2, 3}, 4.8, 1, 5)
	f([]float64{-1, -1, -1, -1, -1}, -1, -1, -1)
	f([]float64{10, 0, 0, 0, 0}, 8, 0, 10)
	f([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 9.55, 1, 10)
	f([]float64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 11.45, 1, 12)
}

// TestP2TakesOver: past p2Exact samples the estimate comes from markers
// started at the order statistics nearest their positions: min and max stay
// exact, and on a rising series (P²'s hard case: every sample lands above
// the markers, which may move one position per sample) the p95 stays within
// 2.5 order statistics of the exact value.
func TestP2TakesOver(t *testing.T) {
	for n := p2Exact + 1; n <= 40; n++ {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(i + 1)
		}
		e, c := feedP2(xs)
		exact := exactQuantile(xs, p2Quantile)
		got := e.quantile(c)
		if lo, hi := e.minMax(c); lo != 1 || hi != float64(n) {
			t.Fatalf("n=%d: min/max %v %v", n, lo, hi)
		}
		if math.Abs(got-exact) > 2.5 {
			t.Errorf("n=%d: p95 %v, exact %v", n, got, exact)
		}
	}
}

// TestP2Accuracy compares the P² estimate with the exact p95 of 100,000
// samples of several distributions: within 1% (relative, or of the range
// for the uniform distribution).
func TestP2Accuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 1985))
	const n = 100_000
	f := func(name string, scale func(exact float64, xs []float64) float64, gen func(i int) float64) {
		t.Helper()
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = gen(i)
		}
		e, c := feedP2(xs)
		got := e.quantile(c)
		slices.Sort(xs)
		exact := exactQuantile(xs, p2Quantile)
		err := math.Abs(got-exact) / scale(exact, xs)
		t.Logf("%-12s p95 exact %.6g, P² %.6g, error %.3f%%", name, exact, got, 100*err)
		if err > 0.01 {
			t.Errorf("%s: P² p95 %v, exact %v: error %.3f%% > 1%%", name, got, exact, 100*err)
		}
		if lo, hi := e.minMax(c); lo != xs[0] || hi != xs[n-1] {
			t.Errorf("%s: min/max %v %v, want %v %v", name, lo, hi, xs[0], xs[n-1])
		}
	}
	relative := func(exact float64, _ []float64) float64 { return math.Abs(exact) }
	ofRange := func(_ float64, xs []float64) float64 { return xs[len(xs)-1] - xs[0] }
	f("uniform", ofRange, func(int) float64 { return rng.Float64() })
	f("normal", relative, func(int) float64 { return 100 + 15*rng.NormFloat64() })
	f("exponential", relative, func(int) float64 { return rng.ExpFloat64() })
	f("lognormal", relative, func(int) float64 { return math.Exp(rng.NormFloat64()) })
	// Ordered input, as from a counter.
	f("ascending", ofRange, func(i int) float64 { return float64(i) })
	f("descending", ofRange, func(i int) float64 { return float64(n - i) })
}
