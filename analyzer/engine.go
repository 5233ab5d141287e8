package main

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
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

// ruleBook is a loaded rule set with a generation number that changes on
// every reload, so each series knows when to match the rules again.
type ruleBook struct {
	set *rules.Set
	gen uint64
}

// rule returns the book's rule of that name and definition, nil if none.
func (b *ruleBook) rule(name string, hash uint64) *rules.Rule {
	for _, r := range b.set.Rules {
		if r.Name == name && r.Hash == hash {
			return r
		}
	}
	return nil
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

// results is what an engine derives from the points it is fed, gathered
// until the handler has written and published it: forecast points and
// alert events.
type results struct {
	points []point.Point // forecast points: per point, its fields' forecasts
	fields []point.Field // their fields
	events []alert.Event
}

// Reset forgets what was gathered (it was written), keeping the buffers.
func (r *results) Reset() {
	clear(r.points)
	clear(r.events)
	r.points, r.fields, r.events = r.points[:0], r.fields[:0], r.events[:0]
}

// engine analyzes the series of one partition: forecast, score, rules,
// alert lifecycles. It is the analyzer's stream.Stage: what it derives
// depends only on its state and the points it is fed, in partition order;
// wall time (now) only stamps arrivals for absence rules and drives Expire.
// Not safe for concurrent use: one per partition worker, which owns the
// state of its series.
type engine struct {
	a      *analysis
	params anomaly.Params
	book   *ruleBook
	config uint64 // hash of the settings a checkpoint depends on: see configDescription

	series  map[string]*series
	outKeys map[string]*[4]string // by field name
	// The moving averages threshold rules test, computed as the
	// consumer's movavg stage computes <field>_ema and <field>_sma: every
	// series keeps its EMA; the SMA's ring only while a rule tests it
	// (smaOn), since it is most of a series' averaging memory.
	emaPlan, smaPlan *movavg.Plan
	smaOn            bool
	checkpointSize   int // of the last checkpoint
	// Counters the handler reads into metrics and resets.
	untracked, expired int64

	key     []byte
	matched []*rules.Rule
	smp     rules.Sample
}

var _ stream.Stage[*results] = (*engine)(nil)

// newEngine returns the engine of a partition; a must have been validated.
func newEngine(a *analysis, params anomaly.Params, book *ruleBook) *engine {
	emaPlan, err1 := movavg.NewPlan(movavg.Params{EMAAlpha: a.EMAAlpha})
	smaPlan, err2 := movavg.NewPlan(movavg.Params{SMAWindow: a.SMAWindow})
	if err := errors.Join(err1, err2); err != nil {
		panic(fmt.Sprintf("analyzer: averages of an analysis not validated: %v", err))
	}
	e := &engine{a: a, params: params, config: stream.ConfigHash(a.configDescription()),
		series: make(map[string]*series), outKeys: make(map[string]*[4]string), emaPlan: emaPlan, smaPlan: smaPlan}
	e.setRules(book)
	return e
}

// setRules swaps the rule set; series rematch on their next point, keeping
// the lifecycle of every rule whose definition did not change.
func (e *engine) setRules(b *ruleBook) {
	e.book = b
	e.smaOn = b.usesSMA() && e.a.SMAWindow > 0
}

// Process analyzes every field of p, whose Time must be set, arrived at
// wall time now (for absence rules), appending its forecasts and alert
// events to out.
func (e *engine) Process(p *point.Point, now int64, out *results) *results {
	from := len(out.fields)
	for i := range p.Fields {
		e.processField(p, &p.Fields[i], now, out)
	}
	if e.a.WriteForecasts && len(out.fields) > from {
		out.points = append(out.points, point.Point{Measurement: p.Measurement, Tags: p.Tags, Fields: out.fields[from:len(out.fields):len(out.fields)], Time: p.Time})
	}
	return out
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
	s := newSeries(string(e.key), p, field, e.keysOf(field))
	e.series[s.key] = s
	return s
}

// keysOf returns the output keys of field, shared by the partition's
// series with that field.
func (e *engine) keysOf(field string) *[4]string {
	keys, ok := e.outKeys[field]
	if !ok {
		keys = outputKeys(field)
		e.outKeys[keys[0][:len(field)]] = keys
	}
	return keys
}

func (e *engine) processField(p *point.Point, f *point.Field, arrived int64, out *results) {
	s := e.lookup(p, f.Key)
	if s == nil {
		return
	}
	t, y := p.Time, f.Value
	// Every point, late ones too, in arrival order: the consumer's.
	s.average(y, e)
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
		v := s.det.ObserveAt(t, y, e.params)
		if v.HasForecast {
			smp.Forecast, smp.HasForecast = v.Forecast, true
			smp.Z, smp.Score, smp.Warm = v.Z, v.Score, v.Warm
			if e.a.WriteForecasts {
				out.fields = append(out.fields,
					point.Field{Key: s.outKeys[0], Value: v.Forecast},
					point.Field{Key: s.outKeys[1], Value: v.Forecast - halfBand},
					point.Field{Key: s.outKeys[2], Value: v.Forecast + halfBand},
					point.Field{Key: s.outKeys[3], Value: v.Score})
			}
		}
		smp.Ahead = projector{fc}
	}
	if s.n < ^uint32(0) {
		s.n++
	}
	smp.SMA, smp.EMA, smp.HasAverages = s.smaValue(e), s.emaValue(e), true
	e.evaluate(s, smp, t, out)
}

