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

// Series shapes (--shapes). Series take the listed shapes in turn.
const (
	// shapeWave is a level with a seasonal swing, a trend, a random walk and
	// noise; anomalies of every kind.
	shapeWave = "wave"
	// shapeBurstyCounts is non-negative integer counts (mentions, bytes
	// written per interval): a low seasonal rate, over-dispersed noise and
	// recurring heavy-tailed bursts, all normal for the series. Its
	// anomalies are what is abnormal for such a series: a spike far beyond
	// its bursts, a sustained change of rate (level_shift), a dropout.
	shapeBurstyCounts = "bursty-counts"
	// shapeFlatThenShift holds a level, constant but for a quantum of noise
	// now and then, for long stretches, then steps to another level that
	// stays: each step is a level_shift labelled over its first points.
	shapeFlatThenShift = "flat-then-shift"
)

var shapes = [...]string{shapeWave, shapeBurstyCounts, shapeFlatThenShift}

// countAnomalyKinds are the anomalies of bursty-counts series.
var countAnomalyKinds = [...]string{anomalySpike, anomalyLevelShift, anomalyDropout}

const (
	// burstCap bounds a normal burst of a count series, in multiples of its
	// base rate: the Pareto tail is cut there so that a spike anomaly,
	// 3 to 6 times the cap, is beyond anything the series does normally.
	burstCap = 100
	// minFlat is the fewest points a flat-then-shift series holds a level
	// before it may step: long enough for a detector to have learned a level
	// with next to no variance, where the missed shifts were.
	minFlat = 300
)

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

// generator produces the synthetic series, reproducible from the seed: by
// default each a level with a daily-like seasonal swing, a slow trend, a
// random walk and noise; other shapes on request (see shapeWave). Series
// take turns, so every series advances at the same pace. Anomalies draw
// from their own random stream, so a series' normal values are the same
// with and without them (flat-then-shift's steps, its anomalies, last).
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
	shape              string
	level, amp, period float64 // period in points; bursty-counts: level is the base rate per point, amp relative
	trend, walk, noise float64
	step               int64
	fields             [1]point.Field
	anomaly            anomalyState
	quietUntil         int64 // no anomaly starts before this step

	// The shapes other than the wave draw their normal values from their
	// own stream, so adding them leaves the waves' shared stream alone.
	rng *rand.Rand

	// bursty-counts
	burstChance  float64 // probability per point that a burst starts
	burstAlpha   float64 // Pareto index of burst sizes: lower, heavier
	burst, decay float64 // the current burst's extra rate and its decay per point
	dispersion   float64 // gamma shape of the rate noise: lower, more over-dispersed
	mean         float64 // the rate of the current point

	// flat-then-shift, in quanta
	quantum      float64
	units, shift int64 // the level and the sum of the shifts so far
	jitter       float64
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
		s.shape = cfg.shape(i)
		if s.shape != shapeWave {
			s.tags = append(s.tags, point.Tag{Key: "shape", Value: s.shape}) // sorts after "series"
			s.rng = rand.New(rand.NewPCG(cfg.Seed^0x2545f4914f6cdd1d, uint64(i)))
			s.init(cfg.Interval)
			continue
		}
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
		var v float64
		var units int64
		switch s.shape {
		case shapeBurstyCounts:
			v = s.count()
		case shapeFlatThenShift:
			units = s.units + int64(math.Round(s.rng.NormFloat64()*s.jitter))
			v = float64(units) * s.quantum
		default:
			x := float64(s.step)
			s.walk += g.rng.NormFloat64() * s.noise * 0.3
			v = s.level + s.amp*math.Sin(2*math.Pi*x/s.period) + s.trend*x + s.walk + g.rng.NormFloat64()*s.noise
		}
		p.Measurement = g.measurement
		p.Tags = s.tags
		p.Time = g.start + s.step*int64(g.interval)
		v, emit := g.inject(s, p, v)
		if s.shape == shapeFlatThenShift {
			v = float64(units+s.shift) * s.quantum // a shift that started at this step included
		}
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
	if a.kind == "" && g.anomalyRate > 0 && s.step >= s.quietUntil && g.anomalyRNG.Float64() < g.anomalyRate {
		switch s.shape {
		case shapeBurstyCounts:
			g.startCount(s, p)
		case shapeFlatThenShift:
			g.startShift(s, p)
		default:
			g.start1(s, p)
		}
	}
	switch a.kind {
	case anomalySpike:
		return v + a.size, true
	case anomalyLevelShift:
		switch s.shape {
		case shapeBurstyCounts:
			return g.rescale(s, v, a.size), true
		case shapeFlatThenShift:
			return v, true // the shift stays in s.shift
		}
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
	g.begin(s, p, a)
}

// begin puts s in anomaly a and records its label.
func (g *generator) begin(s *seriesState, p *point.Point, a anomalyState) {
	s.anomaly = a
	g.key = point.AppendSeriesKey(g.key[:0], p)
	startNS, endNS := g.start+a.from*int64(g.interval), g.start+a.to*int64(g.interval)
	g.onAnomaly(label{Series: string(g.key), Kind: a.kind, StartNS: startNS, EndNS: endNS,
		Start: time.Unix(0, startNS).UTC().Format(time.RFC3339Nano), End: time.Unix(0, endNS).UTC().Format(time.RFC3339Nano)})
}

