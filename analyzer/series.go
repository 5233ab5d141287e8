package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/anomaly"
	"github.com/metricpipe/metricpipe/shared/forecast"
	"github.com/metricpipe/metricpipe/shared/movavg"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/rules"
	"github.com/metricpipe/metricpipe/shared/stream"
)

// analysis is how every series is analyzed; one per process, shared
// read-only by the partitions' engines.
type analysis struct {
	Forecast forecast.Config
	// Season, when set, is a seasonal period in time; each series turns it
	// into points from its own interval (Forecast.Season is then ignored).
	Season  time.Duration
	Anomaly anomaly.Config
	// IntervalZ is the width, in residual standard deviations, of the
	// prediction band written with every forecast.
	IntervalZ float64
	// SMAWindow and EMAAlpha are the moving averages threshold rules may
	// test ("of: sma", "of: ema").
	SMAWindow int
	EMAAlpha  float64
	// Repeat re-announces a firing alert this often (event time); 0: never.
	Repeat time.Duration
	// MaxSeries bounds the series one partition tracks.
	MaxSeries int
	// IdleTimeout forgets a series not seen for this long (event time)
	// unless one of its alerts is firing.
	IdleTimeout time.Duration
	// WriteForecasts writes each point's forecast, band and score to
	// InfluxDB; off, only alerts are written.
	WriteForecasts bool
}

func (a analysis) Validate() error {
	errs := []error{a.Forecast.Validate(), a.Anomaly.Validate()}
	if a.Season < 0 {
		errs = append(errs, fmt.Errorf("--season %s: want ≥ 0", a.Season))
	}
	if !(a.IntervalZ > 0) || math.IsInf(a.IntervalZ, 0) {
		errs = append(errs, fmt.Errorf("--interval-z %v: want a finite value > 0", a.IntervalZ))
	}
	if _, err := movavg.NewPlan(movavg.Params{SMAWindow: a.SMAWindow, EMAAlpha: a.EMAAlpha}); err != nil {
		errs = append(errs, err) // --sma-window, --ema-alpha: the consumer's bounds
	}
	if a.Repeat < 0 {
		errs = append(errs, fmt.Errorf("--repeat-interval %s: want ≥ 0", a.Repeat))
	}
	if a.MaxSeries < 1 {
		errs = append(errs, fmt.Errorf("--max-series %d: want ≥ 1", a.MaxSeries))
	}
	if a.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--series-idle-timeout %s: want > 0", a.IdleTimeout))
	}
	return errors.Join(errs...)
}

// configDescription names every setting the state of a series depends
// on, for the checkpoint's header: a checkpoint taken under other settings
// (another model, season, scoring or average) is refused rather than
// misread. Not described, because a restored state means the same under
// any value of them: the rules (each lifecycle is kept by its rule's name
// and definition, as on a reload), IntervalZ and WriteForecasts (they
// shape what is written, not what is learnt), Repeat (the next
// announcement of a firing alert follows the new interval, as it would
// after a restart with the new flag), MaxSeries and IdleTimeout (bounds
// and processing-time housekeeping).
func (a *analysis) configDescription() string {
	return fmt.Sprintf("forecast=%+v season=%d anomaly=%+v sma=%d ema=%x",
		a.Forecast, a.Season, a.Anomaly, a.SMAWindow, math.Float64bits(a.EMAAlpha))
}

// Output field suffixes written beside each analyzed field.
const (
	sufForecast = "_forecast"
	sufLower    = "_lower"
	sufUpper    = "_upper"
	sufScore    = "_anomaly_score"
)

// seasonPointsMax bounds a time season turned into points: a 24h season
// on a 1 s series would otherwise keep 86,400 components per series.
const seasonPointsMax = 4096