// evaluate runs the series' rules on the sample and records the alert
// events their lifecycles produce.
func (e *engine) evaluate(s *series, smp *rules.Sample, t int64, out *results) {
	if s.rulesGen != e.book.gen {
		e.rematch(s)
	}
	timing := alert.Timing{Repeat: e.a.Repeat}
	for i := range s.alerts {
		ra := &s.alerts[i]
		if ra.rule.Kind == rules.Absence {
			// A point arrived: the series is not absent. Absence runs on
			// the analyzer's clock, like the absence check in Expire.
			ra.active = false
			e.step(s, ra, rules.Verdict{}, nil, s.arrived, timing, out)
			continue
		}
		v := ra.rule.Eval(smp, ra.active)
		ra.active = v.Active
		e.step(s, ra, v, smp, t, timing, out)
	}
}

func (e *engine) step(s *series, ra *ruleAlert, v rules.Verdict, smp *rules.Sample, t int64, timing alert.Timing, out *results) {
	timing.For, timing.KeepFiringFor = ra.rule.For, ra.rule.KeepFiringFor
	if st := ra.lc.Step(ra.active, t, timing); st != alert.Inactive {
		out.events = append(out.events, describe(s, ra, st, v, smp, t))
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

// Expire is the engine's processing-time housekeeping at wall time now:
// it evaluates the absence rules of every series, then forgets the series
// whose newest point arrived longer than the idle timeout ago and that
// have no alert firing (counted in expired).
func (e *engine) Expire(now int64, out *results) *results {
	from := len(out.events)
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
				out.events = append(out.events, describe(s, ra, st, v, nil, now))
			}
		}
	}
	// In series order, not the map's: the same state gives the same
	// sequence of alerts.
	slices.SortFunc(out.events[from:], func(a, b alert.Event) int {
		return cmp.Or(strings.Compare(a.Series, b.Series), strings.Compare(a.Rule, b.Rule))
	})
	for k, s := range e.series {
		if now-s.arrived > int64(e.a.IdleTimeout) && !s.firing() {
			delete(e.series, k)
			e.expired++
		}
	}
	return out
}

// The analyzer's checkpoint format. Bump checkpointVersion on any change
// to what it holds, the encodings of forecast.Forecaster,
// anomaly.Detector and alert.Lifecycle included: an older checkpoint is
// then refused (stream.ErrIncompatible), never misread.
const (
	checkpointKind    = "analyzer"
	checkpointVersion = 3
	// minSeriesBytes is the least a series takes in a checkpoint, which
	// bounds the count a damaged checkpoint may claim.
	minSeriesBytes = 29
)

// Checkpoint appends the state of every series to dst: its identity, clocks,
// averages, detector (forecaster included) and the lifecycle of each rule
// matching it, the rules named by name and hash. Series not yet matched
// against the current rule book are matched first, as their next point
// would. The series come in map order: two checkpoints of one state may
// differ in bytes, not in what they restore.
func (e *engine) Checkpoint(dst []byte) []byte {
	// Room for what the last one took, and some: 100,000 series take
	// 130 MB, which growing by doubling would copy twice over.
	dst = slices.Grow(dst, e.checkpointSize+e.checkpointSize/8)
	start := len(dst)
	enc := stream.Encoder{B: stream.AppendHeader(dst, checkpointKind, checkpointVersion, e.config)}
	rs := e.book.set.Rules
	index := make(map[*rules.Rule]uint64, len(rs))
	enc.Uvarint(uint64(len(rs)))
	for i, r := range rs {
		enc.String(r.Name)
		enc.Uint64(r.Hash)
		index[r] = uint64(i)
	}
	enc.Uvarint(uint64(len(e.series)))
	for _, s := range e.series {
		if s.rulesGen != e.book.gen {
			e.rematch(s)
		}
		s.checkpoint(&enc, index)
	}
	e.checkpointSize = len(enc.B) - start
	return enc.B
}

