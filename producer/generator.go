package main

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/metricpipe/metricpipe/shared/point"
)

// Anomaly kinds the generator injects.
const (
	anomalySpike      = "spike"       // one point far off
	anomalyLevelShift = "level_shift" // a sudden step that lasts the window
	anomalyDrift      = "drift"       // a ramp away from normal over the window
	anomalyFlatLine   = "flat_line"   // the value freezes
	anomalyDropout    = "dropout"     // no points at all
)

var anomalyKinds = [...]string{anomalySpike, anomalyLevelShift, anomalyDrift, anomalyFlatLine, anomalyDropout}

// label is the ground truth of one injected anomaly: the series (its key),
// the kind, and the event-time window [Start, End] of the affected points.
type label struct {
	Series  string `json:"series"`
	Kind    string `json:"kind"`
	StartNS int64  `json:"start_ns"`
	EndNS   int64  `json:"end_ns"`
	Start   string `json:"start"`
	End     string `json:"end"`
}

// generator produces the synthetic series: each a level with a daily-like
// seasonal swing, a slow trend, a random walk and noise, reproducible from the
// seed. Series take turns, so every series advances at the same pace.
// Anomalies draw from their own random stream, so a series' normal values
// are the same with and without them.
type generator struct {
	rng         *rand.Rand // the normal values
	anomalyRNG  *rand.Rand // when and which anomalies
	anomalyRate float64    // probability per point that an anomaly starts
	onAnomaly   func(label)
	measurement string
	interval    time.Duration
	start       int64
	series      []seriesState
	turn        int
	key         []byte
}

type seriesState struct {
	tags               []point.Tag
	level, amp, period float64 // period in points
	trend, walk, noise float64
	step               int64
	fields             [1]point.Field
	anomaly            anomalyState
}

// anomalyState is the anomaly a series is in, if any.
type anomalyState struct {
	kind      string // "" when none
	from, to  int64  // steps, inclusive
	size      float64
	frozen    float64 // flat_line's value
	frozenSet bool
}

func newGenerator(cfg syntheticConfig) *generator {
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	g := &generator{
		rng:         rng,
		anomalyRNG:  rand.New(rand.NewPCG(cfg.Seed^0x5851f42d4c957f2d, cfg.Seed+1)),
		anomalyRate: cfg.AnomalyRate,
		onAnomaly:   func(label) {},
		measurement: cfg.Measurement,
		interval:    cfg.Interval,
		start:       time.Now().Truncate(cfg.Interval).UnixNano(),
		series:      make([]seriesState, cfg.Series),
	}
	for i := range g.series {
		s := &g.series[i]
		s.tags = []point.Tag{{Key: "host", Value: "host-" + strconv.Itoa(i%100)}, {Key: "series", Value: strconv.Itoa(i)}}
		s.level = 10 + rng.Float64()*90
		s.amp = s.level * (0.05 + rng.Float64()*0.25)
		s.period = float64(24*time.Hour/cfg.Interval) / (1 + float64(rng.IntN(24))) // a day, or a few hours
		s.trend = (rng.Float64() - 0.5) * s.level * 1e-4
		s.noise = s.level * 0.01
	}
	return g
}

// next fills p with the next point; p's slices are reused between calls.
// Series in a dropout are skipped (their time still advances).
func (g *generator) next(p *point.Point) {
	for {
		s := &g.series[g.turn]
		g.turn = (g.turn + 1) % len(g.series)
		x := float64(s.step)
		s.walk += g.rng.NormFloat64() * s.noise * 0.3
		v := s.level + s.amp*math.Sin(2*math.Pi*x/s.period) + s.trend*x + s.walk + g.rng.NormFloat64()*s.noise
		p.Measurement = g.measurement
		p.Tags = s.tags
		p.Time = g.start + s.step*int64(g.interval)
		v, emit := g.inject(s, p, v)
		s.step++
		if emit {
			s.fields[0] = point.Field{Key: "value", Value: v}
			p.Fields = s.fields[:]
			return
		}
	}
}

// inject applies s's anomaly, or starts one, to the normal value v at the
// point p describes, and reports whether the point is emitted.
func (g *generator) inject(s *seriesState, p *point.Point, v float64) (float64, bool) {
	a := &s.anomaly
	if a.kind != "" && s.step > a.to {
		*a = anomalyState{}
	}
	if a.kind == "" && g.anomalyRate > 0 && g.anomalyRNG.Float64() < g.anomalyRate {
		g.start1(s, p)
	}
	switch a.kind {
	case anomalySpike:
		return v + a.size, true
	case anomalyLevelShift:
		return v + a.size, true
	case anomalyDrift:
		return v + a.size*float64(s.step-a.from+1)/float64(a.to-a.from+1), true
	case anomalyFlatLine:
		if !a.frozenSet {
			a.frozen, a.frozenSet = v, true
		}
		return a.frozen, true
	case anomalyDropout:
		return v, false
	}
	return v, true
}

// start1 starts an anomaly on s at its current step and records its label.
func (g *generator) start1(s *seriesState, p *point.Point) {
	r := g.anomalyRNG
	kind := anomalyKinds[r.IntN(len(anomalyKinds))]
	sign := 1.0
	if r.IntN(2) == 0 {
		sign = -1
	}
	a := anomalyState{kind: kind, from: s.step, to: s.step + 10 + int64(r.IntN(50))}
	switch kind {
	case anomalySpike:
		a.to = s.step
		a.size = sign * s.level * (0.5 + 0.5*r.Float64())
	case anomalyLevelShift:
		a.size = sign * s.level * (0.2 + 0.3*r.Float64())
	case anomalyDrift:
		a.size = sign * s.level * (0.3 + 0.3*r.Float64())
	}
	s.anomaly = a
	g.key = point.AppendSeriesKey(g.key[:0], p)
	startNS, endNS := g.start+a.from*int64(g.interval), g.start+a.to*int64(g.interval)
	g.onAnomaly(label{Series: string(g.key), Kind: kind, StartNS: startNS, EndNS: endNS,
		Start: time.Unix(0, startNS).UTC().Format(time.RFC3339Nano), End: time.Unix(0, endNS).UTC().Format(time.RFC3339Nano)})
}
