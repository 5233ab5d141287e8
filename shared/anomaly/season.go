package anomaly

import "math"

// seasonLag returns the i-th season length, in points, that a season
// tries, 0 ≤ i < numLags: a day or a week at the usual sampling steps
// (hourly: 24 and 168; 30 minutes: 48 and 336; 15 minutes: 96; 10 minutes:
// 144; 5 minutes: 288). Nothing needs to be configured: the lag whose
// forecasts have been best wins, and a series with none of these periods
// keeps to the detector's forecaster.
func seasonLag(i int) int { return [numLags]int{24, 48, 96, 144, 168, 288, 336}[i] }

const (
	numLags = 7
	// ringLen is the history a season keeps: its longest lag.
	ringLen = 336
	// minLagScored is how many forecasts a lag must have been scored on
	// after its first full season before it may be chosen: fewer would let
	// a lag that has only seen a quiet part of the day look perfect.
	minLagScored = 50
	// levelAlpha is the smoothing factor of the level the deviations are
	// taken from, an exponential average of the last few points: the
	// deviations carry the turns of the pattern, and a level shift
	// reaches the seasonal forecast within a few points.
	levelAlpha = 0.3
	// levelSettle is how many points the level needs to forget its start
	// (the first value; 0.7²⁰ < 0.1%): the deviations of those points are
	// never compared with, lest the level's start pass for a pattern.
	levelSettle = 20
	// profileAlpha is the weight of the newest deviation in the profile of
	// the lag in use: each slot becomes an exponential average over
	// seasons (as Holt-Winters' season), which brings the error variance
	// of a plain "same time last season" forecast from 2σ² down to about
	// 1.15σ², and lets an anomaly (clipped first, see update) leave only a
	// quarter of itself for the next season.
	profileAlpha = 0.25
	// lagHalfLife is the half-life, in points, of each lag's mean square
	// error: long enough to span a day's pattern at 5-minute points,
	// short enough to follow a series whose pattern changes.
	lagHalfLife = 500
	// lagDecay is 2^(−1/lagHalfLife) (TestConstants checks it).
	lagDecay = 0.9986146661010289
	// warmErrors is how many errors a mean square error averages plainly
	// before it decays, so that it is exact from the first error: 1/(1 −
	// lagDecay), where the two weigh a new error alike (TestConstants
	// checks it). Handing over sooner, at 20, made the first 20 errors
	// weigh as much as 700 later ones for hundreds of points, and the
	// detector chose between forecasts on 20 errors: on a patternless
	// series, the best of 7 lags by luck.
	warmErrors = 722
)

// season forecasts a series by its deviation from its level one season
// ago: ŷ(t) = level(t) + d(t−L), where d is each point's deviation from
// the level when it arrived. It works in two phases.
//
//   - Discovering: the ring holds the raw deviations, and every lag's
//     forecast is scored (mean square error), so that the detector can use
//     the best one, until every lag has had its chance (eligible).
//   - Locked on the lag in use (see lock): each slot of the ring becomes
//     that lag's profile, an exponential average over seasons (as in
//     Holt-Winters; see profileAlpha). Only that lag is scored then: the
//     others would be judged on a profile not theirs. unlock goes back to
//     discovering, from scratch.
//
// The deviations of the last ringLen points live in a ring of int16 in
// units of a power of two, so that a week at 30-minute points costs 672
// bytes; a unit is 1/4,096 to 1/32,767 of the largest deviation in the
// ring. update is O(numLags), except that once per ringLen points the ring
// is rescanned (O(ringLen)) so that its unit can shrink back after a large
// deviation has left it. The zero value is ready.
type season struct {
	ring   [ringLen]int16
	mse    [numLags]float64 // mean square error of each lag's forecast
	level  float64
	unit   float64 // value of one ring step: a power of two; 0 until needed
	n      uint32  // points stored, saturating
	from   uint32  // n when discovery began
	pos    uint16  // ring index of the next point
	locked int8    // 1 + the index of the lag locked on; 0 while discovering
}

// at returns the deviation stored k points ago, 1 ≤ k ≤ ringLen.
func (s *season) at(k int) float64 {
	i := int(s.pos) - k
	if i < 0 {
		i += ringLen
	}
	return float64(s.ring[i]) * s.unit
}

// seen is how many points discovery has seen.
func (s *season) seen() int64 { return int64(s.n) - int64(s.from) }

// eligible reports whether lag i may be chosen: a full season of history
// to forecast from, and minLagScored forecasts scored after that.
func (s *season) eligible(i int) bool {
	return s.seen() >= int64(2*seasonLag(i)+minLagScored)
}

// best returns the lag locked on, or else the eligible lag with the lowest
// mean square error, if any.
func (s *season) best() (lag int, ok bool) {
	if s.locked > 0 {
		return int(s.locked) - 1, true
	}
	best := -1
	for i := range numLags {
		if s.eligible(i) && (best < 0 || s.mse[i] < s.mse[best]) {
			best = i
		}
	}
	return best, best >= 0
}

// lock locks on lag i, the one the detector uses, once every lag has been
// eligible (before, it does nothing: a longer season may still win).
func (s *season) lock(i int) {
	if s.locked == 0 && s.eligible(numLags-1) {
		s.locked = int8(i + 1)
	}
}