// Restore replaces every series with those of a checkpoint taken at wall
// time taken, restored at now: arrival times move by now − taken, and so
// do the clocks of absence rules' lifecycles, so that the downtime counts
// toward no absence. Each series is matched against the current rule book
// and keeps the lifecycle of each rule whose name and definition are
// unchanged, as on a reload. A checkpoint of another format version or of
// other analysis settings is refused with an error wrapping
// stream.ErrIncompatible, a damaged one with stream.ErrCorrupt; the engine
// is then left without series. Beyond MaxSeries, series are dropped.
func (e *engine) Restore(src []byte, taken, now int64) error {
	e.series = make(map[string]*series)
	d := stream.NewDecoder(src)
	if err := d.Header(checkpointKind, checkpointVersion, e.config); err != nil {
		return fmt.Errorf("restore analyzer state: %w", err)
	}
	byIndex := make([]*rules.Rule, d.Count(9))
	for i := range byIndex {
		byIndex[i] = e.book.rule(d.String(), d.Uint64())
	}
	r := restoring{d: d, rules: byIndex, shift: now - taken}
	n := d.Count(minSeriesBytes)
	restored := make(map[string]*series, min(n, e.a.MaxSeries))
	for range n {
		s := e.restoreSeries(&r)
		if d.Err() != nil {
			break
		}
		if _, dup := restored[s.key]; dup {
			d.Fail("series %q twice", s.key)
			break
		}
		if len(restored) < e.a.MaxSeries {
			restored[s.key] = s
		}
	}
	if d.Err() == nil && d.Len() != 0 {
		d.Fail("%d bytes after the last series", d.Len())
	}
	if err := d.Err(); err != nil {
		return fmt.Errorf("restore analyzer state: %w", err)
	}
	e.series = restored
	return nil
}

// restoring is what restoreSeries reads a series with.
type restoring struct {
	d     *stream.Decoder
	rules []*rules.Rule // the checkpoint's rules in the current book, by index; nil if gone or changed
	shift int64         // now − taken
}

// restoreSeries reads one series and matches it against the current rule
// book; check r.d.Err before using it.
func (e *engine) restoreSeries(r *restoring) *series {
	d := r.d
	p := point.Point{Measurement: d.String(), Tags: make([]point.Tag, d.Count(2))}
	for i := range p.Tags {
		p.Tags[i] = point.Tag{Key: d.String(), Value: d.String()}
	}
	field := d.String()
	if d.Err() != nil {
		return nil
	}
	e.key = seriesKey(e.key[:0], &p, field)
	s := &series{key: string(e.key), measurement: p.Measurement, tags: p.Tags}
	s.outKeys = e.keysOf(field)
	s.field = s.outKeys[0][:len(field)]
	s.n = uint32(countUpTo(d, math.MaxUint32, "points"))
	s.last, s.step, s.arrived = d.Varint(), d.Varint(), d.Varint()+r.shift
	s.restoreAverages(d, e)
	if d.Bool() {
		m := countUpTo(d, uint64(max(seasonPointsMax, e.a.Forecast.Season)), "season")
		if 8*m > uint64(d.Len()) {
			d.Fail("season of %d points in %d bytes", m, d.Len())
			return nil
		}
		cfg := e.a.Forecast
		cfg.Season = int(m)
		fc, err := forecast.New(cfg)
		if err != nil {
			d.Fail("forecaster: %v", err)
			return nil
		}
		s.det = anomaly.NewDetector(fc)
		s.det.Restore(d)
	}
	type saved struct {
		rule   *rules.Rule
		active bool
		lc     alert.Lifecycle
	}
	var old [8]saved // most series match a few rules: no allocation
	olds := old[:0]
	for range d.Count(2 + 6) {
		i := d.Uvarint()
		if i >= uint64(len(r.rules)) {
			d.Fail("rule %d of %d", i, len(r.rules))
			return nil
		}
		a := saved{rule: r.rules[i], active: d.Bool()}
		a.lc.Restore(d)
		olds = append(olds, a)
	}
	if d.Err() != nil {
		return nil
	}
	e.matched = e.book.set.Matching(s.measurement, s.field, s.tags, e.matched[:0])
	s.alerts = make([]ruleAlert, len(e.matched))
	for i, rule := range e.matched {
		s.alerts[i].rule = rule
		for _, o := range olds {
			if o.rule == rule {
				s.alerts[i].active, s.alerts[i].lc = o.active, o.lc
				if rule.Kind == rules.Absence {
					s.alerts[i].lc.Shift(r.shift) // it runs on the wall clock
				}
				break
			}
		}
	}
	s.rulesGen = e.book.gen
	return s
}

// countUpTo reads a count that may not exceed limit.
func countUpTo(d *stream.Decoder, limit uint64, what string) uint64 {
	v := d.Uvarint()
	if v > limit {
		d.Fail("%s %d: at most %d", what, v, limit)
		return 0
	}
	return v
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
