package anomaly

import (
	"errors"
	"fmt"
	"math"
)

// Config sets how a Detector's residual scales (Scorers) adapt. The rest
// of the detector (its seasonal forecast, its scale floor, its episodes)
// needs no configuration.
type Config struct {
	// WarmUp is how many residuals a series must have seen before it is
	// warm: before that its scores are computed but nothing acts on them.
	WarmUp int
	// HalfLife, in points, is how fast the residual scale follows a
	// change in noise: after HalfLife points an old residual weighs half.
	HalfLife int
	// Clip bounds, in units of the current scale, how much one residual can
	// move the scale: an outlier must not hide the ones that follow it.
	Clip float64
}

// DefaultConfig is the analyzer's default.
func DefaultConfig() Config { return Config{WarmUp: 30, HalfLife: 200, Clip: 4} }

// Validate reports every bad setting.
func (c Config) Validate() error {
	var errs []error
	if c.WarmUp < 2 {
		errs = append(errs, fmt.Errorf("anomaly warm-up %d: want ≥ 2", c.WarmUp))
	}
	if c.HalfLife < 1 {
		errs = append(errs, fmt.Errorf("anomaly half-life %d: want ≥ 1", c.HalfLife))
	}
	if !(c.Clip >= 1) || math.IsInf(c.Clip, 0) {
		errs = append(errs, fmt.Errorf("anomaly clip %v: want a finite value ≥ 1", c.Clip))
	}
	return errors.Join(errs...)
}

// Params are a Config turned into what Observe needs; shared by every
// Detector and Scorer of a partition so that a Scorer stays 16 bytes.
type Params struct {
	warmUp uint32
	decay  float64 // weight kept by the old scale at each point
	clip   float64
}

// NewParams validates c.
func NewParams(c Config) (Params, error) {
	if err := c.Validate(); err != nil {
		return Params{}, err
	}
	return Params{warmUp: uint32(c.WarmUp), decay: math.Exp2(-1 / float64(c.HalfLife)), clip: c.Clip}, nil
}

// Scorer tracks the residual scale of one forecast of one series: an
// exponentially weighted mean absolute residual, clipped so that an outlier
// cannot hide the next one. Its zero value is ready. Not safe for
// concurrent use.
type Scorer struct {
	n   uint32
	mad float64 // exponentially weighted mean absolute residual
}

// madToSigma turns a mean absolute deviation into a standard deviation for
// normal residuals.
const madToSigma = 1.2533141373155003 // √(π/2)

// minScale keeps z finite on series with no noise at all (a constant
// forecast exactly): any change from such a series is maximally surprising.
const minScale = 1e-9

// Observe scores residual (actual − forecast) against the scale seen so
// far, σ = max(√(π/2)·mean |residual|, floor), then folds it into the
// scale. It returns the z-score |residual|/σ (0 for the first residual,
// which has no scale to be judged by) and whether the series is warm. A
// residual counts at most Clip·σ towards the scale. A non-finite residual
// scores 0 and leaves the scale alone. floor ≥ 0 is the caller's lower
// bound on σ: the detector passes the series' typical step, so that a
// noise-free series does not score its own rounding errors.
func (s *Scorer) Observe(residual, floor float64, p Params) (z float64, warm bool) {
	warm = s.n >= p.warmUp
	if !finite(residual) {
		return 0, warm
	}
	a := math.Abs(residual)
	sigma := s.Scale(floor)
	if s.n > 0 {
		z = a / sigma
	}
	// Average plainly until the window is full, then decay.
	w := p.decay
	if s.n < p.warmUp {
		w = float64(s.n) / float64(s.n+1)
	} else if s.n > 0 {
		a = min(a, p.clip*sigma)
	}
	s.mad = w*s.mad + (1-w)*a
	if s.n < math.MaxUint32 {
		s.n++
	}
	return z, warm
}

// Sigma is the residual scale (standard deviation) without a floor.
func (s *Scorer) Sigma() float64 { return s.mad * madToSigma }

// Scale is the residual scale z is measured in: Sigma, at least floor,
// and never below minScale.
func (s *Scorer) Scale(floor float64) float64 {
	return max(s.mad*madToSigma, floor, minScale*(1+math.Abs(s.mad)))
}

// Warm reports whether the series has seen its warm-up.
func (s *Scorer) Warm(p Params) bool { return s.n >= p.warmUp }

// Score maps a z-score to [0,1] on a log scale of its two-sided normal
// tail probability: score s means p = 10^(−12·s). So 0.25 ≈ z 3, 0.5 ≈ z 4.9,
// 0.75 ≈ z 6.1, and 1 from z ≈ 7.1 (p ≤ 10⁻¹²) on. A log scale keeps large
// surprises apart where a plain probability would round them all to 1.
func Score(z float64) float64 {
	if !(z > 0) {
		return 0
	}
	p := math.Erfc(z / math.Sqrt2)
	if p <= 0 {
		return 1
	}
	return min(1, -math.Log10(p)/12)
}