// unlock goes back to discovering from scratch, if locked: the ring holds
// a profile, not raw history, so every lag waits for a fresh season of it.
func (s *season) unlock() {
	if s.locked > 0 {
		s.locked, s.from, s.mse = 0, s.n, [numLags]float64{}
	}
}

// forecast returns lag i's forecast of the next point.
func (s *season) forecast(i int) float64 { return s.level + s.at(seasonLag(i)) }

// jitter is how much lag i's forecast would change if the pattern came one
// point early or late: the larger step between the deviation one season
// ago and its neighbours.
func (s *season) jitter(i int) float64 {
	l := seasonLag(i)
	j := math.Abs(s.at(l) - s.at(l-1))
	if l < ringLen {
		j = max(j, math.Abs(s.at(l+1)-s.at(l)))
	}
	return j
}

// update scores the lags' forecasts of the finite value y (every lag while
// discovering, the locked one when locked; none unless learn), then stores
// its deviation and moves the level towards x (y, or y clipped as an
// outlier). When locked, the slot moves from the deviation one season ago
// towards the new one by profileAlpha of the difference, the difference
// clipped at ±bound (the detector passes Clip times the residual scale),
// so that neither an anomaly nor the level catching up with a shift
// imprints the profile.
func (s *season) update(y, x, bound float64, learn bool) {
	if s.n == 0 {
		s.level = y
	}
	for i := range numLags {
		l := seasonLag(i)
		if k := s.seen() - int64(l) - levelSettle; learn && k >= 0 && (s.locked == 0 || i == int(s.locked)-1) {
			e := y - s.level - s.at(l)
			addSquare(&s.mse[i], e*e, k)
		}
	}
	d := y - s.level
	if s.locked > 0 {
		old := s.at(seasonLag(int(s.locked) - 1))
		d = old + profileAlpha*max(-bound, min(d-old, bound))
	}
	s.store(d)
	s.level += levelAlpha * (x - s.level)
	if !finite(s.level) {
		*s = season{} // overflowed: start over
	}
}

// skip steps past a missing value, keeping the ring in phase: it stores
// the best lag's forecast (the level, if none) as if it had been observed,
// learning nothing.
func (s *season) skip() {
	d := 0.0
	if i, ok := s.best(); ok {
		d = s.at(seasonLag(i))
	}
	s.store(d)
	s.level += levelAlpha * d
}

// store appends deviation d to the ring.
func (s *season) store(d float64) {
	q := 0.0
	if s.unit == 0 && d != 0 && finite(d) {
		// The first deviation lands at 2¹² to 2¹³ steps: room to grow 4×
		// before a rescale, and 1/4096 precision or better. (A
		// deviation so small that its unit underflows stays 0.)
		s.unit = math.Exp2(math.Ceil(math.Log2(math.Abs(d) / (1 << 13))))
	}
	if s.unit > 0 && finite(d) {
		q = math.Round(d / s.unit)
		if math.Abs(q) > math.MaxInt16 {
			s.grow(math.Abs(q))
			q = math.Round(d / s.unit)
		}
	}
	s.ring[s.pos] = int16(q)
	if s.pos++; s.pos == ringLen {
		s.pos = 0
		s.shrink()
	}
	if s.n < math.MaxUint32 {
		s.n++
	}
}

// grow doubles the unit until q steps fit in an int16 (with a step to
// spare for rounding), rounding the ring.
func (s *season) grow(q float64) {
	f := 1.0
	for q/f >= math.MaxInt16 {
		f *= 2
	}
	s.unit *= f
	for i, v := range s.ring {
		s.ring[i] = int16(math.Round(float64(v) / f))
	}
}

// shrink halves the unit, exactly, while the ring's largest value would
// still fit in 2¹³ steps, so that precision returns once a large deviation
// has left the ring.
func (s *season) shrink() {
	m := 0
	for _, v := range s.ring {
		m = max(m, abs16(v))
	}
	if m == 0 {
		s.unit = 0 // nothing left to keep: the next deviation sets the unit
		return
	}
	k := 0
	for m<<(k+1) < 1<<13 {
		k++
	}
	if k == 0 {
		return
	}
	for i := range s.ring {
		s.ring[i] <<= k
	}
	s.unit /= float64(int(1) << k)
}

func abs16(v int16) int {
	if v < 0 {
		return -int(v)
	}
	return int(v)
}

// addSquare folds the squared error e2 into the mean square error *m,
// after k earlier errors: a plain average for the first warmErrors, then
// an exponential average with half-life lagHalfLife. No error is clipped:
// a wild point (a spike, and a season later its echo) costs every model
// alike, and a clip relative to the mean would trap a mean that started
// near 0 on a flat stretch.
func addSquare(m *float64, e2 float64, k int64) {
	if !(e2 <= math.MaxFloat64) {
		e2 = math.MaxFloat64
	}
	if k < warmErrors {
		*m += (e2 - *m) / float64(k+1)
		return
	}
	*m += (1 - lagDecay) * (e2 - *m)
}

// finite reports whether x is neither NaN nor ±Inf.
func finite(x float64) bool { return math.Abs(x) <= math.MaxFloat64 }
