package main

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/forecast"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/rules"
	"github.com/metricpipe/metricpipe/shared/stream"
)

// synthRules fire on the synthetic stream: anomaly onsets and z-scores,
// thresholds on the value and its averages (with for, hysteresis and
// keep_firing_for), a predictive rule on the trending series, and an
// absence rule (pending 5 minutes, then firing) for the series that falls
// silent.
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
    absence: {for: 5m}
    for: 5m
`

// synthStream is a partition's points: series with a daily-like cycle of
// 24 points (one a minute), noise, spikes and a level shift; one series
// trends; h2 falls silent from round 650 to 850 (points 3250 to 4050, a
// point a second: its absence alert is pending from ~3550 and firing from
// ~3850 until it resolves at 4050);
// two fields per point; every 97th point arrives late (an older time than
// its series' newest).
func synthStream(nSeries, perSeries int) []point.Point {
	rng := rand.New(rand.NewPCG(14, 2026))
	var pts []point.Point
	for i := range perSeries {
		for s := range nSeries {
			host := fmt.Sprintf("h%d", s)
			if s == nSeries-1 {
				host = "trend"
			}
			if s == 2 && i >= 650 && i < 850 {
				continue // silent
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

// runEngine feeds pts[from:to] to e, a point per arrival (delayed by
// late), with the housekeeping every 50 points, and renders every output
// per point: forecast points with their exact values, and every alert
// event, with the wall times it made (absence alerts') moved back by late.
func runEngine(e *testEng, pts []point.Point, from, to int, late int64) []string {
	var got []string
	unlate := func(t time.Time) time.Time {
		if late != 0 && t.UnixNano() >= arrival(from)+late {
			return t.Add(-time.Duration(late))
		}
		return t
	}
	for i := from; i < to; i++ {
		p := pts[i]
		p.Fields = append([]point.Field(nil), p.Fields...)
		e.process(&p, arrival(i)+late)
		if i%50 == 49 {
			e.expire(arrival(i) + late)
		}
		for _, o := range e.res.points {
			got = append(got, fmt.Sprintf("%d: forecast %s %d%s", i, point.AppendSeriesKey(nil, &o), o.Time, fmtFields(o.Fields)))
		}
		for j := range e.res.events {
			ev := &e.res.events[j]
			ev.StartsAt, ev.EndsAt, ev.EventTime = unlate(ev.StartsAt), unlate(ev.EndsAt), unlate(ev.EventTime)
			got = append(got, fmt.Sprintf("%d: %s", i, fmtEvent(ev)))
		}
		e.res.Reset()
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
	want := runEngine(ref, pts, 0, len(pts), 0)
	if n := countEvents(want); n < 20 {
		t.Fatalf("the uninterrupted run made %d alert events; the stream should fire the rules more", n)
	}
	k := len(pts) / 2
	cold := testEngine(t, synthAnalysis(), synthRules)
	runEngine(cold, pts, 0, k, 0)
	cold = testEngine(t, synthAnalysis(), synthRules) // kill -9: the state is gone
	got := runEngine(cold, pts, k, len(pts), 0)
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

// TestEngineCheckpointRestore: an engine restored from a checkpoint taken
// after point k, fed the rest, derives bit for bit the forecasts, scores
// and alert events of the engine that ran through, for splits before and
// during warm-up, inside alerts (pending, firing, keep_firing_for) and
// late; with and without a seasonal forecaster; right away or after an
// hour's downtime (the points then arrive an hour later).
func TestEngineCheckpointRestore(t *testing.T) {
	pts := synthStream(5, 900)
	noSeason := synthAnalysis()
	noSeason.Season = 0
	pointSeason := synthAnalysis()
	pointSeason.Season, pointSeason.Forecast.Season = 0, 24
	holt := synthAnalysis()
	holt.Forecast.Kind = forecast.HoltWinters
	for name, a := range map[string]*analysis{"season-24m": synthAnalysis(), "no-season": noSeason, "season-24-points": pointSeason, "holt-winters": holt} {
		t.Run(name, func(t *testing.T) {
			want := runEngine(testEngine(t, a, synthRules), pts, 0, len(pts), 0)
			if n := countEvents(want); n < 20 || !strings.Contains(strings.Join(want, "\n"), " silent firing ") {
				t.Fatalf("%d alert events, absence firing %v; the stream should fire the rules more", n, strings.Contains(strings.Join(want, "\n"), " silent firing "))
			}
			for _, k := range []int{0, 1, 7, 60, 333, 1000, 2250, 3001, 3700, 3950, 4200, len(pts) - 1, len(pts)} {
				for _, down := range []int64{0, int64(time.Hour)} {
					e := testEngine(t, a, synthRules)
					runEngine(e, pts, 0, k, 0)
					taken := arrival(k - 1)
					state := e.Checkpoint(nil)
					r := testEngine(t, a, synthRules)
					if err := r.Restore(state, taken, taken+down); err != nil {
						t.Fatalf("split %d: %v", k, err)
					}
					if diff := diffStates(r, e, down); diff != "" {
						t.Fatalf("split %d: restored state differs: %s", k, diff)
					}
					got := runEngine(r, pts, k, len(pts), down)
					if first, n := firstDiff(got, tail(want, k)); n > 0 {
						t.Fatalf("split %d, down %s: %d of %d output lines differ from the uninterrupted run; first %s",
							k, time.Duration(down), n, len(tail(want, k)), first)
					}
				}
			}
		})
	}
}

// diffStates compares the state of every series of two engines, as their
// checkpoints encode it, the processing-time clocks of got moved back by
// late.
func diffStates(got, want *testEng, late int64) string {
	encode := func(e *testEng, s *series, late int64) string {
		index := map[*rules.Rule]uint64{}
		for i, r := range e.book.set.Rules {
			index[r] = uint64(i)
		}
		c := *s
		c.arrived -= late
		c.alerts = slices.Clone(s.alerts)
		for i := range c.alerts {
			if c.alerts[i].rule.Kind == rules.Absence {
				c.alerts[i].lc.Shift(-late)
			}
		}
		var enc stream.Encoder
		c.checkpoint(&enc, index)
		return string(enc.B)
	}
	if len(got.series) != len(want.series) {
		return fmt.Sprintf("%d series, want %d", len(got.series), len(want.series))
	}
	for k, w := range want.series {
		g, ok := got.series[k]
		if !ok {
			return fmt.Sprintf("series %q missing", k)
		}
		if g, w := encode(got, g, late), encode(want, w, 0); g != w {
			return fmt.Sprintf("series %q: %x, want %x", k, g, w)
		}
	}
	return ""
}

// TestEngineRestoreRematchesRules: restored under a changed rule file, a
// series keeps the lifecycle of each rule whose name and definition are
// unchanged (still firing: no new event), and the others start afresh, as
// on a reload.
func TestEngineRestoreRematchesRules(t *testing.T) {
	e := testEngine(t, testAnalysis(), `rules:
  - name: kept
    threshold: {above: 90}
  - name: changed
    threshold: {above: 90}
