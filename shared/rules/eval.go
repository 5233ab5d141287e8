package rules

import (
	"math"
	"time"
)

// MaxAheadSteps caps how many steps ahead a predictive rule looks: a `within`
// of 24h on a 1s series would be 86,400 steps, and projectors that iterate
// step by step pay for each. Beyond the cap the horizon is shortened to
// MaxAheadSteps × Step.
const MaxAheadSteps = 10_000

// AheadProbes is how many steps a predictive rule asks its Projector for:
// the horizon is cut into AheadProbes evenly spaced steps, the last being
// the horizon itself (every step when the horizon is shorter). A crossing
// that starts and ends between two probes is missed; forecasts are smooth
// enough for that not to matter, and it bounds the cost per point.
const AheadProbes = 16

// Sample is what a rule sees of one point of one series. The analyzer fills
// one per point and may reuse it; rules only read it and keep nothing.
type Sample struct {
	// Time is the point's event time in Unix nanoseconds.
	Time int64
	// Value is the point's value.
	Value float64
	// SMA and EMA are the series' moving averages, valid when HasAverages.
	SMA, EMA    float64
	HasAverages bool
	// Forecast is the one-step forecast made for this point before it was
	// seen, valid when HasForecast.
	Forecast    float64
	HasForecast bool
	// Z is the residual z-score and Score the anomaly score in [0,1]; both
	// are meaningful only when Warm. Anomaly rules are never active while
	// the series warms up.
	Z, Score float64
	Warm     bool
	// Ahead, which may be nil, gives multi-step forecasts for predictive
	// rules, and Step is the series' usual interval between points, which
	// turns a rule's `within` into steps. Without both, predictive rules
	// are inactive.
	Ahead Projector
	Step  time.Duration

	// Scratch for a ManyProjector, here rather than on Eval's stack: the
	// slices handed to an interface method would escape to the heap.
	aheadSteps [AheadProbes]int
	aheadOut   [AheadProbes]float64
}

// Projector forecasts a series ahead of its last point.
type Projector interface {
	// Ahead returns the forecast steps (≥ 1) intervals after the last point.
	// It must not allocate if Eval is to stay allocation-free.
	Ahead(steps int) float64
}

// ManyProjector is a Projector that also forecasts several ascending
// horizons in one call; predictive rules use it when the Sample's Ahead
// has it, since a model whose h-step forecast costs O(h) (autoregression)
// then runs once instead of once per probed horizon. It must not allocate.
type ManyProjector interface {
	Projector
	AheadMany(steps []int, out []float64)
}

// Verdict is the outcome of evaluating a rule's condition.
type Verdict struct {
	// Active reports whether the condition holds.
	Active bool
	// Value is what the condition looked at: the value, average or forecast
	// of a threshold; the score or (signed) z of an anomaly; the forecast
	// at the first crossing (or at the horizon) of a predictive rule; the
	// seconds since the last point of an absence rule.
	Value float64
	// Threshold is the configured bound, when HasThreshold; hysteresis does
	// not move it.
	Threshold    float64
	HasThreshold bool
}

