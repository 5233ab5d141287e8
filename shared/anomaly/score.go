package anomaly

import (
	"errors"
	"fmt"
	"math"
)

// Config sets how a Detector judges points: how its residual scales
// (Scorers) adapt, and what makes an onset. The seasonal forecast and the
// scale floor need no configuration.
//
// The analyzer runs DefaultConfig apart from WarmUp (--warm-up). The rest
// were chosen on the NAB corpus, and `analyzer eval` chooses them again
// inside every fold of its cross-validation (see analyzer/eval.go), so
// that its headline score holds for series they were not chosen on.
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
	// OnsetZ is the residual z from which a surprise opens an episode.
	// An episode lasts at least MinEpisode points, then until CalmLen
	// points in a row have z below CalmZ, and at most MaxEpisode points:
	// long enough to cover the ringing after a surprise (a forecaster
	// thrown off, then re-converging), so that a burst, a level shift the
	// forecast is still catching up with, or a stretch of turbulence is
	// one episode, and not so long that a series never calm enough is
	// silenced for good.
	OnsetZ, CalmZ                   float64
	CalmLen, MinEpisode, MaxEpisode int
	// Escalation: a point whose z is Escalation times the largest of its
	// episode's so far opens a new episode however young the one it is
	// in: a spike in the middle of a series' turbulent stretch is news.
	Escalation float64
	// RecurrenceHalfLife, in points, is how long a series remembers its
	// onsets: an onset like the ones it has had recently scores by how
	// often those came (see Verdict.Score).
	RecurrenceHalfLife int
}

// DefaultConfig is the analyzer's default.
func DefaultConfig() Config {
	return Config{WarmUp: 30, HalfLife: 200, Clip: 4,
		OnsetZ: 5, CalmZ: 2.5, CalmLen: 50, MinEpisode: 100, MaxEpisode: 600, Escalation: 10,
		RecurrenceHalfLife: 3000}
}

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
	if !(c.CalmZ > 0 && c.OnsetZ > c.CalmZ) || math.IsInf(c.OnsetZ, 0) {
		errs = append(errs, fmt.Errorf("anomaly onset z %v, calm z %v: want 0 < calm z < onset z, finite", c.OnsetZ, c.CalmZ))
	}
	if c.CalmLen < 1 || c.MinEpisode < 0 || c.MaxEpisode < max(c.MinEpisode, 1) || c.MaxEpisode > math.MaxUint16 {
		errs = append(errs, fmt.Errorf("anomaly episodes: calm length %d, min %d, max %d points: want calm length ≥ 1, 0 ≤ min ≤ max ≤ %d",
			c.CalmLen, c.MinEpisode, c.MaxEpisode, math.MaxUint16))
	}
	if !(c.Escalation > 1) {
		errs = append(errs, fmt.Errorf("anomaly escalation %v: want > 1 (+Inf: never)", c.Escalation))
	}
	if c.RecurrenceHalfLife < 1 {
		errs = append(errs, fmt.Errorf("anomaly recurrence half-life %d: want ≥ 1", c.RecurrenceHalfLife))
	}
	return errors.Join(errs...)
}

// Params are a Config turned into what Observe needs; shared by every
// Detector and Scorer of a partition so that a Scorer stays 16 bytes.
type Params struct {
	warmUp uint32
	decay  float64 // weight kept by the old scale at each point
	clip   float64

	onsetZ, calmZ                   float64
	calmLen, minEpisode, maxEpisode uint16
	escalation                      float64
	recurDecay                      float64 // weight kept by a past onset at each point
	recurWindow                     float64 // points an onset counts for in all: RecurrenceHalfLife/ln 2
}

// NewParams validates c.
func NewParams(c Config) (Params, error) {
	if err := c.Validate(); err != nil {
		return Params{}, err
	}
	return Params{warmUp: uint32(c.WarmUp), decay: math.Exp2(-1 / float64(c.HalfLife)), clip: c.Clip,
		onsetZ: c.OnsetZ, calmZ: c.CalmZ, escalation: c.Escalation,
		calmLen: uint16(min(c.CalmLen, math.MaxUint16)), minEpisode: uint16(c.MinEpisode), maxEpisode: uint16(c.MaxEpisode),
		recurDecay:  math.Exp2(-1 / float64(c.RecurrenceHalfLife)),
		recurWindow: float64(c.RecurrenceHalfLife) / math.Ln2,
	}, nil
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
	return scoreOf(surprise(z))
}

// scoreOf maps a surprise (−log₁₀ of a probability) to [0, 1].
func scoreOf(s float64) float64 { return min(1, max(s, 0)/12) }

// surprise is −log₁₀ of the two-sided normal tail probability of z > 0,
// without the underflow of the plain formula beyond z ≈ 38: the
// recurrence of an onset (see onset.score) must be able to bring down
// even a huge z.
func surprise(z float64) float64 {
	if z < 30 {
		return -math.Log10(math.Erfc(z / math.Sqrt2))
	}
	// erfc(x) ≈ exp(−x²)/(x√π) for large x.
	x := z / math.Sqrt2
	return (x*x + math.Log(x*math.SqrtPi)) / math.Ln10
}
