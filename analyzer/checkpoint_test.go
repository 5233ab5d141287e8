package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/point"
)

// synthRules fire on the synthetic stream: anomaly onsets and z-scores,
// thresholds on the value and its averages (with for, hysteresis and
// keep_firing_for), a predictive rule on the trending series, and an
// absence rule that never fires while points flow.
const synthRules = `rules:
  - name: spike
    anomaly: {score: 0.55}
    keep_firing_for: 5m
  - name: z_high
    anomaly: {z: 4}
    for: 2m
  - name: lat_high
    match: {field: lat}
    threshold: {above: 135}
    for: 1m
    hysteresis: 3
  - name: ema_high
    threshold: {of: ema, above: 118}
  - name: sma_low
    threshold: {of: sma, below: 84}
    keep_firing_for: 2m
  - name: forecast_high
    threshold: {of: forecast, above: 125}
  - name: filling
    match: {tags: {host: trend}}
    predictive: {above: 400, within: 30m}
    keep_firing_for: 10m
  - name: silent
    absence: {for: 10m}
`

// synthStream is a partition's points: series with a daily-like cycle of
// 24 points (one a minute), noise, spikes and a level shift; one series
// trends; two fields per point; every 97th point arrives late (an older
// time than its series' newest).
func synthStream(nSeries, perSeries int) []point.Point {
	rng := rand.New(rand.NewPCG(14, 2026))
	var pts []point.Point
	for i := range perSeries {
		for s := range nSeries {
			host := fmt.Sprintf("h%d", s)
			if s == nSeries-1 {
				host = "trend"
			}
			min := i
			if (i*nSeries+s)%97 == 96 && i > 2 {
				min = i - 2 // late
			}
			phase := 2 * math.Pi * float64(min) / 24
			v := 100 + 20*math.Sin(phase+float64(s)) + 2*rng.NormFloat64()
			switch {
			case s == nSeries-1:
				v = 50 + 0.4*float64(min) + rng.NormFloat64()
			case i%211 == 100+s:
				v += 60 // spike
			case s == 1 && i > 600 && i < 700:
				v -= 35 // a dip for a while
			}
			errs := 5 + math.Abs(rng.NormFloat64())
			if i%173 == 50+s {
				errs += 40
			}
			pts = append(pts, point.Point{
				Measurement: "app",
				Tags:        []point.Tag{{Key: "host", Value: host}, {Key: "region", Value: "eu"}},
				Fields:      []point.Field{{Key: "lat", Value: v}, {Key: "errs", Value: errs}},
				Time:        t0.Add(time.Duration(min) * time.Minute).UnixNano(),
			})
		}
	}
	return pts
}

// arrival is the wall time point i arrives: a point a second.
func arrival(i int) int64 { return t0.Add(72*time.Hour + time.Duration(i)*time.Second).UnixNano() }

// fmtFields renders fields with their exact bits.
func fmtFields(fs []point.Field) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, " %s=%x", f.Key, math.Float64bits(f.Value))
	}
	return b.String()
}

func fmtOpt(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%x", math.Float64bits(*v))
}

// fmtEvent renders every field of an alert event, floats by their bits.
func fmtEvent(e *alert.Event) string {
	labels := make([]string, 0, len(e.Labels))
	for k, v := range e.Labels {
		labels = append(labels, k+"="+v)
	}
	return fmt.Sprintf("event %s %s %s %s %s value=%x threshold=%s expected=%s score=%s starts=%d ends=%d at=%d %q %q labels=%d",
		e.Fingerprint, e.Rule, e.State, e.Severity, e.Series, math.Float64bits(e.Value), fmtOpt(e.Threshold), fmtOpt(e.Expected),
		fmtOpt(e.Score), e.StartsAt.UnixNano(), e.EndsAt.UnixNano(), e.EventTime.UnixNano(), e.Summary, e.Description, len(labels))
}

// runEngine feeds pts[from:to] to e, a point per arrival, and renders
// every output per point: forecast points with their exact values, and
// every alert event.
func runEngine(e *engine, pts []point.Point, from, to int) []string {
	var got []string
	for i := from; i < to; i++ {
		p := pts[i]
		p.Fields = append([]point.Field(nil), p.Fields...)
		e.Process(&p, arrival(i))
		for _, o := range e.out {
			got = append(got, fmt.Sprintf("%d: forecast %s %d%s", i, point.AppendSeriesKey(nil, &o), o.Time, fmtFields(o.Fields)))
		}
		for j := range e.events {
			got = append(got, fmt.Sprintf("%d: %s", i, fmtEvent(&e.events[j])))
		}
		e.Reset()
	}
	return got
}

// firstDiff returns the first line where a and b differ, and how many do.
func firstDiff(a, b []string) (string, int) {
	n, first := 0, ""
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if n == 0 {
				first = fmt.Sprintf("line %d:\n  got  %s\n  want %s", i, x, y)
			}
			n++
		}
	}
	return first, n
}

func countEvents(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, ": event ") {
			n++
		}
	}
	return n
}

// TestColdRestartDiffers is the analyzer as it restarted before
// checkpoints (issue 14): an engine stopped after point k and a new one
// fed the rest make other forecasts, scores and alerts than an engine that
// ran through.
func TestColdRestartDiffers(t *testing.T) {
	pts := synthStream(5, 900)
	ref := testEngine(t, synthAnalysis(), synthRules)
	want := runEngine(ref, pts, 0, len(pts))
	if n := countEvents(want); n < 20 {
		t.Fatalf("the uninterrupted run made %d alert events; the stream should fire the rules more", n)
	}
	k := len(pts) / 2
	cold := testEngine(t, synthAnalysis(), synthRules)
	runEngine(cold, pts, 0, k)
	cold = testEngine(t, synthAnalysis(), synthRules) // kill -9: the state is gone
	got := runEngine(cold, pts, k, len(pts))
	wantAfter := tail(want, k)
	first, n := firstDiff(got, wantAfter)
	if n == 0 {
		t.Fatal("a cold restart gave the uninterrupted run's outputs: the test stream does not exercise the state")
	}
	t.Logf("cold restart at point %d: %d of %d output lines differ (%d vs %d alert events); first %s",
		k, n, len(wantAfter), countEvents(got), countEvents(wantAfter), first)
}

// tail returns the lines of points from k on.
func tail(lines []string, k int) []string {
	for i, l := range lines {
		var at int
		fmt.Sscanf(l, "%d:", &at)
		if at >= k {
			return lines[i:]
		}
	}
	return nil
}

// synthAnalysis is the test analysis with a time season that each series
// turns into 24 points.
func synthAnalysis() *analysis {
	a := testAnalysis()
	a.MaxSeries = 1000
	a.SMAWindow = 5
	a.Season = 24 * time.Minute
	return a
}