// Eval evaluates the rule's condition on one point. wasActive is whether the
// condition was active at the previous evaluation of this rule on this
// series; it applies the hysteresis h:
//
//   - threshold above X and predictive above X: active when value > X, or
//     > X − h if it was active; below X: value < X, or < X + h;
//   - threshold outside [lo, hi]: value < lo or > hi, or < lo + h or
//     > hi − h if it was active; Threshold is whichever bound is nearer
//     the value;
//   - anomaly {score: s}: Warm and score ≥ s, or ≥ s − h if it was active;
//     {z: k}: Warm and |z| ≥ k, or ≥ k − h;
//   - predictive: the forecast is probed at AheadProbes steps spread over
//     ceil(within / Step) steps (at most MaxAheadSteps); Value is the
//     forecast at the first probe past the bound, or at the horizon;
//   - absence: never active here, a point has just arrived (see Absent).
//
// A condition whose input is missing (an average without HasAverages, a
// forecast without HasForecast, a predictive rule without Ahead or Step) is
// inactive. NaN values never cross a bound. Eval does not allocate.
func (r *Rule) Eval(s *Sample, wasActive bool) Verdict {
	h := 0.0
	if wasActive {
		h = r.Hysteresis
	}
	switch r.Kind {
	case Threshold:
		return r.evalThreshold(s, h)
	case Anomaly:
		c := &r.Anomaly
		if c.Z > 0 {
			return Verdict{Active: s.Warm && math.Abs(s.Z) >= c.Z-h, Value: s.Z, Threshold: c.Z, HasThreshold: true}
		}
		return Verdict{Active: s.Warm && s.Score >= c.Score-h, Value: s.Score, Threshold: c.Score, HasThreshold: true}
	case Predictive:
		return r.evalPredictive(s, h)
	case Absence:
		return Verdict{Threshold: r.Absence.For.Seconds(), HasThreshold: true}
	}
	return Verdict{}
}

func (r *Rule) evalThreshold(s *Sample, h float64) Verdict {
	c := &r.Threshold
	x, ok := s.Value, true
	switch c.Of {
	case OfSMA:
		x, ok = s.SMA, s.HasAverages
	case OfEMA:
		x, ok = s.EMA, s.HasAverages
	case OfForecast:
		x, ok = s.Forecast, s.HasForecast
	}
	v := Verdict{Value: x, Threshold: c.Bound, HasThreshold: true}
	switch c.Op {
	case Above:
		v.Active = ok && x > c.Bound-h
	case Below:
		v.Active = ok && x < c.Bound+h
	case Outside:
		v.Threshold = c.Hi
		if x < c.Lo+(c.Hi-c.Lo)/2 {
			v.Threshold = c.Lo
		}
		v.Active = ok && (x < c.Lo+h || x > c.Hi-h)
	}
	return v
}

func (r *Rule) evalPredictive(s *Sample, h float64) Verdict {
	c := &r.Predictive
	v := Verdict{Threshold: c.Bound, HasThreshold: true}
	if s.Ahead == nil || s.Step <= 0 || c.Within <= 0 {
		return v
	}
	steps := int64(c.Within / s.Step)
	if c.Within%s.Step != 0 {
		steps++
	}
	steps = min(steps, MaxAheadSteps)
	n := min(steps, AheadProbes)
	ks, ys := &s.aheadSteps, &s.aheadOut
	for i := int64(1); i <= n; i++ {
		ks[i-1] = int((i*steps + n - 1) / n) // ceil(i·steps/n): evenly spaced, the last is steps
	}
	many, isMany := s.Ahead.(ManyProjector)
	if isMany {
		many.AheadMany(ks[:n], ys[:n])
	}
	for i := range ks[:n] {
		if isMany {
			v.Value = ys[i]
		} else {
			v.Value = s.Ahead.Ahead(ks[i])
		}
		if c.Op == Below && v.Value < c.Bound+h || c.Op == Above && v.Value > c.Bound-h {
			v.Active = true
			break
		}
	}
	return v
}

// Absent evaluates an Absence rule at time now (Unix ns, event or wall time
// as the caller's clock goes) for a series last seen at lastSeen: active
// when now − lastSeen ≥ the rule's `for`. Value is the seconds since the
// last point (0 if now is before it), Threshold the `for` in seconds. For
// other kinds it returns the zero Verdict. It does not allocate.
func (r *Rule) Absent(lastSeen, now int64) Verdict {
	if r.Kind != Absence {
		return Verdict{}
	}
	d := max(now-lastSeen, 0)
	return Verdict{
		Active:       d >= int64(r.Absence.For),
		Value:        float64(d) / float64(time.Second),
		Threshold:    r.Absence.For.Seconds(),
		HasThreshold: true,
	}
}
