package movavg

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxHistory bounds SMAWindow and len(WMAWeights): every tracked
// series-field keeps that many float64 values, so 65,536 (512 KiB per
// series-field) is already far beyond any sensible window and keeps a typo
// from exhausting memory.
const maxHistory = 1 << 16

// maxLatenessWindows bounds AllowedLateness to that many rollup periods. A
// series-field keeps up to AllowedLateness/Rollup + 1 windows open (104 bytes
// each), so the bound caps that at 61.
const maxLatenessWindows = 60

// Params are the computations for one measurement. The zero value computes
// nothing.
type Params struct {
	// SMAWindow is the number of points the simple moving average spans:
	// 0 (off) or 2..65536.
	SMAWindow int
	// EMAAlpha is the smoothing factor of the exponential moving average:
	// 0 (off) or in (0, 1]. AlphaFromSpan converts a span.
	EMAAlpha float64
	// WMAWeights are the weights a₀, a₁, … of the weighted moving average
	// y(t) = Σ aᵢ·x(t−i), a₀ weighting the newest point. They are not
	// normalised: weights summing to 1 give an average. nil is off;
	// otherwise 1..65536 finite weights with a positive sum.
	WMAWeights []float64
	// Rollup is the length of the tumbling event-time windows, aligned to
	// the Unix epoch: 0 (off), or at least 1ms and a whole number of
	// milliseconds. A shorter window would hold a point or two and turn
	// every point into a rollup point; whole milliseconds keep window starts
	// exact for sinks that write with millisecond precision.
	Rollup time.Duration
}

// Config configures a Stage.
type Config struct {
	// Default applies to every measurement without an override.
	Default Params
	// Overrides replace Default entirely for the measurement they are keyed
	// by (a zero Params turns everything off for it).
	Overrides map[string]Params
	// AllowedLateness is how far behind the latest event time a point may
	// be and still count in its rollup window: ≥ 0 and at most 60 times
	// every rollup length.
	AllowedLateness time.Duration
	// MaxSeries bounds the series-field states tracked: 1..2³¹−1. Points of
	// further series-fields get no derived output (Result.Untracked).
	MaxSeries int
	// Fields, when not empty, limits derived output (moving averages and
	// rollups) to the fields matching one of the patterns; the others are
	// written raw only. InfluxDB's cost follows field values, and every
	// enabled average adds one per point and field. Empty: every field.
	Fields []FieldPattern
	// IdleFlush is how long in processing time (wall time) a series may go
	// without a point before Expire flushes the rollup windows its own
	// clock, run on at wall-clock pace, would have closed (see
	// Stage.Expire): 0 (never) or > 0. Windows otherwise wait for the
	// series' own event time to pass their end, which a series that stopped
	// never does.
	IdleFlush time.Duration
	// IdleTimeout is how long in processing time a series may go without a
	// point before Expire drops its state, its windows flushed first: 0
	// (never) or at least Rollup + AllowedLateness of every measurement with
	// rollups, so that a series that comes back, in real time, cannot reopen
	// a window already written (its watermark is forgotten with it).
	IdleTimeout time.Duration
}

