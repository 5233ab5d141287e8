package e2e

import (
	"cmp"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/alert"
)

// TestAnalyzerOnBurstyAndShiftingSeries: the analyzer's anomaly rule on
// series shaped like the real ones it failed on (issue 15), at their
// real 5-minute step: bursty counts, whose recurring heavy-tailed bursts
// are normal and must not page, and flat stretches followed by lasting
// level shifts, which must. Per shape it measures the recall of the
// labelled anomalies and the false alerts per series per day, the figures
// an operator judges a pager by.
func TestAnalyzerOnBurstyAndShiftingSeries(t *testing.T) {
	const (
		series    = 40
		perSeries = 4000 // 5-minute steps: 13.9 days per series
		points    = series * perSeries
		interval  = 5 * time.Minute
		// Steps before a point can be judged: a series sampled every 5
		// minutes is warm after two days of its own time (the README's
		// analyzer section).
		warmUp = 2 * 24 * 12
		// An alert belongs to an anomaly when it starts in its window or
		// within slack after it: a change of rate ends with a return to
		// normal, and a step may be noticed a few points in.
		slack = 5 * interval
		// keep_firing_for: the deploy rule's 1m would end an alert at the
		// next 5-minute point, so an episode whose score fires at a few
		// neighbouring points would page several times; half an hour
		// (6 points) keeps one page per episode.
		keepFiring = 30 * time.Minute

		// Targets: most level shifts and spikes are caught, and at most one
		// false page per series in ten days. Bursty counts fall short of
		// that today: the detector needs about five of a series' bursts
		// after it settles before they stop paging, and these series have
		// one or two a day. Their bound (measured 0.39 per series per day;
		// 0.56 before the detector learned each series' recurring onsets,
		// spike recall 0.67 then, 0.88 now) guards against regression,
		// not the target.
		minRecall            = 0.9
		minBurstySpikes      = 0.85
		maxFalsePerDay       = 0.1
		maxBurstyFalsePerDay = 0.45
		minLevelShifts       = 30 // on flat-then-shift, to judge recall at all
		minCountSpikes       = 10 // on bursty-counts
		burstyCounts         = "bursty-counts"
		flatThenShift        = "flat-then-shift"
		kindSpike            = "spike"
		kindLevelShift       = "level_shift"
		kindDropout          = "dropout"
		exampleFalseMax      = 5 // false alerts logged per shape
	)
	b := newBed(t, "shapes")
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.yaml")
	// deploy/rules.yaml's synthetic_anomaly, keep_firing_for scaled to the
	// 5-minute step.
	writeFile(t, rulesFile, `rules:
  - name: synthetic_anomaly
    match: {measurement: synthetic, field: value}
    anomaly: {score: 0.3}
    keep_firing_for: `+keepFiring.String()+`
    severity: warning
    labels: {source: synthetic}
    summary: '{{ if eq .State "resolved" }}series {{ .Labels.series }} on {{ .Labels.host }} back to expected{{ else }}series {{ .Labels.series }} on {{ .Labels.host }}: {{ .Observed | printf "%.2f" }} is unexpected (forecast {{ .Expected | printf "%.2f" }}, score {{ .Value | printf "%.2f" }}){{ end }}'
`)
	truthFile := filepath.Join(dir, "truth.jsonl")
	p := b.produce(points, "--series", fmt.Sprint(series), "--shapes", burstyCounts+","+flatThenShift,
		"--anomaly-rate", "0.0015", "--ground-truth", truthFile, "--seed", "15", "--interval", interval.String())
	if err := p.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v\n%s", err, p.Output())
	}
	a := b.analyzer("a", rulesFile, testbed.FreeAddr(t))
	b.waitCommitted(b.topic+"-a", 3*time.Minute)
	stopGracefully(t, a)

	labels := readJSONLines[groundTruth](t, truthFile)
	events := b.alertEvents()
	// In event time, so the examples logged are the same from run to run.
	slices.SortStableFunc(events, func(x, y alert.Event) int {
		return cmp.Or(x.EventTime.Compare(y.EventTime), strings.Compare(x.Series, y.Series))
	})
	origin := b.firstPointTime()
	step := func(ns int64) int64 { return (ns - origin) / int64(interval) }

	// Series i takes the shapes in turn; its key ends with its shape tag.
	shapes := []string{burstyCounts, flatThenShift}
	shapeOf := func(key string) string { return key[strings.LastIndexByte(key, '=')+1:] }
	perShape := series / len(shapes)
	days := float64(time.Duration(perSeries-warmUp)*interval) / float64(24*time.Hour) // judged, per series

	type tally struct {
		judged, found map[string]int // by kind
		falseAlerts   int
		examples      []string
	}
	tallies := map[string]*tally{}
	for _, s := range shapes {
		tallies[s] = &tally{judged: map[string]int{}, found: map[string]int{}}
	}
	fired := make([]int, len(labels))
	// firingSince[key] holds the steps each of the series' alerts started
	// and resolved at, to tell why an anomaly was missed.
	type span struct{ from, to int64 }
	firingSince := map[string][]span{}
	for _, e := range events {
		key := strings.TrimSuffix(e.Series, " value")
		if e.State == alert.Resolved {
			firingSince[key] = append(firingSince[key], span{step(e.StartsAt.UnixNano()), step(e.EndsAt.UnixNano())})
		}
		if e.State != alert.Firing {
			continue
		}
		at := e.StartsAt.UnixNano()
		i := slices.IndexFunc(labels, func(l groundTruth) bool {
			return l.Series == key && at >= l.StartNS && at <= l.EndNS+int64(slack)
		})
		if i >= 0 {
			fired[i]++
			continue
		}
		tl := tallies[shapeOf(key)]
		if tl == nil {
			t.Fatalf("alert on %s, a series of no shape under test", e.Series)
		}
		tl.falseAlerts++
		if len(tl.examples) < exampleFalseMax {
			tl.examples = append(tl.examples, fmt.Sprintf("%s at step %d: %s", key, step(at), e.Summary))
		}
	}
	for i, l := range labels {
		// A dropout has no points for a forecast to find unlikely (the
		// absence rules' job); an anomaly that starts before warm-up
		// cannot be judged, nor one that starts past the steps every series
		// has (dropouts skip points, so the producer goes on a few steps
		// past perSeries to reach its count). None is scored, but alerts
		// in their windows are not false either.
		if l.Kind == kindDropout || step(l.StartNS) < warmUp || step(l.StartNS) >= perSeries {
			continue
		}
		tl := tallies[shapeOf(l.Series)]
		tl.judged[l.Kind]++
		if fired[i] > 0 {
			tl.found[l.Kind]++
			continue
		}
		why := ""
		for _, sp := range firingSince[l.Series] {
			if sp.from < step(l.StartNS) && sp.to >= step(l.StartNS) {
				why = fmt.Sprintf(" (an alert firing since step %d, outside it, covered it)", sp.from)
			}
		}
		t.Logf("missed %s on %s at steps %d-%d%s", l.Kind, l.Series, step(l.StartNS), step(l.EndNS), why)
	}

	recall := func(tl *tally, kind string) float64 {
		if tl.judged[kind] == 0 {
			return 0
		}
		return float64(tl.found[kind]) / float64(tl.judged[kind])
	}
	for _, s := range shapes {
		tl := tallies[s]
		for _, ex := range tl.examples {
			t.Logf("%s: false alert on %s", s, ex)
		}
		var kinds []string
		for _, k := range slices.Sorted(maps.Keys(tl.judged)) {
			kinds = append(kinds, fmt.Sprintf("%s %d/%d (%.2f)", k, tl.found[k], tl.judged[k], recall(tl, k)))
		}
		t.Logf("%s: %d series × %.1f days; recall %s; %d false alerts, %.3f per series per day",
			s, perShape, days, strings.Join(kinds, ", "), tl.falseAlerts, float64(tl.falseAlerts)/(float64(perShape)*days))
	}

	shifts, counts := tallies[flatThenShift], tallies[burstyCounts]
	if shifts.judged[kindLevelShift] < minLevelShifts || counts.judged[kindSpike] < minCountSpikes {
		t.Fatalf("%d level shifts on flat-then-shift and %d spikes on bursty-counts judged: too few, want ≥ %d and ≥ %d",
			shifts.judged[kindLevelShift], counts.judged[kindSpike], minLevelShifts, minCountSpikes)
	}
	if r := recall(shifts, kindLevelShift); r < minRecall {
		t.Errorf("flat-then-shift: level-shift recall %.3f, want ≥ %.1f", r, minRecall)
	}
	// Not paging on bursts must not come from not paging at all: the
	// spikes beyond every burst are still found.
	if r := recall(counts, kindSpike); r < minBurstySpikes {
		t.Errorf("bursty-counts: spike recall %.3f, want ≥ %.2f", r, minBurstySpikes)
	}
	for _, s := range shapes {
		bound := maxFalsePerDay
		if s == burstyCounts {
			bound = maxBurstyFalsePerDay
		}
		if perDay := float64(tallies[s].falseAlerts) / (float64(perShape) * days); perDay > bound {
			t.Errorf("%s: %.3f false alerts per series per day, want ≤ %.2f", s, perDay, bound)
		}
	}
}
