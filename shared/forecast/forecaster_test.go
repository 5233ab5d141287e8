package forecast

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func mustNew(t testing.TB, c Config) *Forecaster {
	t.Helper()
	f, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// near reports whether got is within tol of want, relative to max(1, |want|).
func near(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*max(1, math.Abs(want))
}

func autoConfig(season int) Config {
	c := DefaultConfig()
	c.Season = season
	return c
}

// TestAutoChooses: Auto settles on the model that fits the series' shape.
func TestAutoChooses(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	f := func(name string, season int, y func(i int, prev float64) float64, want ...Kind) {
		t.Helper()
		fc := mustNew(t, autoConfig(season))
		var v float64
		for i := range 24 * 40 {
			v = y(i, v)
			fc.Update(v)
		}
		t.Logf("%s: %s; mean squared errors holt %.3g, holt-winters %.3g, ar %.3g", name, fc.Model(),
			fc.scores[modelHolt].mse(), fc.scores[modelHW].mse(), fc.scores[modelAR].mse())
		if got := fc.Model(); !slices.Contains(want, got) {
			t.Errorf("%s: Model = %q, want one of %q (scores %+v)", name, got, want, fc.scores)
		}
	}
	f("season + trend + noise", 24, func(i int, _ float64) float64 { return seasonal(i) + 0.5*rng.NormFloat64() }, HoltWinters)
	f("trend + noise", 0, func(i int, _ float64) float64 { return 5 + 0.5*float64(i) + 0.2*rng.NormFloat64() }, Holt, AR)
	f("trend + noise, season configured", 24, func(i int, _ float64) float64 { return 5 + 0.5*float64(i) + 0.2*rng.NormFloat64() }, Holt, AR)
	f("mean reversion", 0, func(_ int, prev float64) float64 { return 10 + 0.3*(prev-10) + rng.NormFloat64() }, AR)
}

// TestIntervalCoverage: on stationary N(0, 1) noise, the 1.96σ one-step
// interval holds about 95% of the values, for every kind; on a random walk
// the AR's 10-step interval, √10 times wider, does too; and intervals
// widen with h.
func TestIntervalCoverage(t *testing.T) {
	const warm, n = 500, 20_000
	f := func(name string, c Config, h int, y func(prev float64) float64) {
		t.Helper()
		fc := mustNew(t, c)
		var lo, hi [64]float64 // intervals made h points ago, by point index mod 64
		var v float64
		in, total := 0, 0
		for i := range warm + n {
			v = y(v)
			if i >= warm+h {
				total++
				if j := i % 64; v >= lo[j] && v <= hi[j] {
					in++
				}
			}
			fc.Update(v)
			l, u, ok := fc.Interval(h, 1.96)
			if i >= warm && !ok {
				t.Fatalf("%s: Interval not ok after %d points", name, i)
			}
			lo[(i+h)%64], hi[(i+h)%64] = l, u
		}
		cover := float64(in) / float64(total)
		t.Logf("%s: %d-step coverage %.4f", name, h, cover)
		if cover < 0.935 || cover > 0.965 {
			t.Errorf("%s: %d-step coverage %.4f, want 0.95 ± 0.015", name, h, cover)
		}
		prev := 0.0
		for k := 1; k <= 50; k++ {
			l, u, _ := fc.Interval(k, 1.96)
			if w := u - l; w < prev || w <= 0 {
				t.Fatalf("%s: Interval(%d) width %v, narrower than %v at h−1", name, k, w, prev)
			} else {
				prev = w
			}
		}
	}
	rng := rand.New(rand.NewPCG(7, 8))
	noise := func(float64) float64 { return 20 + rng.NormFloat64() }
	walk := func(prev float64) float64 { return prev + rng.NormFloat64() }
	for _, k := range []Kind{Holt, AR, Auto} {
		c := DefaultConfig()
		c.Kind = k
		f(string(k)+" on noise", c, 1, noise)
	}
	f("holt-winters on noise", Config{Kind: HoltWinters, Alpha: 0.3, Beta: 0.1, Gamma: 0.1, Season: 24, ErrorHalfLife: 50}, 1, noise)
	f("ar on a random walk, 10 steps", Config{Kind: AR, Order: 2, Forgetting: 0.998, ErrorHalfLife: 200}, 10, walk)
}

// finiteState reports whether every number f holds is finite.
func (f *Forecaster) finiteState() bool {
	all := func(vs ...float64) bool {
		for _, v := range vs {
			if !finite(v) {
				return false
			}
		}
		return true
	}
	a := &f.ar
	return all(f.holt.level, f.holt.trend, f.hw.level, f.hw.trend, a.origin, a.scale, a.tw, a.tmean, a.tm2) &&
		all(f.hw.season...) && all(a.hist[:]...) && all(a.w[:]...) && all(a.P[:]...) &&
		all(f.scores[0].sum, f.scores[1].sum, f.scores[2].sum, f.scores[0].weight, f.scores[1].weight, f.scores[2].weight)
}

// TestMissingValues: NaN and ±Inf are missing values: they leave no trace
// in the state, and on series the model fits exactly, forecasts stay exact
// across them (the model steps forward on its own exact forecast).
func TestMissingValues(t *testing.T) {
	missing := []float64{math.NaN(), math.Inf(1), math.Inf(-1)}
	f := func(c Config, y func(int) float64, gapsFrom, from int, tol float64) {
		t.Helper()
		rng := rand.New(rand.NewPCG(11, 12))
		fc := mustNew(t, c)
		for i := range 1500 {
			if i >= gapsFrom && rng.IntN(8) == 0 {
				fc.Update(missing[rng.IntN(3)])
			} else {
				if got, ok := fc.Predict(); i >= from && (!ok || !near(got, y(i), tol)) {
					t.Fatalf("%s: point %d: Predict = %v, %v, want %v", c.Kind, i, got, ok, y(i))
				}
				fc.Update(y(i))
			}
			if !fc.finiteState() {
				t.Fatalf("%s: point %d: non-finite state %+v", c.Kind, i, fc)
			}
		}
	}
	line := func(i int) float64 { return 3 + 2.5*float64(i) }
	sine := func(i int) float64 { return 100 + 10*math.Sin(2*math.Pi*float64(i)/10) }
	// Holt and AR leave missing values out of their warm-up; Holt-Winters
	// imputes them, inexactly (TestHoltWintersWarmupGap), so its gaps
	// start once it is ready.
	f(Config{Kind: Holt, Alpha: 0.3, Beta: 0.1, ErrorHalfLife: 10}, line, 0, 20, 1e-12)
	f(Config{Kind: HoltWinters, Alpha: 0.3, Beta: 0.1, Gamma: 0.1, Season: 24, ErrorHalfLife: 10}, seasonal, 48, 48, 1e-9)
	f(arConfig(2), sine, 0, 300, 1e-6)
	f(autoConfig(24), seasonal, 48, 200, 1e-9)
}

// TestExtremeValues: finite values near the float64 limits never make a
// Forecaster return NaN or ±Inf as ok, nor leave them in its state; Auto
// recovers on clean data.
func TestExtremeValues(t *testing.T) {
	extreme := []float64{1e308, -1e308, math.MaxFloat64, 1e300, -1e300, 0, 1e-300, 5, math.NaN(), math.Inf(1)}
	for _, c := range []Config{autoConfig(24), autoConfig(0),
		{Kind: Holt, Alpha: 1, Beta: 1, ErrorHalfLife: 10},
		{Kind: HoltWinters, Alpha: 0.3, Beta: 0.1, Gamma: 1, Season: 4, ErrorHalfLife: 10},
		{Kind: AR, Order: 8, Forgetting: 0.9, ErrorHalfLife: 1},
		{Kind: AR, Order: 1, Forgetting: 1, ErrorHalfLife: 1_000_000},
	} {
		fc := mustNew(t, c)
		check := func(i int) {
			t.Helper()
			if !fc.finiteState() {
				t.Fatalf("%+v, point %d: non-finite state %+v", c, i, fc)
			}
			if y, ok := fc.Predict(); ok && !finite(y) {
				t.Fatalf("%+v, point %d: Predict = %v", c, i, y)
			}
			if y, ok := fc.Ahead(7); ok && !finite(y) {
				t.Fatalf("%+v, point %d: Ahead(7) = %v", c, i, y)
			}
			if lo, hi, ok := fc.Interval(7, 1.96); ok && (math.IsNaN(lo) || math.IsNaN(hi) || lo > hi) {
				t.Fatalf("%+v, point %d: Interval = %v, %v", c, i, lo, hi)
			}
			if s, ok := fc.Sigma(); ok && !finite(s) {
				t.Fatalf("%+v, point %d: Sigma = %v", c, i, s)
			}
		}
		for i := range 3000 {
			fc.Update(extreme[(i*7+i/11)%len(extreme)])
			check(i)
		}
		for i := range 1000 {
			fc.Update(seasonal(i))
			check(3000 + i)
		}
		if c.Kind == Auto {
			if y, ok := fc.Predict(); !ok || math.Abs(y-seasonal(1000)) > 1 {
				t.Errorf("%+v: Predict = %v, %v after clean data, want %v", c, y, ok, seasonal(1000))
			}
		}
	}
}

// TestReset: a Forecaster after Reset behaves like a new one.
func TestReset(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	used, fresh := mustNew(t, autoConfig(12)), mustNew(t, autoConfig(12))
	for range 500 {
		used.Update(rng.NormFloat64())
	}
	used.Reset()
	for i := range 500 {
		v := seasonal(i) + rng.NormFloat64()
		used.Update(v)
		fresh.Update(v)
		a, aok := used.Predict()
		b, bok := fresh.Predict()
		if a != b || aok != bok || used.Model() != fresh.Model() {
			t.Fatalf("point %d: after Reset %v, %v (%s), fresh %v, %v (%s)", i, a, aok, used.Model(), b, bok, fresh.Model())
		}
	}
}

// TestNoAllocs: Update, Predict, Ahead and Interval do not allocate once
// the models are warm.
func TestNoAllocs(t *testing.T) {
	for _, c := range benchConfigs() {
		fc := mustNew(t, c)
		i := 0
		step := func() {
			fc.Update(seasonal(i) + float64(i%7))
			fc.Predict()
			fc.Ahead(30)
			fc.Interval(30, 1.96)
			i++
		}
		for range 200 {
			step()
		}
		if n := testing.AllocsPerRun(1000, step); n != 0 {
			t.Errorf("%s: %v allocations per point", c.Kind, n)
		}
	}
}

func TestAheadPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Ahead(0) did not panic")
		}
	}()
	mustNew(t, DefaultConfig()).Ahead(0)
}