// Validate reports every invalid setting, each naming its flag and value:
// --sma-window, --ema-alpha, --wma-weights, --rollup, --allowed-lateness,
// --max-series, --series-idle-timeout, --idle-flush, and --stage-override with the
// measurement for the overrides.
func (c Config) Validate() error {
	errs := paramProblems(c.Default, "", false)
	names := make([]string, 0, len(c.Overrides))
	for m := range c.Overrides {
		names = append(names, m)
	}
	slices.Sort(names) // a stable message
	for _, m := range names {
		if m == "" {
			errs = append(errs, errors.New(`--stage-override "": the measurement name is empty`))
		}
		errs = append(errs, paramProblems(c.Overrides[m], m, true)...)
	}
	for _, p := range c.Fields {
		if err := p.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.AllowedLateness < 0 {
		errs = append(errs, fmt.Errorf("--allowed-lateness %s: want ≥ 0", c.AllowedLateness))
	}
	if c.MaxSeries < 1 || c.MaxSeries > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("--max-series %d: want 1..%d", c.MaxSeries, math.MaxInt32))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("--series-idle-timeout %s: want 0 (never) or > 0", c.IdleTimeout))
	}
	if c.IdleFlush < 0 {
		errs = append(errs, fmt.Errorf("--idle-flush %s: want 0 (never) or > 0", c.IdleFlush))
	}
	check := func(r time.Duration, where string) {
		if r <= 0 || c.AllowedLateness < 0 || r%time.Millisecond != 0 {
			return // off, or reported above
		}
		if c.AllowedLateness > maxLatenessWindows*r {
			errs = append(errs, fmt.Errorf("--allowed-lateness %s: want at most %d × %s (up to %d windows open per series)",
				c.AllowedLateness, maxLatenessWindows, where, maxLatenessWindows+1))
		}
		if need := r + c.AllowedLateness; c.IdleTimeout > 0 && c.IdleTimeout < need {
			errs = append(errs, fmt.Errorf("--series-idle-timeout %s: want 0 (never) or ≥ %s + --allowed-lateness = %s, so that a series coming back cannot reopen a window written already",
				c.IdleTimeout, where, need))
		}
	}
	check(c.Default.Rollup, "--rollup "+c.Default.Rollup.String())
	for _, m := range names {
		r := c.Overrides[m].Rollup
		check(r, fmt.Sprintf("rollup=%s of --stage-override %q", r, m))
	}
	return errors.Join(errs...)
}

// paramProblems returns what is wrong with p, naming the flags of Default, or
// --stage-override and its keys when override is set.
func paramProblems(p Params, measurement string, override bool) []error {
	var errs []error
	bad := func(flag, key, value, want string) {
		if override {
			errs = append(errs, fmt.Errorf("--stage-override %q: %s=%s: %s", measurement, key, value, want))
		} else {
			errs = append(errs, fmt.Errorf("%s %s: %s", flag, value, want))
		}
	}
	if p.SMAWindow != 0 && (p.SMAWindow < 2 || p.SMAWindow > maxHistory) {
		bad("--sma-window", "sma", strconv.Itoa(p.SMAWindow), fmt.Sprintf("want 0 (off) or 2..%d", maxHistory))
	}
	if a := p.EMAAlpha; a != 0 && !(a > 0 && a <= 1) { // NaN fails too
		bad("--ema-alpha", "ema", formatFloat(a), "want 0 (off) or a value in (0, 1]")
	}
	if p.WMAWeights != nil {
		if why := weightsProblem(p.WMAWeights); why != "" {
			v := strconv.Quote(formatWeights(p.WMAWeights, ","))
			if override {
				v = formatWeights(p.WMAWeights, "/")
			}
			bad("--wma-weights", "wma", v, why)
		}
	}
	if r := p.Rollup; r != 0 {
		switch {
		case r < time.Millisecond:
			bad("--rollup", "rollup", r.String(), "want 0 (off) or at least 1ms")
		case r%time.Millisecond != 0:
			bad("--rollup", "rollup", r.String(), "want a whole number of milliseconds")
		}
	}
	return errs
}

// weightsProblem returns why w cannot be WMA weights, or "".
func weightsProblem(w []float64) string {
	if len(w) == 0 {
		return "want at least one weight"
	}
	if len(w) > maxHistory {
		return fmt.Sprintf("want at most %d weights, got %d", maxHistory, len(w))
	}
	var sum float64
	for i, a := range w {
		if math.IsNaN(a) || math.IsInf(a, 0) {
			return fmt.Sprintf("weight %d is %v, want a finite number", i+1, a)
		}
		sum += a
	}
	if !(sum > 0) || math.IsInf(sum, 0) {
		return fmt.Sprintf("the weights sum to %v, want a finite sum > 0", sum)
	}
	return ""
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func formatWeights(w []float64, sep string) string {
	var b strings.Builder
	for i, a := range w {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(formatFloat(a))
	}
	return b.String()
}

// ParseWeights parses the --wma-weights syntax, comma-separated numbers,
// newest point's weight first ("0.5,0.3,0.2"; spaces around numbers are
// ignored), and validates them as Params.WMAWeights. Errors name
// --wma-weights.
func ParseWeights(s string) ([]float64, error) {
	w, err := parseWeights(s, ",")
	if err != nil {
		return nil, fmt.Errorf("--wma-weights %q: %w", s, err)
	}
	return w, nil
}

func parseWeights(s, sep string) ([]float64, error) {
	parts := strings.Split(s, sep)
	w := make([]float64, 0, len(parts))
	for i, f := range parts {
		a, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("weight %d %q: want a number", i+1, f)
		}
		w = append(w, a)
	}
	if why := weightsProblem(w); why != "" {
		return nil, errors.New(why)
	}
	return w, nil
}

