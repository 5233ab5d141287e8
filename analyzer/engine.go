package main

import (
	"math"
	"time"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/anomaly"
	"github.com/metricpipe/metricpipe/shared/forecast"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/rules"
)

// ruleBook is a loaded rule set with a generation number that changes on
// every reload, so each series knows when to match the rules again.
type ruleBook struct {
	set *rules.Set
	gen uint64
}

// usesSMA reports whether a rule of the book tests the simple moving
// average.
func (b *ruleBook) usesSMA() bool {
	for _, r := range b.set.Rules {
		if r.Kind == rules.Threshold && r.Threshold.Of == rules.OfSMA {
			return true
		}
	}
	return false
}

// engine analyzes the series of one partition: forecast, score, rules,
// alert lifecycles. Not safe for concurrent use: one per partition worker,
// which owns the state of its series.
type engine struct {
	a      *analysis
	params anomaly.Params
	book   *ruleBook

	series    map[string]*series
	outKeys   map[string]*[4]string // by field name
	smaWindow int                   // the SMA window while a rule uses it, else 0
	untracked int64
	key       []byte
	matched   []*rules.Rule
	smp       rules.Sample

	// Output of the points processed since the last Reset.
	out    []point.Point // forecast points: per point, its fields' forecasts
	fields []point.Field // their fields
	events []alert.Event
}

func newEngine(a *analysis, params anomaly.Params, book *ruleBook) *engine {
	e := &engine{a: a, params: params, series: make(map[string]*series), outKeys: make(map[string]*[4]string)}
	e.setRules(book)
	return e
}

// setRules swaps the rule set; series rematch on their next point, keeping
// the lifecycle of every rule whose definition did not change.
func (e *engine) setRules(b *ruleBook) {
	e.book = b
	e.smaWindow = 0
	if b.usesSMA() {
		e.smaWindow = e.a.SMAWindow
	}
}

// Reset forgets the output gathered so far: it was written.
func (e *engine) Reset() {
	clear(e.out)
	e.out, e.fields, e.events = e.out[:0], e.fields[:0], e.events[:0]
}

// Process analyzes every field of p, whose Time must be set, at wall time
// arrived (for absence rules).
func (e *engine) Process(p *point.Point, arrived int64) {
	from := len(e.fields)
	for i := range p.Fields {
		e.processField(p, &p.Fields[i], arrived)
	}
	if e.a.WriteForecasts && len(e.fields) > from {
		e.out = append(e.out, point.Point{Measurement: p.Measurement, Tags: p.Tags, Fields: e.fields[from:len(e.fields):len(e.fields)], Time: p.Time})
	}
}

func (e *engine) lookup(p *point.Point, field string) *series {
	e.key = seriesKey(e.key[:0], p, field)
	if s, ok := e.series[string(e.key)]; ok {
		return s
	}
	if len(e.series) >= e.a.MaxSeries {
		e.untracked++
		return nil
	}
	keys, ok := e.outKeys[field]
	if !ok {
		keys = outputKeys(field)
		e.outKeys[keys[0][:len(field)]] = keys
	}
	s := newSeries(string(e.key), p, field, keys)
	e.series[s.key] = s
	return s
}

func (e *engine) processField(p *point.Point, f *point.Field, arrived int64) {
	s := e.lookup(p, f.Key)
	if s == nil {
		return
	}
	t, y := p.Time, f.Value
	if s.n > 0 && t < s.last {
		// Forecasters see a series in time order; a late point is
		// stored (by the consumer) but not analyzed.
		return
	}
	s.observeTime(t)
	s.arrived = arrived
	smp := &e.smp
	*smp = rules.Sample{Time: t, Value: y, Step: time.Duration(s.step)}
	if s.ensureDetector(e.a) {
		fc := s.det.Forecaster()
		var halfBand float64
		if e.a.WriteForecasts {
			// The band's width is the forecaster's before it sees y, like
			// the forecast; it is centred on the forecast the detector used.
			lo, hi, _ := fc.Interval(1, e.a.IntervalZ)
			halfBand = (hi - lo) / 2
		}
		v := s.det.Observe(y, e.params)
		if v.HasForecast {
			smp.Forecast, smp.HasForecast = v.Forecast, true
			smp.Z, smp.Score, smp.Warm = v.Z, v.Score, v.Warm
			if e.a.WriteForecasts {
				e.fields = append(e.fields,
					point.Field{Key: s.outKeys[0], Value: v.Forecast},
					point.Field{Key: s.outKeys[1], Value: v.Forecast - halfBand},
					point.Field{Key: s.outKeys[2], Value: v.Forecast + halfBand},
					point.Field{Key: s.outKeys[3], Value: v.Score})
			}
		}
		smp.Ahead = projector{fc}
	}
	s.averages(y, e.a.EMAAlpha, e.smaWindow)
	if s.n < ^uint32(0) {
		s.n++
	}
	smp.SMA, smp.EMA, smp.HasAverages = s.smaValue(), s.ema, true
	e.evaluate(s, smp, t)
}