// TestAheadMany: one pass over several horizons gives what Ahead gives for
// each, for every model, and allocates nothing.
func TestAheadMany(t *testing.T) {
	hs := []int{1, 2, 7, 30, 31, 200}
	for _, kind := range []Kind{Holt, HoltWinters, AR, Auto} {
		c := DefaultConfig()
		c.Kind = kind
		if kind == HoltWinters {
			c.Season = 12
		}
		f := mustNew(t, c)
		out := make([]float64, len(hs))
		if f.AheadMany(hs, out) {
			t.Fatalf("%s: AheadMany ok before any data", kind)
		}
		r := rand.New(rand.NewPCG(3, 4))
		for i := range 300 {
			f.Update(50 + 10*math.Sin(float64(i)/3) + 0.1*float64(i) + r.NormFloat64())
		}
		if !f.AheadMany(hs, out) {
			t.Fatalf("%s: AheadMany not ok after 300 points", kind)
		}
		for i, h := range hs {
			want, ok := f.Ahead(h)
			if !ok || out[i] != want {
				t.Errorf("%s: AheadMany at %d = %v, Ahead = %v (ok %v)", kind, h, out[i], want, ok)
			}
		}
		if n := testing.AllocsPerRun(100, func() { f.AheadMany(hs, out) }); n != 0 {
			t.Errorf("%s: AheadMany allocates %v times", kind, n)
		}
	}
}