// series is the analyzer's state of one field of one series.
type series struct {
	key         string // series key and field: "cpu,host=a usage"
	measurement string
	field       string
	tags        []point.Tag
	outKeys     *[4]string // field + each output suffix, shared by the series of the partition with this field

	det      *anomaly.Detector // nil until the season is known
	avg      movavg.Averages   // under the engine's emaPlan: the EMA
	sma      *movavg.Averages  // under its smaPlan, while a rule tests the SMA
	n        uint32            // points seen (saturating)
	last     int64             // event time of the newest point
	step     int64             // typical interval between points, ns
	arrived  int64             // wall time the newest point arrived, for absence rules
	alerts   []ruleAlert
	rulesGen uint64 // generation of the rule set alerts were matched against
}

// ruleAlert is the lifecycle of one rule on one series. Its fingerprint
// is computed when an event needs it, not kept.
type ruleAlert struct {
	rule   *rules.Rule
	active bool // the condition held at the last evaluation
	lc     alert.Lifecycle
}

// firing reports whether any alert of the series is firing.
func (s *series) firing() bool {
	for i := range s.alerts {
		if s.alerts[i].lc.State() == alert.Firing {
			return true
		}
	}
	return false
}

// newSeries copies what it keeps of p: decoded strings share their
// message's memory, which a long-lived series must not hold on to.
func newSeries(key string, p *point.Point, field string, outKeys *[4]string) *series {
	tags := make([]point.Tag, len(p.Tags))
	for i, t := range p.Tags {
		tags[i] = point.Tag{Key: strings.Clone(t.Key), Value: strings.Clone(t.Value)}
	}
	return &series{key: key, measurement: strings.Clone(p.Measurement), field: outKeys[0][:len(field)], tags: tags, outKeys: outKeys}
}

// outputKeys returns the output field keys of field.
func outputKeys(field string) *[4]string {
	var k [4]string
	for i, suf := range [...]string{sufForecast, sufLower, sufUpper, sufScore} {
		k[i] = field + suf
	}
	return &k
}

// labels are the alert labels of the series: measurement, field and tags,
// then the rule's labels.
func (s *series) labels(r *rules.Rule) map[string]string {
	l := make(map[string]string, 2+len(s.tags)+len(r.Labels))
	l["measurement"], l["field"] = s.measurement, s.field
	for _, t := range s.tags {
		l[t.Key] = t.Value
	}
	for k, v := range r.Labels {
		l[k] = v
	}
	return l
}

// observeTime updates the series' interval estimate with a point at t.
func (s *series) observeTime(t int64) {
	if s.n > 0 && t > s.last {
		dt := t - s.last
		if s.step == 0 {
			s.step = dt
		} else {
			// A slow-moving average of the spacing that a single gap
			// (a missed scrape) cannot double.
			s.step += (min(dt, 2*s.step) - s.step) / 8
		}
	}
	s.last = max(s.last, t)
}

// ensureDetector builds the detector once the season is known in points:
// at once for a season in points, after two points otherwise.
func (s *series) ensureDetector(a *analysis) bool {
	if s.det != nil {
		return true
	}
	cfg := a.Forecast
	if a.Season > 0 {
		if s.step <= 0 {
			return false
		}
		m := int(int64(a.Season) / s.step)
		if m < 2 || m > seasonPointsMax {
			m = 0 // no usable season at this interval: forecast without one
		}
		cfg.Season = m
	}
	fc, err := forecast.New(cfg)
	if err != nil {
		// cfg was validated; only the derived season can be refused.
		cfg.Season = 0
		if fc, err = forecast.New(cfg); err != nil {
			return false
		}
	}
	s.det = anomaly.NewDetector(fc)
	return true
}

// average feeds x, the series' next value in arrival order, to its moving
// averages: the EMA always, the SMA while a rule tests it. An SMA a rule
// starts testing (a reload) warms up from the next value.
func (s *series) average(x float64, e *engine) {
	s.avg.Add(e.emaPlan, x)
	switch {
	case !e.smaOn:
		s.sma = nil
		return
	case s.sma == nil:
		a := movavg.NewAverages(e.smaPlan)
		s.sma = &a
	}
	s.sma.Add(e.smaPlan, x)
}

