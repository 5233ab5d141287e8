package forecast

import (
	"errors"
	"fmt"
	"strconv"
)

// Kind names a forecasting model.
type Kind string

// The models a Forecaster can run.
const (
	Holt        Kind = "holt"         // level + trend (double exponential smoothing)
	HoltWinters Kind = "holt-winters" // level + trend + additive season
	AR          Kind = "ar"           // autoregression fitted by recursive least squares
	Auto        Kind = "auto"         // the best of the above by recent error
)

// MaxOrder is the largest AR order. The AR state is sized by it, not by the
// configured order, so that it lives in fixed arrays inside the Forecaster:
// its covariance matrix holds (MaxOrder+1)(MaxOrder+2)/2 = 45 float64.
const MaxOrder = 8

const (
	// maxSeason bounds Season: every series keeps Season float64, and a
	// week of one-minute points (79 KiB per series) is already far beyond
	// a daily or weekly cycle at the resolutions the analyzer sees.
	maxSeason = 7 * 24 * 60
	// maxHalfLife bounds ErrorHalfLife: beyond a million points the
	// per-point decay 2^(−1/h) is within 1e-6 of 1 and the score sums
	// (e² clamped to 1e300, see score.add) could overflow.
	maxHalfLife = 1_000_000
	// minForgetting bounds Forgetting from below: λ = 0.9 remembers about
	// 1/(1−λ) = 10 points, the number of unknowns of an AR(8) with its
	// intercept; less would fit noise.
	minForgetting = 0.9
)

// Config configures a Forecaster. DefaultConfig holds the defaults.
type Config struct {
	// Kind is the model: Holt, HoltWinters, AR or Auto.
	Kind Kind
	// Alpha is the level smoothing factor of Holt and Holt-Winters: (0, 1].
	Alpha float64
	// Beta is the trend smoothing factor of Holt and Holt-Winters: [0, 1].
	Beta float64
	// Gamma is the seasonal smoothing factor of Holt-Winters: [0, 1].
	Gamma float64
	// Season is the season length in points: 2..10080 for HoltWinters; 0
	// (no seasonal model) or 2..10080 for Auto; 0 for Holt and AR, which
	// have no season, so that a season set for them is reported rather
	// than silently ignored.
	Season int
	// Order is the AR order p: 1..MaxOrder.
	Order int
	// Forgetting is the RLS forgetting factor λ of AR: [0.9, 1]. The fit
	// weighs a residual k points old by λᵏ, remembering about 1/(1−λ)
	// points; 1 never forgets.
	Forgetting float64
	// ErrorHalfLife is the half-life, in points, of the exponentially
	// weighted one-step squared error: Auto picks the model with the
	// lowest, and Interval and Sigma use it as the residual variance.
	// 1..1,000,000, for every kind.
	ErrorHalfLife int
}

// DefaultConfig returns the defaults, the one place they live:
//
//   - Kind Auto: no single model wins on every metric; running Holt and
//     AR(3) side by side costs 768 bytes and about 70 ns per point.
//   - Alpha 0.3, Beta 0.1, Gamma 0.1: usual values when the parameters
//     are not fitted per series: the level follows within a few points,
//     the trend and season over tens, so one noisy point moves neither
//     much.
//   - Season 0: the season length depends on the series' resolution; the
//     caller sets it (e.g. 24 for hourly points with a daily cycle).
//   - Order 3: enough for a trend (w = 2, −1) plus one damped oscillation
//     or mean reversion; higher orders cost O(p²) per point and fit noise.
//   - Forgetting 0.998: remembers about 500 points, long enough for a
//     stable fit of 4 coefficients, short enough to follow a regime change
//     within hours at one point a minute.
//   - ErrorHalfLife 50 points: the model choice and the interval follow a
//     change of behaviour within about a hundred points, while the
//     variance estimate rests on about 70 effective residuals (σ within
//     ~10%).
func DefaultConfig() Config {
	return Config{
		Kind:          Auto,
		Alpha:         0.3,
		Beta:          0.1,
		Gamma:         0.1,
		Order:         3,
		Forgetting:    0.998,
		ErrorHalfLife: 50,
	}
}

// uses reports which models a kind runs. An unknown kind runs them all, so
// that Validate reports every other problem in the same pass.
func (k Kind) uses() (holt, hw, ar bool) {
	switch k {
	case Holt:
		return true, false, false
	case HoltWinters:
		return false, true, false
	case AR:
		return false, false, true
	default: // Auto and unknown kinds
		return true, true, true
	}
}

// Validate reports every invalid setting of the fields the kind uses, each
// naming its value and the analyzer's flag (--model, --season, --ar-order)
// or, for fields without one, the field, joined with errors.Join. It
// returns nil for a valid Config.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, value, want string) {
		errs = append(errs, fmt.Errorf("%s %s: want %s", field, value, want))
	}
	holt, hw, ar := c.Kind.uses()
	switch c.Kind {
	case Holt, HoltWinters, AR, Auto:
	default:
		bad("--model", strconv.Quote(string(c.Kind)), `"holt", "holt-winters", "ar" or "auto"`)
	}
	if holt || hw {
		if !(c.Alpha > 0 && c.Alpha <= 1) { // NaN fails too
			bad("Alpha", formatFloat(c.Alpha), "a value in (0, 1]")
		}
		if !(c.Beta >= 0 && c.Beta <= 1) {
			bad("Beta", formatFloat(c.Beta), "a value in [0, 1]")
		}
	}
	seasonal := hw && (c.Kind == HoltWinters || c.Season != 0)
	switch {
	case c.Kind == HoltWinters && (c.Season < 2 || c.Season > maxSeason):
		bad("--season", strconv.Itoa(c.Season), fmt.Sprintf("2..%d points for holt-winters", maxSeason))
	case seasonal && c.Kind != HoltWinters && (c.Season < 2 || c.Season > maxSeason):
		bad("--season", strconv.Itoa(c.Season), fmt.Sprintf("0 (none) or 2..%d points", maxSeason))
	case (c.Kind == Holt || c.Kind == AR) && c.Season != 0:
		bad("--season", strconv.Itoa(c.Season), fmt.Sprintf("0: kind %q has no season", c.Kind))
	}
	if seasonal && !(c.Gamma >= 0 && c.Gamma <= 1) {
		bad("Gamma", formatFloat(c.Gamma), "a value in [0, 1]")
	}
	if ar {
		if c.Order < 1 || c.Order > MaxOrder {
			bad("--ar-order", strconv.Itoa(c.Order), fmt.Sprintf("1..%d", MaxOrder))
		}
		if !(c.Forgetting >= minForgetting && c.Forgetting <= 1) {
			bad("Forgetting", formatFloat(c.Forgetting), "a value in [0.9, 1]")
		}
	}
	if c.ErrorHalfLife < 1 || c.ErrorHalfLife > maxHalfLife {
		bad("ErrorHalfLife", strconv.Itoa(c.ErrorHalfLife), fmt.Sprintf("1..%d points", maxHalfLife))
	}
	return errors.Join(errs...)
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