// init sets the parameters of a series of a shape other than the wave from
// its own stream.
func (s *seriesState) init(interval time.Duration) {
	r := s.rng
	switch s.shape {
	case shapeBurstyCounts:
		s.level = 3 + r.Float64()*17 // a few events per point, as mention counts every 5 min
		s.amp = 0.3 + r.Float64()*0.5
		s.period = float64(24*time.Hour/interval) / (1 + float64(r.IntN(24)))
		s.dispersion = 2 + r.Float64()*4
		s.burstChance = 1 / (50 + r.Float64()*250) // a burst every 50 to 300 points
		s.burstAlpha = 1.1 + r.Float64()*0.5
		s.decay = 0.4 + r.Float64()*0.4
	case shapeFlatThenShift:
		// 10 to 100 on a grid of a thousandth of the level's decade, the
		// resolution such values are reported with; a third of the series
		// exactly constant, the others off by a quantum now and then.
		level := 10 + r.Float64()*90
		s.quantum = math.Pow(10, math.Floor(math.Log10(level))-2)
		s.units = int64(math.Round(level / s.quantum))
		s.jitter = [...]float64{0, 0.2, 0.3}[r.IntN(3)]
		s.quietUntil = minFlat
	}
}

// count draws the next normal count of a bursty-counts series: a Poisson
// count of a seasonal rate with gamma noise (so negative binomial, as over-
// dispersed as real counts), plus a burst's share.
func (s *seriesState) count() float64 {
	r := s.rng
	base := s.level * (1 + s.amp*math.Sin(2*math.Pi*float64(s.step)/s.period))
	if r.Float64() < s.burstChance {
		// Pareto sizes from 3 times the base rate, cut at burstCap.
		size := min(burstCap, 3*math.Pow(1-r.Float64(), -1/s.burstAlpha))
		s.burst = max(s.burst, size*s.level)
	}
	s.mean = base + s.burst
	n := poisson(r, base*gammaUnit(r, s.dispersion)) + poisson(r, s.burst)
	if s.burst *= s.decay; s.burst < 0.05*s.level {
		s.burst = 0
	}
	return float64(n)
}

// startCount starts an anomaly on a bursty-counts series: a spike 3 to 6
// times burstCap, a change of rate (×3–6 or ×0.05–0.2) for 30 to 150 points,
// or a dropout.
func (g *generator) startCount(s *seriesState, p *point.Point) {
	r := g.anomalyRNG
	a := anomalyState{kind: countAnomalyKinds[r.IntN(len(countAnomalyKinds))], from: s.step}
	switch a.kind {
	case anomalySpike:
		a.to = s.step
		a.size = math.Round(s.level * burstCap * (3 + 3*r.Float64()))
	case anomalyLevelShift:
		a.to = s.step + 30 + int64(r.IntN(121))
		a.size = 3 + 3*r.Float64()
		if r.IntN(2) == 0 {
			a.size = 0.05 + 0.15*r.Float64()
		}
	case anomalyDropout:
		a.to = s.step + 10 + int64(r.IntN(50))
	}
	g.begin(s, p, a)
}

// rescale turns the normal count v into a count at factor times the rate,
// from the anomaly stream: extra events on top of v, or v's events thinned.
func (g *generator) rescale(s *seriesState, v, factor float64) float64 {
	if factor >= 1 {
		return v + float64(poisson(g.anomalyRNG, (factor-1)*s.mean))
	}
	return float64(binomial(g.anomalyRNG, int64(v), factor))
}

// startShift steps a flat-then-shift series by 10 to 50% of its level, up
// or down but staying within a third and three times where it started, and
// labels the step's first 10 to 30 points; the next step waits for minFlat
// more.
func (g *generator) startShift(s *seriesState, p *point.Point) {
	r := g.anomalyRNG
	now := s.units + s.shift
	size := int64(float64(now) * (0.1 + 0.4*r.Float64()))
	if down := r.IntN(2) == 0; down && now-size > s.units/3 || now+size > 3*s.units {
		size = -size
	}
	s.shift += size
	a := anomalyState{kind: anomalyLevelShift, from: s.step, to: s.step + 10 + int64(r.IntN(21))}
	s.quietUntil = a.to + 1 + minFlat
	g.begin(s, p, a)
}

// poisson draws a Poisson count of mean lambda: Knuth's product of uniforms
// for small means, a rounded normal above 50 where the two hardly differ.
func poisson(r *rand.Rand, lambda float64) int64 {
	if lambda <= 0 {
		return 0
	}
	if lambda > 50 {
		return max(0, int64(math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64())))
	}
	limit, prod, n := math.Exp(-lambda), r.Float64(), int64(0)
	for prod > limit {
		prod *= r.Float64()
		n++
	}
	return n
}

// binomial draws how many of n trials of probability q succeed: one by one
// up to 200, a rounded normal clamped to [0, n] above.
func binomial(r *rand.Rand, n int64, q float64) int64 {
	if n > 200 {
		m := float64(n) * q
		return min(n, max(0, int64(math.Round(m+math.Sqrt(m*(1-q))*r.NormFloat64()))))
	}
	k := int64(0)
	for range n {
		if r.Float64() < q {
			k++
		}
	}
	return k
}

// gammaUnit draws from a gamma distribution of shape k ≥ 1 and mean 1
// (Marsaglia and Tsang).
func gammaUnit(r *rand.Rand, k float64) float64 {
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v / k
		}
	}
}