`)
	check(t, feed(e, 0, 95), "0:firing 0:firing")
	state := e.Checkpoint(nil)
	r := testEngine(t, testAnalysis(), `rules:
  - name: added
    threshold: {above: 90}
  - name: kept
    threshold: {above: 90}
  - name: changed
    threshold: {above: 93}
`)
	if err := r.Restore(state, 0, 0); err != nil {
		t.Fatal(err)
	}
	check(t, feed(r, 1, 96, 50), "1:firing 1:firing 2:resolved 2:resolved 2:resolved")
}

// TestEngineRestoreRefuses: a checkpoint of other analysis settings, of
// another kind or version, or damaged, is refused with the matching error
// and leaves the engine without series; settings that do not change what
// the state means restore.
func TestEngineRestoreRefuses(t *testing.T) {
	e := testEngine(t, synthAnalysis(), synthRules)
	runEngine(e, synthStream(3, 100), 0, 300, 0)
	state := e.Checkpoint(nil)
	f := func(name string, change func(a *analysis), src []byte, want error) {
		t.Helper()
		a := synthAnalysis()
		change(a)
		r := testEngine(t, a, synthRules)
		runEngine(r, synthStream(1, 10), 0, 10, 0)
		err := r.Restore(src, 0, 0)
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
		if want != nil && len(r.series) != 0 {
			t.Errorf("%s: %d series left after a refused restore", name, len(r.series))
		}
	}
	same := func(*analysis) {}
	f("same settings", same, state, nil)
	f("write forecasts, band, repeat, bounds", func(a *analysis) {
		a.WriteForecasts, a.IntervalZ, a.Repeat, a.MaxSeries, a.IdleTimeout = false, 2, time.Minute, 7, time.Minute
	}, state, nil)
	f("model", func(a *analysis) { a.Forecast.Kind = forecast.Holt; a.Season = 0 }, state, stream.ErrIncompatible)
	f("season", func(a *analysis) { a.Season = time.Hour }, state, stream.ErrIncompatible)
	f("ar order", func(a *analysis) { a.Forecast.Order = 4 }, state, stream.ErrIncompatible)
	f("warm-up", func(a *analysis) { a.Anomaly.WarmUp = 11 }, state, stream.ErrIncompatible)
	f("sma window", func(a *analysis) { a.SMAWindow = 6 }, state, stream.ErrIncompatible)
	f("ema", func(a *analysis) { a.EMAAlpha = 0.25 }, state, stream.ErrIncompatible)
	f("other kind", same, stream.AppendHeader(nil, "movavg", checkpointVersion, e.config), stream.ErrIncompatible)
	f("other version", same, stream.AppendHeader(nil, checkpointKind, checkpointVersion+1, e.config), stream.ErrIncompatible)
	f("truncated", same, state[:len(state)-3], stream.ErrCorrupt)
	f("trailing bytes", same, append(slices.Clone(state), 0), stream.ErrCorrupt)
	f("empty", same, nil, stream.ErrCorrupt)
	if a := synthAnalysis(); true {
		a.MaxSeries = 2
		r := testEngine(t, a, synthRules)
		if err := r.Restore(state, 0, 0); err != nil || len(r.series) != 2 {
			t.Errorf("MaxSeries 2: %v, %d series restored", err, len(r.series))
		}
	}
}

// FuzzEngineRestore: no input makes Restore panic; a failure wraps
// stream.ErrCorrupt or stream.ErrIncompatible and leaves no series; a
// restored engine analyzes and checkpoints.
// The fuzzed bytes follow a valid header, so that they reach the series
// rather than fail the header's configuration hash.
func FuzzEngineRestore(f *testing.F) {
	pts := synthStream(3, 120)
	header := len(stream.AppendHeader(nil, checkpointKind, checkpointVersion, 0))
	for _, k := range []int{0, 1, 100, 360} {
		e := testEngine(f, synthAnalysis(), synthRules)
		runEngine(e, pts, 0, k, 0)
		f.Add(e.Checkpoint(nil)[header:])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e := testEngine(t, synthAnalysis(), synthRules)
		b := append(stream.AppendHeader(nil, checkpointKind, checkpointVersion, e.config), body...)
		if err := e.Restore(b, 0, 0); err != nil {
			if !errors.Is(err, stream.ErrCorrupt) && !errors.Is(err, stream.ErrIncompatible) || len(e.series) != 0 {
				t.Fatalf("%v, %d series", err, len(e.series))
			}
			return
		}
		runEngine(e, pts, 0, 60, 0)
		e.expire(arrival(60))
		e.Checkpoint(nil)
	})
}
