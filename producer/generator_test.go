package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/internal/clitest"
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

// byKey runs g for n points and returns each series' values in event-time
// order with their times, and every label it recorded.
func byKey(g *generator, n int) (map[string][]seriesPoint, []label) {
	var labels []label
	g.onAnomaly = func(l label) { labels = append(labels, l) }
	out := map[string][]seriesPoint{}
	var p point.Point
	for range n {
		g.next(&p)
		k := string(point.AppendSeriesKey(nil, &p))
		out[k] = append(out[k], seriesPoint{p.Time, p.Fields[0].Value})
	}
	return out, labels
}

type seriesPoint struct {
	t int64
	v float64
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestShapesAreTakenInTurn(t *testing.T) {
	f := func(shapes []string, want ...string) {
		t.Helper()
		g := newGenerator(syntheticConfig{Series: len(want), Interval: time.Minute, Seed: 1, Measurement: "m", Shapes: shapes})
		for i, s := range g.series {
			if s.shape != want[i] {
				t.Errorf("shapes %v: series %d is %s, want %s", shapes, i, s.shape, want[i])
			}
			if err := (&point.Point{Measurement: "m", Tags: s.tags, Fields: []point.Field{{Key: "value", Value: 1}}}).Validate(); err != nil {
				t.Errorf("shapes %v: series %d tags %v: %v", shapes, i, s.tags, err)
			}
		}
	}
	f(nil, shapeWave, shapeWave)
	f([]string{shapeBurstyCounts}, shapeBurstyCounts, shapeBurstyCounts)
	f([]string{shapeWave, shapeBurstyCounts, shapeFlatThenShift}, shapeWave, shapeBurstyCounts, shapeFlatThenShift, shapeWave, shapeBurstyCounts)
}

func TestShapesFlag(t *testing.T) {
	f := func(flag string, want []string, wantErr string) {
		t.Helper()
		cfg := syntheticConfig{Series: 1, Measurement: "m", Shapes: parseShapes(flag)}
		if !slices.Equal(cfg.Shapes, want) {
			t.Errorf("--shapes %q: %q, want %q", flag, cfg.Shapes, want)
		}
		var shapeErr string
		if err := cfg.Validate(); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.Contains(line, "--shapes") {
					shapeErr = line
				}
			}
		}
		if wantErr == "" && shapeErr != "" || !strings.Contains(shapeErr, wantErr) {
			t.Errorf("--shapes %q: error %q, want one containing %q", flag, shapeErr, wantErr)
		}
	}
	f("", nil, "")
	f("wave", []string{"wave"}, "")
	f("wave, bursty-counts,flat-then-shift", []string{"wave", "bursty-counts", "flat-then-shift"}, "")
	f("wave,spiky", []string{"wave", "spiky"}, `--shapes "wave,spiky": unknown shape "spiky"`)
	f("wave,,wave", []string{"wave", "", "wave"}, `unknown shape ""`)
	f("Wave", []string{"Wave"}, `unknown shape "Wave", want a comma list of wave, bursty-counts, flat-then-shift`)

	clitest.CheckRejects(t, newApp, []string{"producer", "synthetic", "--shapes", "wave,spiky"}, "--shapes", `"spiky"`)
}

// TestBurstyCountsAreHeavyTailedAndRecur: without anomalies, no labels, yet
// every series is non-negative integers with bursts far above its median
// that come back again and again.
func TestBurstyCountsAreHeavyTailedAndRecur(t *testing.T) {
	const series, perSeries = 6, 20000
	g := newGenerator(syntheticConfig{Series: series, Interval: 5 * time.Minute, Seed: 11, Measurement: "mentions", Shapes: []string{shapeBurstyCounts}})
	got, labels := byKey(g, series*perSeries)
	if len(labels) != 0 || len(got) != series {
		t.Fatalf("%d labels, %d series; want none, %d", len(labels), len(got), series)
	}
	for k, pts := range got {
		vs := make([]float64, len(pts))
		for i, p := range pts {
			vs[i] = p.v
			if p.v < 0 || p.v != math.Trunc(p.v) {
				t.Fatalf("%s: value %v at %d, want a count", k, p.v, i)
			}
		}
		med, top := median(vs), slices.Max(vs)
		// Bursts: runs above 10× the median. A wave's max is within 2× its
		// median; these go 20× and more, and do so many times.
		bursts, above := 0, false
		for _, v := range vs {
			if v > 10*med && !above {
				bursts++
			}
			above = v > 10*med
		}
		t.Logf("%s: median %v max %v (%.0f×), %d bursts above 10× the median", k, med, top, top/med, bursts)
		if med < 1 || top/med < 20 {
			t.Errorf("%s: median %v max %v: want a heavy tail, max ≥ 20× the median", k, med, top)
		}
		if bursts < 20 {
			t.Errorf("%s: %d bursts above 10× the median in %d points, want them to recur (≥ 20)", k, bursts, perSeries)
		}
	}
}