// smaValue is the SMA of the last --sma-window values, as the consumer's
// <field>_sma; NaN, on which no rule holds, while it warms up or no rule
// tested it.
func (s *series) smaValue(e *engine) float64 {
	if s.sma != nil {
		if v, ok := s.sma.SMA(e.smaPlan); ok {
			return v
		}
	}
	return math.NaN()
}

// emaValue is the EMA, as the consumer's <field>_ema; NaN when off.
func (s *series) emaValue(e *engine) float64 {
	if v, ok := s.avg.EMA(e.emaPlan); ok {
		return v
	}
	return math.NaN()
}

// checkpoint appends the series to e; index numbers the current rules,
// which its alerts must have been matched against.
func (s *series) checkpoint(e *stream.Encoder, index map[*rules.Rule]uint64) {
	e.String(s.measurement)
	e.Uvarint(uint64(len(s.tags)))
	for _, t := range s.tags {
		e.String(t.Key)
		e.String(t.Value)
	}
	e.String(s.field)
	e.Uvarint(uint64(s.n))
	e.Varint(s.last)
	e.Varint(s.step)
	e.Varint(s.arrived)
	s.avg.Checkpoint(e)
	e.Bool(s.sma != nil)
	if s.sma != nil {
		s.sma.Checkpoint(e)
	}
	e.Bool(s.det != nil)
	if s.det != nil {
		e.Uvarint(uint64(s.det.Forecaster().Season()))
		s.det.Checkpoint(e)
	}
	e.Uvarint(uint64(len(s.alerts)))
	for i := range s.alerts {
		ra := &s.alerts[i]
		e.Uvarint(index[ra.rule])
		e.Bool(ra.active)
		ra.lc.Checkpoint(e)
	}
}

// restoreAverages reads the averages checkpoint wrote. An SMA no rule
// tests any more is dropped, as on a reload.
func (s *series) restoreAverages(d *stream.Decoder, e *engine) {
	s.avg.Restore(d, e.emaPlan)
	if d.Bool() {
		a := movavg.NewAverages(e.smaPlan)
		a.Restore(d, e.smaPlan)
		if e.smaOn {
			s.sma = &a
		}
	}
}

// seriesKey builds "measurement,tags field" into dst.
func seriesKey(dst []byte, p *point.Point, field string) []byte {
	dst = point.AppendSeriesKey(dst, p)
	dst = append(dst, ' ')
	return append(dst, field...)
}

// describe renders an alert event for a transition of ra on s.
func describe(s *series, ra *ruleAlert, state alert.State, v rules.Verdict, smp *rules.Sample, eventTime int64) alert.Event {
	labels := s.labels(ra.rule)
	summary, description := ra.rule.Render(v, labels, string(state), smp)
	e := alert.Event{
		Fingerprint: alert.Fingerprint(ra.rule.Name, s.key),
		Rule:        ra.rule.Name,
		State:       state,
		Severity:    ra.rule.Severity,
		Series:      s.key,
		Labels:      labels,
		Value:       v.Value,
		StartsAt:    time.Unix(0, ra.lc.StartsAt()).UTC(),
		EventTime:   time.Unix(0, eventTime).UTC(),
		Summary:     summary,
		Description: description,
	}
	if v.HasThreshold {
		e.Threshold = ptr(v.Threshold)
	}
	if smp != nil && smp.HasForecast {
		e.Expected = ptr(smp.Forecast)
	}
	if smp != nil && smp.Warm {
		e.Score = ptr(smp.Score)
	}
	if state == alert.Resolved {
		e.EndsAt = time.Unix(0, ra.lc.EndsAt()).UTC()
	}
	return e
}

func ptr(v float64) *float64 { return &v }

// parseSeason reads --season: a count of points, or a duration.
func parseSeason(s string) (points int, period time.Duration, err error) {
	if s == "" {
		return 0, 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 2 {
			return 0, 0, fmt.Errorf("--season %d: want ≥ 2 points", n)
		}
		return n, 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, 0, fmt.Errorf("--season %q: want a number of points (24) or a positive duration (24h)", s)
	}
	return 0, d, nil
}