// evaluate runs the series' rules on the sample and records the alert
// events their lifecycles produce.
func (e *engine) evaluate(s *series, smp *rules.Sample, t int64) {
	if s.rulesGen != e.book.gen {
		e.rematch(s)
	}
	timing := alert.Timing{Repeat: e.a.Repeat}
	for i := range s.alerts {
		ra := &s.alerts[i]
		if ra.rule.Kind == rules.Absence {
			// A point arrived: the series is not absent. Absence runs on
			// the analyzer's clock, like CheckAbsence.
			ra.active = false
			e.step(s, ra, rules.Verdict{}, nil, s.arrived, timing)
			continue
		}
		v := ra.rule.Eval(smp, ra.active)
		ra.active = v.Active
		e.step(s, ra, v, smp, t, timing)
	}
}

func (e *engine) step(s *series, ra *ruleAlert, v rules.Verdict, smp *rules.Sample, t int64, timing alert.Timing) {
	timing.For, timing.KeepFiringFor = ra.rule.For, ra.rule.KeepFiringFor
	if st := ra.lc.Step(ra.active, t, timing); st != alert.Inactive {
		e.events = append(e.events, describe(s, ra, st, v, smp, t))
	}
}

// rematch pairs the series with the rules that match it, keeping the
// lifecycle of each rule whose name and definition are unchanged.
func (e *engine) rematch(s *series) {
	e.matched = e.book.set.Matching(s.measurement, s.field, s.tags, e.matched[:0])
	old := s.alerts
	s.alerts = make([]ruleAlert, 0, len(e.matched))
	for _, r := range e.matched {
		ra := ruleAlert{rule: r}
		for _, o := range old {
			if o.rule.Name == r.Name && o.rule.Hash == r.Hash {
				ra.active, ra.lc = o.active, o.lc
				break
			}
		}
		s.alerts = append(s.alerts, ra)
	}
	s.rulesGen = e.book.gen
}

// CheckAbsence evaluates the absence rules of every series at wall time
// now; also forgets series idle past the idle timeout (event time, measured
// from the newest point of the partition) with no alert firing.
func (e *engine) CheckAbsence(now int64) {
	for _, s := range e.series {
		if s.rulesGen != e.book.gen {
			e.rematch(s)
		}
		for i := range s.alerts {
			ra := &s.alerts[i]
			if ra.rule.Kind != rules.Absence {
				continue
			}
			v := ra.rule.Absent(s.arrived, now)
			ra.active = v.Active
			timing := alert.Timing{For: ra.rule.For, KeepFiringFor: ra.rule.KeepFiringFor, Repeat: e.a.Repeat}
			if st := ra.lc.Step(v.Active, now, timing); st != alert.Inactive {
				e.events = append(e.events, describe(s, ra, st, v, nil, now))
			}
		}
	}
}

// Expire forgets series whose newest point is older than the idle timeout
// at wall time now and that have no alert firing. It returns how many.
func (e *engine) Expire(now int64) int {
	n := 0
	for k, s := range e.series {
		if now-s.arrived > int64(e.a.IdleTimeout) && !s.firing() {
			delete(e.series, k)
			n++
		}
	}
	return n
}

// projector adapts a forecaster to rules.Projector. One pointer wide, it
// goes into the interface without an allocation.
type projector struct{ fc *forecast.Forecaster }

// Ahead is NaN while the forecaster warms up: no bound is crossed then.
func (p projector) Ahead(steps int) float64 {
	v, ok := p.fc.Ahead(steps)
	if !ok {
		return math.NaN()
	}
	return v
}

// AheadMany makes predictive rules cost one pass of the forecaster, not one
// per probed horizon (autoregression's h-step forecast is O(h)).
func (p projector) AheadMany(steps []int, out []float64) {
	if !p.fc.AheadMany(steps, out) {
		for i := range steps {
			out[i] = math.NaN()
		}
	}
}