// TestCountAnomaliesMatchTheirLabels: on bursty counts, outside the labels
// the values are the normal ones (their stream is separate); inside, a
// spike goes far beyond any normal burst of the series, a level_shift
// changes the rate at least twofold for its whole window, and a dropout
// leaves no point.
func TestCountAnomaliesMatchTheirLabels(t *testing.T) {
	const series = 4
	cfg := syntheticConfig{Series: series, Interval: time.Minute, Seed: 5, Measurement: "mentions", Shapes: []string{shapeBurstyCounts}}
	base := newGenerator(cfg)
	cfg.AnomalyRate = 0.005
	anom := newGenerator(cfg)
	anom.start = base.start
	want, _ := byKey(base, series*30000)
	got, labels := byKey(anom, series*20000)

	normal := map[seriesTime]float64{}
	normalMax := map[string]float64{}
	for k, pts := range want {
		for _, p := range pts {
			normal[seriesTime{k, p.t}] = p.v
			normalMax[k] = max(normalMax[k], p.v)
		}
	}
	seen := map[seriesTime]float64{}
	var last int64
	for k, pts := range got {
		for _, p := range pts {
			if p.v < 0 || p.v != math.Trunc(p.v) {
				t.Fatalf("%s: value %v, want a count", k, p.v)
			}
			seen[seriesTime{k, p.t}] = p.v
			last = max(last, p.t)
		}
	}
	inWindow := map[seriesTime]bool{}
	kinds := map[string]int{}
	for _, l := range labels {
		var sumGot, sumWant float64
		var up, down bool
		for ts := l.StartNS; ts <= l.EndNS; ts += int64(time.Minute) {
			k := seriesTime{l.Series, ts}
			inWindow[k] = true
			v, ok := seen[k]
			if l.EndNS > last {
				continue // cut off by the end of the run
			}
			if ok == (l.Kind == anomalyDropout) {
				t.Fatalf("%+v: point at %d present %v", l, ts, ok)
			}
			sumGot, sumWant = sumGot+v, sumWant+normal[k]
			up, down = up || v > normal[k], down || v < normal[k]
		}
		if l.EndNS > last {
			continue
		}
		kinds[l.Kind]++
		switch l.Kind {
		case anomalySpike:
			if sumGot < 2*normalMax[l.Series] {
				t.Errorf("%+v: spike to %v, normal max of the series %v: want beyond 2× its bursts", l, sumGot, normalMax[l.Series])
			}
		case anomalyLevelShift:
			if up && down || sumGot < 2*sumWant && sumGot > 0.5*sumWant {
				t.Errorf("%+v: %v events against %v normally (up %v down %v): want a sustained change of rate", l, sumGot, sumWant, up, down)
			}
		}
	}
	for _, k := range countAnomalyKinds {
		if kinds[k] == 0 {
			t.Errorf("no %s in %d labels", k, len(labels))
		}
	}
	for k, v := range seen {
		if !inWindow[k] && v != normal[k] {
			t.Fatalf("%v changed outside every labelled window: %v, want %v", k, v, normal[k])
		}
	}
	t.Logf("%d anomalies checked: %v", len(labels), kinds)
}

// TestFlatThenShiftLabelsEveryStep: a flat-then-shift series holds its level
// within a quantum for at least minFlat points, then steps; every step
// starts a level_shift label, and the value changes from the normal one
// (its stream is separate) nowhere else.
func TestFlatThenShiftLabelsEveryStep(t *testing.T) {
	const series = 6
	cfg := syntheticConfig{Series: series, Interval: time.Minute, Seed: 9, Measurement: "adx", Shapes: []string{shapeFlatThenShift}}
	base := newGenerator(cfg)
	cfg.AnomalyRate = 0.01
	anom := newGenerator(cfg)
	anom.start = base.start
	want, _ := byKey(base, series*5000)
	got, labels := byKey(anom, series*5000)

	starts := map[seriesTime]bool{}
	for _, l := range labels {
		if l.Kind != anomalyLevelShift || l.EndNS-l.StartNS < 9*int64(time.Minute) {
			t.Errorf("%+v: want a level_shift over the step's first points", l)
		}
		starts[seriesTime{l.Series, l.StartNS}] = true
	}
	steps := 0
	for k, pts := range got {
		q := anom.series[0].quantum
		for _, s := range anom.series {
			if string(point.AppendSeriesKey(nil, &point.Point{Measurement: "adx", Tags: s.tags})) == k {
				q = s.quantum
			}
		}
		runStart, lo, hi := 0, pts[0].v, pts[0].v
		for i, p := range pts {
			// The shift so far is a whole number of quanta: compare to half
			// of one, as the products of quanta round differently.
			shifted := i > 0 && math.Abs((p.v-want[k][i].v)-(pts[i-1].v-want[k][i-1].v)) > q/2
			if shifted != starts[seriesTime{k, p.t}] {
				t.Fatalf("%s at point %d: value %v (normal %v) stepped %v, labelled %v", k, i, p.v, want[k][i].v, shifted, starts[seriesTime{k, p.t}])
			}
			if shifted {
				steps++
				if i-runStart < minFlat || hi-lo > 2*q*(1+1e-9) {
					t.Errorf("%s: points %d to %d in [%v, %v], quantum %v: want ≥ %d points within a quantum of a level", k, runStart, i, lo, hi, q, minFlat)
				}
				if math.Abs(p.v-pts[i-1].v) < 0.05*math.Abs(pts[i-1].v) {
					t.Errorf("%s at point %d: step from %v to %v, want ≥ 5%%", k, i, pts[i-1].v, p.v)
				}
				runStart, lo, hi = i, p.v, p.v
			}
			lo, hi = min(lo, p.v), max(hi, p.v)
		}
	}
	if steps == 0 || steps != len(labels) {
		t.Errorf("%d steps, %d labels: want as many, and some", steps, len(labels))
	}
	t.Logf("%d series, %d steps, each labelled", series, steps)
}
