package e2e

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
)

// The determinism test's input (issue 14): three sources whose event times
// lie years apart, as in the real mix, interleaved point by point on
// three partitions so that every partition carries series of every source.
const (
	detPartitions   = 3
	detSeriesPerSrc = 10
	detPointsPerSer = 1500
	detRollup       = time.Hour
	detShiftLength  = 80 // points of each level shift
	detSpikesPerSer = 4  // per field
	detFirstAnomaly = 100
	detLoadLevel    = 100.0
	detLoadShift    = 40.0 // up once (sma rule), down once (ema rule)
	detLoadSMAAbove = 125.0
	detLoadEMABelow = 75.0
	detHysteresis   = 5.0
)

// detSource is one source of the input: its series start at start and have
// a point every interval, with a seasonal cycle of period points.
type detSource struct {
	measurement, site string
	start             time.Time
	interval          time.Duration
	period            int
}

func detSources() []detSource {
	return []detSource{
		{"plant_a", "a", time.Date(2011, 3, 1, 0, 0, 0, 0, time.UTC), time.Minute, 60},
		{"plant_b", "b", time.Date(2013, 12, 27, 0, 0, 0, 0, time.UTC), 10 * time.Minute, 144}, // into 2014
		{"plant_c", "c", time.Date(2015, 6, 1, 0, 0, 0, 0, time.UTC), 10 * time.Second, 360},
	}
}

// detSeries is one series of the input with its two fields' values.
type detSeries struct {
	src       detSource
	key       string // line-protocol series key, as InfluxDB and the alerts name it
	tags      []point.Tag
	partition int
	rank      int // its place among its partition's series: point i is at offset i*perPartition+rank
	load      []float64
	temp      []float64
}

func (s *detSeries) time(i int) int64 { return s.src.start.UnixNano() + int64(i)*int64(s.src.interval) }

// index is the point of s at or after time at (clamped to s's points).
func (s *detSeries) index(at int64) int {
	d := at - s.src.start.UnixNano()
	i := int((d + int64(s.src.interval) - 1) / int64(s.src.interval))
	return min(max(i, 0), detPointsPerSer-1)
}

// detInput is the whole input: its series and the messages in produce
// order (point i of every series, then point i+1...).
type detInput struct {
	series   []*detSeries
	bySeries map[string]*detSeries
	perPart  []int // series on each partition
	keys     [][]byte
	lines    [][]byte
	parts    []int32
}

func newDetInput(seed uint64) *detInput {
	rng := rand.New(rand.NewPCG(seed, 14))
	in := &detInput{bySeries: map[string]*detSeries{}, perPart: make([]int, detPartitions)}
	for si, src := range detSources() {
		for k := range detSeriesPerSrc {
			j := si*detSeriesPerSrc + k
			s := &detSeries{src: src, partition: j % detPartitions,
				tags: []point.Tag{{Key: "sensor", Value: fmt.Sprintf("s%02d", k)}, {Key: "site", Value: src.site}}}
			s.rank = in.perPart[s.partition]
			in.perPart[s.partition]++
			p := point.Point{Measurement: src.measurement, Tags: s.tags}
			s.key = string(point.AppendSeriesKey(nil, &p))
			// load: around 100 for every series, so that one threshold on
			// its sma and one on its ema fire on the level shifts.
			s.load = detValues(rng, detLoadLevel, 8, 1.5, src.period, detLoadShift)
			// temp: a level of its own; only the anomaly rule sees it.
			s.temp = detValues(rng, 20+3*float64(k), 2, 0.3, src.period, 3)
			in.series = append(in.series, s)
			in.bySeries[s.key] = s
		}
	}
	for i := range detPointsPerSer {
		for _, s := range in.series {
			p := point.Point{Measurement: s.src.measurement, Tags: s.tags, Time: s.time(i),
				Fields: []point.Field{{Key: "load", Value: s.load[i]}, {Key: "temp", Value: s.temp[i]}}}
			line, keyEnd := point.AppendLineKeyed(nil, &p)
			in.keys = append(in.keys, line[:keyEnd:keyEnd])
			in.lines = append(in.lines, line)
			in.parts = append(in.parts, int32(s.partition))
		}
	}
	return in
}

// detValues is one field of a series: level, a seasonal sine of amplitude
// amp, Gaussian noise, a level shift up by shift and one down by shift
// (detShiftLength points each), and spikes of ±12 noise deviations, all
// after the analyzer's warm-up.
func detValues(rng *rand.Rand, level, amp, noise float64, period int, shift float64) []float64 {
	v := make([]float64, detPointsPerSer)
	up := 200 + rng.IntN(400)
	down := 800 + rng.IntN(400)
	for i := range v {
		x := level + amp*math.Sin(2*math.Pi*float64(i)/float64(period)) + noise*rng.NormFloat64()
		switch {
		case i >= up && i < up+detShiftLength:
			x += shift
		case i >= down && i < down+detShiftLength:
			x -= shift
		}
		v[i] = x
	}
	for range detSpikesPerSer {
		i := detFirstAnomaly + rng.IntN(detPointsPerSer-detFirstAnomaly)
		v[i] += float64(1-2*rng.IntN(2)) * 12 * noise
	}
	return v
}

// records returns the input as records for topic, in produce order, on
// their series' partition (kgo fills in the records it produces: a fresh
// set for every topic).
func (in *detInput) records(topic string) []*kgo.Record {
	recs := make([]*kgo.Record, len(in.lines))
	for i := range in.lines {
		recs[i] = &kgo.Record{Topic: topic, Partition: in.parts[i], Key: in.keys[i], Value: in.lines[i],
			Headers: []kgo.RecordHeader{{Key: kafkaio.HeaderContentType, Value: []byte(point.FormatLine.ContentType())}}}
	}
	return recs
}

// windows are the rollup windows (start → points) of series s: every
// window one of its points falls in.
func (s *detSeries) windows() map[int64]int {
	w := map[int64]int{}
	for i := range detPointsPerSer {
		t := s.time(i)
		w[t-t%int64(detRollup)]++
	}
	return w
}

// where says on which partition and at which offset the point of series
// key at time at (or the first after it, for a rollup window) was
// produced, for the reader of a difference to line it up with the
// services' logs.
func (in *detInput) where(key string, at int64) string {
	s, ok := in.bySeries[key]
	if !ok {
		return ""
	}
	return fmt.Sprintf("p%d@%d", s.partition, s.index(at)*in.perPart[s.partition]+s.rank)
}

// detRulesFile is the analyzer's rules: an anomaly score, a threshold on
// the sma and one on the ema, all of which fire and resolve on the input.
// No absence rule: those run on wall time.
func detRulesFile() string {
	return fmt.Sprintf(`rules:
  - name: det_anomaly
    anomaly: {score: 0.6}
    keep_firing_for: 30m
    severity: warning
  - name: det_load_sma_high
    match: {field: load}
    threshold: {of: sma, above: %g}
    for: 1m
    hysteresis: %g
    severity: critical
  - name: det_load_ema_low
    match: {field: load}
    threshold: {of: ema, below: %g}
    hysteresis: %g
    severity: warning
`, detLoadSMAAbove, detHysteresis, detLoadEMABelow, detHysteresis)
}
