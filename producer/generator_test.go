package main

import (
	"math"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/point"
)

type seriesTime struct {
	series string
	t      int64
}

func run(g *generator, n int) map[seriesTime]float64 {
	out := map[seriesTime]float64{}
	var p point.Point
	for range n {
		g.next(&p)
		out[seriesTime{string(point.AppendSeriesKey(nil, &p)), p.Time}] = p.Fields[0].Value
	}
	return out
}

// TestAnomaliesMatchTheirLabels generates the same series with and without
// anomalies (their randomness is a separate stream, so normal values are
// identical) and checks every point against the ground truth: outside the
// labelled windows the values are untouched; inside, each kind does what
// its label says.
func TestAnomaliesMatchTheirLabels(t *testing.T) {
	cfg := syntheticConfig{Series: 5, Interval: time.Second, Seed: 7, Measurement: "synthetic"}
	base := newGenerator(cfg)
	cfg.AnomalyRate = 0.01
	anom := newGenerator(cfg)
	anom.start = base.start
	var labels []label
	anom.onAnomaly = func(l label) { labels = append(labels, l) }

	want := run(base, 30000)
	got := run(anom, 20000)
	var last int64 // latest time the anomalous run reached
	for k := range got {
		last = max(last, k.t)
	}

	inWindow := map[seriesTime]bool{}
	for _, l := range labels {
		for ts := l.StartNS; ts <= l.EndNS; ts += int64(time.Second) {
			inWindow[seriesTime{l.Series, ts}] = true
		}
	}
	kinds := map[string]int{}
	for _, l := range labels {
		if l.EndNS > last {
			continue // cut off by the end of the run
		}
		kinds[l.Kind]++
		var diffs, vals []float64
		for ts := l.StartNS; ts <= l.EndNS; ts += int64(time.Second) {
			k := seriesTime{l.Series, ts}
			v, ok := got[k]
			if l.Kind == anomalyDropout {
				if ok {
					t.Fatalf("%+v: a point at %d inside the dropout", l, ts)
				}
				continue
			}
			if !ok {
				t.Fatalf("%+v: no point at %d", l, ts)
			}
			diffs, vals = append(diffs, v-want[k]), append(vals, v)
		}
		level := math.Abs(want[seriesTime{l.Series, l.StartNS}])
		switch l.Kind {
		case anomalySpike:
			if len(diffs) != 1 || math.Abs(diffs[0]) < 0.3*level {
				t.Errorf("%+v: spike of %v on a level of %v", l, diffs, level)
			}
		case anomalyLevelShift:
			for _, d := range diffs {
				if math.Abs(d-diffs[0]) > 1e-9 || math.Abs(d) < 0.1*level {
					t.Fatalf("%+v: shift %v, want one constant step", l, diffs)
				}
			}
		case anomalyDrift:
			for i, d := range diffs {
				if math.Abs(d/float64(i+1)-diffs[0]) > 1e-9 {
					t.Fatalf("%+v: drift %v, want a linear ramp", l, diffs)
				}
			}
		case anomalyFlatLine:
			for _, v := range vals {
				if v != vals[0] {
					t.Fatalf("%+v: flat line %v", l, vals)
				}
			}
		}
	}
	for _, k := range anomalyKinds {
		if kinds[k] == 0 {
			t.Errorf("no %s injected in %d labels", k, len(labels))
		}
	}
	for k, v := range got {
		if !inWindow[k] && v != want[k] {
			t.Fatalf("%v changed outside every labelled window: %v, want %v", k, v, want[k])
		}
	}
	t.Logf("%d anomalies checked: %v", len(labels), kinds)
}
