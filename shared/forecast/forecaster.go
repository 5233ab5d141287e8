package forecast

import (
	"fmt"
	"math"
)

// model indexes the models a Forecaster holds, in order of preference
// among equals.
type model uint8

const (
	modelHolt model = iota
	modelHW
	modelAR
	numModels
)

func (m model) kind() Kind {
	switch m {
	case modelHolt:
		return Holt
	case modelHW:
		return HoltWinters
	default:
		return AR
	}
}

const (
	// minScored is how many one-step residuals a model needs before Auto
	// may choose it by its error and before Interval and Sigma answer: the
	// standard deviation estimated from k residuals is off by about
	// 1/√(2k), 22% at 10.
	minScored = 10
	// maxSquaredError clamps a squared residual, so that a score, a sum
	// of at most 1/(1−decay) ≈ 1.5e6 of them (maxHalfLife), stays finite.
	maxSquaredError = 1e300
)

// score is the exponentially weighted mean squared one-step error of one
// model: sum/weight, with sum = Σ dᵏ·e²(t−k) and weight = Σ dᵏ over the
// residuals scored so far. Dividing by the weight rather than by its limit
// 1/(1−d) makes the mean exact from the first residual.
type score struct {
	sum, weight float64
	n           uint8 // residuals scored, saturating at minScored
}

func (s *score) add(e, decay float64) {
	e2 := e * e
	if !(e2 <= maxSquaredError) { // NaN too
		e2 = maxSquaredError
	}
	s.sum = decay*s.sum + e2
	s.weight = decay*s.weight + 1
	if s.n < minScored {
		s.n++
	}
}

func (s *score) mse() float64 { return s.sum / s.weight }

// Forecaster forecasts one series online, one point at a time, with the
// model(s) its Config selects; see the package documentation. Update and
// Predict cost O(1) (AR: O(p²)) and do not allocate. A Forecaster is not
// safe for concurrent use: one goroutine owns it, like the rest of its
// series' state.
type Forecaster struct {
	holt   holtModel
	hw     hwModel
	ar     arModel
	scores [numModels]score
	decay  float64 // per-point weight decay of the scores: 2^(−1/ErrorHalfLife)
	active [numModels]bool
	cur    model // the model Predict uses
}

// New returns a Forecaster for c, or the error of c.Validate. With a
// season, it allocates the season's Season float64 here, once.
func New(c Config) (*Forecaster, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("forecast config: %w", err)
	}
	holt, hw, ar := c.Kind.uses()
	hw = hw && c.Season > 0
	f := &Forecaster{
		holt:   holtModel{alpha: c.Alpha, beta: c.Beta},
		ar:     newAR(c.Order, c.Forgetting),
		decay:  math.Exp2(-1 / float64(c.ErrorHalfLife)),
		active: [numModels]bool{modelHolt: holt, modelHW: hw, modelAR: ar},
	}
	if hw {
		f.hw = newHW(c.Alpha, c.Beta, c.Gamma, c.Season)
	}
	f.cur = f.first()
	return f, nil
}

// first returns the first active model.
func (f *Forecaster) first() model {
	for m := range numModels {
		if f.active[m] {
			return m
		}
	}
	panic("forecast: no active model") // New validated the kind
}

func (f *Forecaster) ready(m model) bool {
	switch m {
	case modelHolt:
		return f.holt.ready()
	case modelHW:
		return f.hw.ready()
	default:
		return f.ar.ready()
	}
}

// Update feeds the series' next value. A non-finite value (NaN, ±Inf) is
// a missing observation: each model that can forecast steps forward as if
// its forecast had been observed, learning nothing, so that trends go on
// and the seasonal phase stays aligned with time. During warm-up, Holt and
// AR leave it out; Holt-Winters, to keep its phase, imputes the previous
// value in its first season and the value one season earlier in its
// second. Residual statistics ignore missing values. Callers that count
// them do so themselves: they see the value too.
func (f *Forecaster) Update(y float64) {
	if !finite(y) {
		f.skip()
		return
	}
	if f.active[modelHolt] {
		if yhat, ok := f.holt.update(y); ok {
			f.scores[modelHolt].add(y-yhat, f.decay)
		}
	}
	if f.active[modelHW] {
		if yhat, ok := f.hw.update(y); ok {
			f.scores[modelHW].add(y-yhat, f.decay)
		}
	}
	if f.active[modelAR] {
		if yhat, ok := f.ar.update(y); ok {
			f.scores[modelAR].add(y-yhat, f.decay)
		}
	}
	f.choose()
}

func (f *Forecaster) skip() {
	if f.active[modelHolt] {
		f.holt.skip()
	}
	if f.active[modelHW] {
		f.hw.skip()
	}
	if f.active[modelAR] {
		f.ar.skip()
	}
	f.choose()
}

// choose sets cur to the ready model with the lowest score among those
// scored at least minScored times; to the first ready model if none is;
// and leaves it otherwise. A model that started over (overflow, a missing
// value during warm-up) loses its score.
func (f *Forecaster) choose() {
	best, fallback := numModels, numModels
	bestMSE := math.Inf(1)
	for m := range numModels {
		if !f.active[m] {
			continue
		}
		if !f.ready(m) {
			f.scores[m] = score{}
			continue
		}
		if fallback == numModels {
			fallback = m
		}
		if s := &f.scores[m]; s.n >= minScored && s.mse() < bestMSE {
			best, bestMSE = m, s.mse()
		}
	}
	switch {
	case best != numModels:
		f.cur = best
	case fallback != numModels:
		f.cur = fallback
	}
}

