package anomaly

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSeasonFindsLag: a series with one of the periods gets that lag (or,
// for 24 and 48, a multiple that fits the same pattern no worse); a series
// without any gets none that beats plain noise.
func TestSeasonFindsLag(t *testing.T) {
	f := func(period int, want ...int) {
		t.Helper()
		rng := rand.New(rand.NewPCG(uint64(period), 1))
		var s season
		for i := range 3000 {
			phase := float64(i%period) / float64(period)
			y := 100 + 20*math.Sin(2*math.Pi*phase) + 10*float64(i%period/(period/4+1)) + rng.NormFloat64()*0.5
			s.update(y, y, 0, true)
		}
		lag, ok := s.best()
		if !ok {
			t.Fatalf("period %d: no lag eligible after 3000 points", period)
		}
		for _, w := range want {
			if seasonLag(lag) == w {
				return
			}
		}
		t.Errorf("period %d: best lag %d, want one of %v (mse %v)", period, seasonLag(lag), want, s.mse)
	}
	f(24, 24, 48, 96, 144, 168, 288, 336) // every lag is a multiple of 24
	f(48, 48, 96, 144, 288, 336)
	f(96, 96, 288)
	f(144, 144, 288)
	f(168, 168, 336)
	f(288, 288)
	f(336, 336)
}

// TestSeasonForecastsExactly: on a noise-free periodic series the lag in
// use forecasts every point to within the ring's rounding; a level shift
// leaves at most profileAlpha·bound in the profile (the level catching up
// is bounded like any surprise).
func TestSeasonForecastsExactly(t *testing.T) {
	const bound = 1
	var s season
	pattern := func(i int) float64 { return []float64{20, 20, 68, 80, 80, 32}[(i%288)/48] }
	var before, after float64
	for i := range 4500 {
		y := pattern(i)
		if i >= 3000 {
			y += 1000 // a level shift
		}
		lag, ok := s.best()
		if ok && i > 2000 {
			if seasonLag(lag) != 288 {
				t.Fatalf("point %d: lag %d, want 288", i, seasonLag(lag))
			}
			e := math.Abs(s.forecast(lag) - y)
			switch {
			case i < 3000:
				before = max(before, e)
			case i > 3000+2*levelSettle: // the level has caught up with the shift
				after = max(after, e)
			}
		}
		if ok {
			s.lock(lag)
		}
		s.update(y, y, bound, true)
	}
	if before > 1e-2 {
		t.Errorf("worst error %v on a noise-free periodic series", before)
	}
	if limit := profileAlpha*bound + 1e-2; after > limit {
		t.Errorf("worst error %v after a level shift, want ≤ %v", after, limit)
	}
}

// TestSeasonRing: deviations round-trip through the int16 ring to within
// one unit, the unit grows for a large deviation and shrinks back once it
// has left the ring.
func TestSeasonRing(t *testing.T) {
	f := func(d float64) {
		t.Helper()
		var s season
		s.store(d)
		if got := s.at(1); math.Abs(got-d) > math.Abs(d)/8192 {
			t.Errorf("store(%v): at(1) = %v", d, got)
		}
	}
	f(1)
	f(-3.7e-9)
	f(123456.789)
	f(-1e300)
	f(1e308)
	f(0)

	var tiny season
	tiny.store(5e-324) // its unit would underflow: stored as 0
	if tiny.unit != 0 || tiny.at(1) != 0 {
		t.Errorf("store(5e-324): unit %v, at(1) %v; want 0, 0", tiny.unit, tiny.at(1))
	}

	var s season
	for i := range ringLen {
		s.store(float64(i%7) - 3) // |d| ≤ 3
	}
	small := s.unit
	s.store(1e6) // grows the unit
	if s.unit <= small || math.Abs(s.at(1)-1e6) > 1e6/4096 {
		t.Fatalf("after a large deviation: unit %v (was %v), at(1) %v", s.unit, small, s.at(1))
	}
	if math.Abs(s.at(2)-(float64((ringLen-1)%7)-3)) > s.unit {
		t.Errorf("older deviation %v after the rescale", s.at(2))
	}
	for i := range 2 * ringLen {
		s.store(float64(i%7) - 3)
	}
	if s.unit > 3.0/4096 {
		t.Errorf("unit %v once the large deviation has left the ring, want ≤ %v", s.unit, 3.0/4096)
	}
	if got := s.at(1); math.Abs(got-(float64((2*ringLen-1)%7)-3)) > s.unit {
		t.Errorf("at(1) = %v after shrinking", got)
	}
}

// TestSeasonSkipKeepsPhase: a missing point takes a slot, so the pattern
// stays aligned.
func TestSeasonSkipKeepsPhase(t *testing.T) {
	var s season
	pattern := func(i int) float64 { return float64(i % 24) }
	for i := range 2000 {
		if i%100 == 7 {
			s.skip()
			continue
		}
		lag, ok := s.best()
		if ok && i > 1000 {
			if got := s.forecast(lag); math.Abs(got-pattern(i)) > 0.5 {
				t.Fatalf("point %d: forecast %v, want %v", i, got, pattern(i))
			}
		}
		if ok {
			s.lock(lag)
		}
		s.update(pattern(i), pattern(i), 1, true)
	}
}

func TestAddSquare(t *testing.T) {
	var m float64
	for k, e2 := range []float64{4, 16, 1} {
		addSquare(&m, e2, int64(k))
	}
	if m != 7 {
		t.Errorf("plain mean of 4, 16, 1 = %v, want 7", m)
	}
	m = 1
	addSquare(&m, 1001, warmErrors)
	if want := 1 + (1-lagDecay)*1000; math.Abs(m-want) > 1e-12 {
		t.Errorf("after an error of 1001: %v, want %v", m, want)
	}
	addSquare(&m, math.Inf(1), warmErrors+1)
	if !finite(m) {
		t.Errorf("an infinite error made the mean %v", m)
	}
}

// TestConstants checks the decays written out as constants.
func TestConstants(t *testing.T) {
	f := func(name string, got float64, halfLife float64) {
		t.Helper()
		if want := math.Exp2(-1 / halfLife); math.Abs(got-want) > 1e-15 {
			t.Errorf("%s = %v, want 2^(−1/%v) = %v", name, got, halfLife, want)
		}
	}
	f("lagDecay", lagDecay, lagHalfLife)
	f("stepDecay", stepDecay, stepHalfLife)
	f("onsetDecay", onsetDecay, onsetMemory)
	if want := math.Round(1 / (1 - lagDecay)); warmErrors != want {
		t.Errorf("warmErrors = %v, want 1/(1 − lagDecay) = %v", warmErrors, want)
	}
}