// AlphaFromSpan returns the EMA smoothing factor of a span of span points,
// 2/(span+1), the convention of pandas' ewm(span=…). span must be a finite
// number ≥ 1 (1 gives alpha 1: no smoothing); errors name --ema-span.
func AlphaFromSpan(span float64) (float64, error) {
	if !(span >= 1) || math.IsInf(span, 0) {
		return 0, fmt.Errorf("--ema-span %s: want a finite number ≥ 1", formatFloat(span))
	}
	return 2 / (span + 1), nil
}

// ParseOverride parses one --stage-override value,
//
//	measurement:key=value[,key=value...]
//
// for example "cpu:sma=60,ema=0.2,wma=0.5/0.3/0.2,rollup=5m". The keys are
// sma (Params.SMAWindow, an integer), ema (Params.EMAAlpha), ema_span (the
// EMA given as a span, see AlphaFromSpan; not with ema), wma
// (Params.WMAWeights, separated by '/', newest first) and rollup
// (Params.Rollup, a Go duration). Any subset may be given, each key once;
// the computations not given are off, so "cpu:" turns everything off for
// cpu. Spaces around keys and values are ignored. The measurement is
// everything before the last ':' and may not contain '=' (which catches a
// ':' typed for a ','). The result is validated; every error names
// --stage-override and the measurement.
func ParseOverride(s string) (measurement string, p Params, err error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", Params{}, fmt.Errorf("--stage-override %q: want measurement:key=value,... (keys sma, ema, ema_span, wma, rollup)", s)
	}
	measurement, rest := s[:i], s[i+1:]
	switch {
	case measurement == "":
		return "", Params{}, fmt.Errorf("--stage-override %q: the measurement name is empty", s)
	case strings.ContainsRune(measurement, '='):
		return "", Params{}, fmt.Errorf("--stage-override %q: measurement %q contains '=': separate settings with ',', not ':'", s, measurement)
	}
	var errs []error
	seen := map[string]bool{}
	bad := func(key, value, want string) {
		errs = append(errs, fmt.Errorf("--stage-override %q: %s=%s: %s", measurement, key, value, want))
	}
	if strings.TrimSpace(rest) != "" {
		for item := range strings.SplitSeq(rest, ",") {
			k, v, ok := strings.Cut(item, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok {
				errs = append(errs, fmt.Errorf("--stage-override %q: %q: want key=value", measurement, item))
				continue
			}
			if seen[k] || (k == "ema" && seen["ema_span"]) || (k == "ema_span" && seen["ema"]) {
				bad(k, v, "given twice (ema and ema_span are one setting)")
				continue
			}
			seen[k] = true
			switch k {
			case "sma":
				n, err := strconv.Atoi(v)
				if err != nil {
					bad(k, v, "want an integer")
				}
				p.SMAWindow = n
			case "ema":
				a, err := strconv.ParseFloat(v, 64)
				if err != nil {
					bad(k, v, "want a number")
					a = 0
				}
				p.EMAAlpha = a
			case "ema_span":
				span, err := strconv.ParseFloat(v, 64)
				if err == nil {
					p.EMAAlpha, err = AlphaFromSpan(span)
				}
				if err != nil {
					bad(k, v, "want a finite number ≥ 1")
				}
			case "wma":
				w, err := parseWeights(v, "/")
				if err != nil {
					bad(k, v, err.Error())
					continue
				}
				p.WMAWeights = w
			case "rollup":
				d, err := time.ParseDuration(v)
				if err != nil {
					bad(k, v, "want a duration such as 1m")
				}
				p.Rollup = d
			default:
				errs = append(errs, fmt.Errorf("--stage-override %q: unknown key %q: want sma, ema, ema_span, wma or rollup", measurement, k))
			}
		}
	}
	if len(errs) == 0 {
		errs = paramProblems(p, measurement, true)
	}
	if err := errors.Join(errs...); err != nil {
		return "", Params{}, err
	}
	return measurement, p, nil
}