// Predict returns the forecast of the next value, the one the next Update
// will bring; ok is false while the model is warming up (Holt: 2 points,
// AR: Order points, Holt-Winters: 2·Season points; Auto: the first of its
// models) or if the forecast overflowed float64.
func (f *Forecaster) Predict() (yhat float64, ok bool) { return f.Ahead(1) }

// Ahead returns the forecast h ≥ 1 points ahead (Ahead(1) is Predict),
// with ok as for Predict. O(1), AR O(h·p). It panics if h < 1.
func (f *Forecaster) Ahead(h int) (yhat float64, ok bool) {
	if h < 1 {
		panic(fmt.Sprintf("forecast: Ahead(%d): want h ≥ 1", h))
	}
	switch f.cur {
	case modelHolt:
		if !f.holt.ready() {
			return 0, false
		}
		yhat = f.holt.forecast(h)
	case modelHW:
		if !f.hw.ready() {
			return 0, false
		}
		yhat = f.hw.forecast(h)
	default:
		if !f.ar.ready() {
			return 0, false
		}
		yhat = f.ar.forecast(h)
	}
	return yhat, finite(yhat)
}

// AheadMany sets out[i] to Ahead(hs[i]) for ascending horizons hs (each
// ≥ 1; out at least as long), in one pass: AR's recursion runs once to the
// last horizon instead of once per horizon, O(max(hs)·p) rather than
// O(Σhs·p). ok is false, and out unspecified, as Ahead would report for any
// of them. It does not allocate.
func (f *Forecaster) AheadMany(hs []int, out []float64) (ok bool) {
	if len(hs) == 0 {
		return true
	}
	if hs[0] < 1 {
		panic(fmt.Sprintf("forecast: AheadMany(%v): want horizons ≥ 1", hs))
	}
	switch f.cur {
	case modelHolt:
		if !f.holt.ready() {
			return false
		}
		for i, h := range hs {
			out[i] = f.holt.forecast(h)
		}
	case modelHW:
		if !f.hw.ready() {
			return false
		}
		for i, h := range hs {
			out[i] = f.hw.forecast(h)
		}
	default:
		if !f.ar.ready() {
			return false
		}
		f.ar.forecastMany(hs, out)
	}
	for _, y := range out[:len(hs)] {
		if !finite(y) {
			return false
		}
	}
	return true
}

// Sigma returns the standard deviation of the one-step residuals of the
// model in use: the root of their exponentially weighted mean square,
// with half-life ErrorHalfLife. The mean square rather than the variance
// around the mean residual, so that a biased model gets a wider interval.
// ok is false until the model has been scored on 10 points.
func (f *Forecaster) Sigma() (sigma float64, ok bool) {
	s := &f.scores[f.cur]
	if s.n < minScored {
		return 0, false
	}
	return math.Sqrt(s.mse()), true
}

// Interval returns the prediction interval forecast ± z·σ(h) for the value
// h ≥ 1 points ahead, with z ≥ 0 (1.96 for 95% if residuals are normal).
// σ(1) is Sigma; σ(h) widens it by the factor the model's own state-space
// form implies, assuming its residuals independent with constant variance
// and ignoring the uncertainty of its parameters:
//
//   - Holt: √(1 + Σ_{j=1}^{h−1} (α + jαβ)²)
//   - Holt-Winters: √(1 + Σ_{j=1}^{h−1} (α + jαβ + γ(1−α)·[Season divides j])²)
//   - AR: √(Σ_{j<h} ψⱼ²), ψ the impulse response of the fitted recursion
//     (√h for a random walk).
//
// The bounds may be infinite (an explosive AR fit far ahead). ok is false
// when Ahead(h) or Sigma is not ok. O(1), AR O(h·p). It panics if h < 1.
func (f *Forecaster) Interval(h int, z float64) (lo, hi float64, ok bool) {
	yhat, ok := f.Ahead(h)
	sigma, sok := f.Sigma()
	if !ok || !sok {
		return 0, 0, false
	}
	var v float64
	switch f.cur {
	case modelHolt:
		v = f.holt.varianceFactor(h)
	case modelHW:
		v = f.hw.varianceFactor(h)
	default:
		v = f.ar.varianceFactor(h)
	}
	// v is +Inf for an explosive AR; capped, σ = 0 gives 0 rather than NaN.
	half := z * sigma * math.Sqrt(min(v, math.MaxFloat64))
	return yhat - half, yhat + half, true
}

// Model returns the model Predict uses: the configured kind, or for Auto
// the one with the lowest recent error; until a model was scored on 10
// points, the first ready of Holt, Holt-Winters and AR.
func (f *Forecaster) Model() Kind { return f.cur.kind() }

// Season is the length of f's seasonal model, 0 without one: a Config
// that restores f's checkpoint needs it.
func (f *Forecaster) Season() int { return len(f.hw.season) }

// Reset forgets the series, as if f were new; it keeps the season's
// memory.
func (f *Forecaster) Reset() {
	f.holt.reset()
	if f.active[modelHW] {
		f.hw.reset()
	}
	f.ar.reset()
	f.scores = [numModels]score{}
	f.cur = f.first()
}

// finite reports whether x is neither NaN nor ±Inf.
func finite(x float64) bool { return math.Abs(x) <= math.MaxFloat64 }
