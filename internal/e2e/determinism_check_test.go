package e2e

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/alert"
)

// detDiff is one value that differs between the baseline and the chaos
// run; nil where a run has no value.
type detDiff struct {
	key         testbed.FieldKey
	base, chaos any
}

// kind names what a differing value is: "plant_a load_sma", "plant_b raw",
// "metricpipe_alerts value".
func (d detDiff) kind() string {
	m, _, _ := strings.Cut(d.key.Series, ",")
	if !strings.HasPrefix(m, "plant_") {
		return m + " " + d.key.Field
	}
	for _, s := range []string{"_anomaly_score", "_forecast", "_lower", "_upper", "_sma", "_ema", "_wma",
		"_count", "_mean", "_min", "_max", "_last", "_p95"} {
		if strings.HasSuffix(d.key.Field, s) {
			return m + " " + s[1:]
		}
	}
	return m + " raw"
}

func (d detDiff) String() string {
	show := func(v any) string {
		switch x := v.(type) {
		case nil:
			return "none"
		case float64:
			return fmt.Sprintf("%.17g", x)
		default:
			return fmt.Sprintf("%q", fmt.Sprint(x))
		}
	}
	return fmt.Sprintf("%s %s at %s: baseline %s, chaos %s", d.key.Series, d.key.Field,
		time.Unix(0, d.key.Time).UTC().Format(time.RFC3339Nano), show(d.base), show(d.chaos))
}

// sameValue compares bit for bit.
func sameValue(a, b any) bool {
	fa, oka := a.(float64)
	fb, okb := b.(float64)
	if oka && okb {
		return math.Float64bits(fa) == math.Float64bits(fb)
	}
	return a == b
}

// detFigures are what the comparison found, printed on the DETERMINISM line.
type detFigures struct {
	values                      int // values in the baseline
	missing, extra, changed     int // in the chaos run: absent, not in the baseline, different
	windows                     map[string]*detWindowFigures
	alertsBase, alertsChaos     int // events after removing duplicates
	alertDups                   int // duplicates removed from the chaos run's
	alertFingerprints           int
	alertDiffs                  int // fingerprints whose sequences differ
	ruleInputs, ruleInputsWrong int
}

// detWindowFigures are a run's rollup rows against the windows the input
// falls in.
type detWindowFigures struct {
	expected, missing, extra, wrongCount int
	seriesWithout                        int // series-fields without any rollup row
	examples                             []string
}

// compare reads both runs' databases and alert topics back and reports
// every difference; it fails the test for each kind of difference, and for
// rollup windows missing or points dropped late in either run.
func (e *detEnv) compare(base, chaos *detRun) {
	t := e.t
	ctx := t.Context()
	start := time.Now()
	fg := detFigures{windows: map[string]*detWindowFigures{base.name: {}, chaos.name: {}}}

	baseAlerts, _ := base.alertSequences(ctx)
	chaosAlerts, dups := chaos.alertSequences(ctx)
	fg.alertDups = dups

	// The rule inputs to look up in the baseline: the sma and ema its rules
	// saw must be the _sma and _ema the consumer wrote.
	type ruleInput struct {
		key   testbed.FieldKey
		value float64
		rule  string
	}
	var inputs []ruleInput
	for _, seq := range baseAlerts {
		for _, a := range seq {
			suffix := map[string]string{"det_load_sma_high": "_sma", "det_load_ema_low": "_ema"}[a.rule]
			if suffix == "" {
				continue
			}
			series, field, _ := strings.Cut(a.series, " ")
			inputs = append(inputs, ruleInput{key: testbed.FieldKey{Series: series, Field: field + suffix, Time: a.eventTime}, value: a.value, rule: a.rule})
		}
	}

	names := map[string]bool{}
	for _, r := range []*detRun{base, chaos} {
		ms, err := testbed.Measurements(ctx, e.influxURL, r.db)
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		for _, m := range ms {
			names[m] = true
		}
	}
	var diffs []detDiff
	var wrongInputs []string
	for _, m := range slices.Sorted(maps.Keys(names)) {
		b, err := testbed.DumpMeasurement(ctx, e.influxURL, base.db, m)
		if err != nil {
			t.Fatalf("read the baseline's %s: %v", m, err)
		}
		c, err := testbed.DumpMeasurement(ctx, e.influxURL, chaos.db, m)
		if err != nil {
			t.Fatalf("read the chaos run's %s: %v", m, err)
		}
		fg.values += len(b)
		for k, bv := range b {
			cv, ok := c[k]
			switch {
			case !ok:
				fg.missing++
				diffs = append(diffs, detDiff{key: k, base: bv})
			case !sameValue(bv, cv):
				fg.changed++
				diffs = append(diffs, detDiff{key: k, base: bv, chaos: cv})
			}
		}
		for k, cv := range c {
			if _, ok := b[k]; !ok {
				fg.extra++
				diffs = append(diffs, detDiff{key: k, chaos: cv})
			}
		}
		e.checkWindows(m, b, fg.windows[base.name])
		e.checkWindows(m, c, fg.windows[chaos.name])
		for _, in := range inputs {
			if !strings.HasPrefix(in.key.Series, m+",") {
				continue
			}
			fg.ruleInputs++
			if v, ok := b[in.key]; !ok || !sameValue(v, in.value) {
				fg.ruleInputsWrong++
				wrongInputs = append(wrongInputs, fmt.Sprintf("%s: %s %s at %s: the rule saw %.17g, the consumer wrote %v",
					in.rule, in.key.Series, in.key.Field, time.Unix(0, in.key.Time).UTC().Format(time.RFC3339), in.value, v))
			}
		}
	}
	fg.compareAlerts(t, baseAlerts, chaosAlerts)
	restored, discarded := chaos.restores()
	t.Logf("DETERMINISM checkpoints=%v points=%d values=%d differing=%d (missing=%d extra=%d changed=%d) alerts=%d/%d alert_fingerprints=%d alert_diffs=%d alert_duplicates=%d "+
		"rule_inputs=%d rule_inputs_wrong=%d kills=%d restores=%d discarded=%d dropped_late=%g/%g series_expired=%g/%g "+
		"windows=%d missing_windows=%d/%d extra_windows=%d/%d wrong_counts=%d/%d baseline=%s chaos=%s compare=%s",
		e.checkpoints, len(e.in.lines), fg.values, len(diffs), fg.missing, fg.extra, fg.changed, fg.alertsBase, fg.alertsChaos, fg.alertFingerprints, fg.alertDiffs, fg.alertDups,
		fg.ruleInputs, fg.ruleInputsWrong, chaos.kills, restored, discarded, base.droppedLate, chaos.droppedLate, base.expired, chaos.expired,
		fg.windows[base.name].expected, fg.windows[base.name].missing, fg.windows[chaos.name].missing,
		fg.windows[base.name].extra, fg.windows[chaos.name].extra, fg.windows[base.name].wrongCount, fg.windows[chaos.name].wrongCount,
		base.took.Round(100*time.Millisecond), chaos.took.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
	t.Logf("chaos: committed offsets at each kill: %s", strings.Join(chaos.committedAtKill, "; "))

	if len(diffs) > 0 {
		firstDiff := e.reportDiffs(diffs)
		t.Errorf("%d of %d values differ between the baseline and the chaos run: %d missing in the chaos run, %d only in it, %d changed; first: %s [%s]",
			len(diffs), fg.values, fg.missing, fg.extra, fg.changed, firstDiff, e.in.where(firstDiff.key.Series, firstDiff.key.Time))
	}
	for _, r := range []*detRun{base, chaos} {
		w := fg.windows[r.name]
		if w.missing > 0 || w.extra > 0 || w.wrongCount > 0 {
			t.Errorf("%s: of %d rollup windows the input falls in, %d have no rollup row (%d series-fields none at all), %d rows are for windows without points, %d have the wrong _count; e.g. %s",
				r.name, w.expected, w.missing, w.seriesWithout, w.extra, w.wrongCount, strings.Join(w.examples, "; "))
		}
		if r.droppedLate != 0 {
			t.Errorf("%s: the consumers dropped %g points as late (metricpipe_consumer_points_dropped_late_total), want 0: each series has its own event time", r.name, r.droppedLate)
		}
	}
	if fg.ruleInputsWrong > 0 {
		t.Errorf("%d of %d sma/ema rule events saw another value than the _sma/_ema the consumer wrote for the point: %s",
			fg.ruleInputsWrong, fg.ruleInputs, strings.Join(first(wrongInputs, 5), "; "))
	}
}

// checkWindows compares the rollup rows of measurement m in dump d with
// the windows the input's points fall in: one row per series, field and
// window, at the window's start, with _count its points.
func (e *detEnv) checkWindows(m string, d map[testbed.FieldKey]any, w *detWindowFigures) {
	type seriesField struct{ series, field string }
	got := map[seriesField]map[int64]any{}
	for k, v := range d {
		if f, ok := strings.CutSuffix(k.Field, "_count"); ok {
			sf := seriesField{k.Series, f}
			if got[sf] == nil {
				got[sf] = map[int64]any{}
			}
			got[sf][k.Time] = v
		}
	}
	example := func(format string, args ...any) {
		if len(w.examples) < 5 {
			w.examples = append(w.examples, fmt.Sprintf(format, args...))
		}
	}
	for _, s := range e.in.series {
		if s.src.measurement != m {
			continue
		}
		want := s.windows()
		for _, f := range []string{"load", "temp"} {
			rows := got[seriesField{s.key, f}]
			if len(rows) == 0 {
				w.seriesWithout++
			}
			for start, n := range want {
				w.expected++
				v, ok := rows[start]
				switch {
				case !ok:
					w.missing++
					example("%s %s: no rollup of the window at %s (%d points)", s.key, f, time.Unix(0, start).UTC().Format(time.RFC3339), n)
				case !sameValue(v, float64(n)):
					w.wrongCount++
					example("%s %s: window at %s: _count %v, want %d", s.key, f, time.Unix(0, start).UTC().Format(time.RFC3339), v, n)
				}
			}
			for start := range rows {
				if _, ok := want[start]; !ok {
					w.extra++
					example("%s %s: a rollup at %s, where no point falls", s.key, f, time.Unix(0, start).UTC().Format(time.RFC3339))
				}
			}
		}
	}
}

// reportDiffs logs the differences by kind, by series and the first
// ones, with where each point was on the topic (partition@offset), to line
// them up with the services' logs. It returns the first difference of a
// point (of an alert when no point differs).
func (e *detEnv) reportDiffs(diffs []detDiff) detDiff {
	t := e.t
	slices.SortFunc(diffs, func(a, b detDiff) int {
		return cmpKeys(a.key, b.key)
	})
	type agg struct {
		n, missing, extra int
		first             detDiff
	}
	byKind, bySeries := map[string]*agg{}, map[string]*agg{}
	add := func(m map[string]*agg, k string, d detDiff) {
		a := m[k]
		if a == nil {
			a = &agg{first: d}
			m[k] = a
		}
		a.n++
		if d.chaos == nil {
			a.missing++
		}
		if d.base == nil {
			a.extra++
		}
		if d.key.Time < a.first.key.Time {
			a.first = d
		}
	}
	var points []detDiff // of the input's measurements: alerts are reported by fingerprint
	for _, d := range diffs {
		add(byKind, d.kind(), d)
		if _, ok := e.in.bySeries[d.key.Series]; ok {
			add(bySeries, d.key.Series, d)
			points = append(points, d)
		}
	}
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(byKind)) {
		a := byKind[k]
		lines = append(lines, fmt.Sprintf("  %-28s %7d (missing %d, extra %d); earliest: %s [%s]", k, a.n, a.missing, a.extra, a.first, e.in.where(a.first.key.Series, a.first.key.Time)))
	}
	t.Logf("differences by kind:\n%s", strings.Join(lines, "\n"))
	lines = lines[:0]
	for _, k := range slices.Sorted(maps.Keys(bySeries)) {
		a := bySeries[k]
		lines = append(lines, fmt.Sprintf("  %-32s %7d; earliest: %s %s [%s]", k, a.n, a.first.key.Field,
			time.Unix(0, a.first.key.Time).UTC().Format(time.RFC3339), e.in.where(k, a.first.key.Time)))
	}
	t.Logf("differences by series:\n%s", strings.Join(lines, "\n"))
	lines = lines[:0]
	for _, d := range firstN(points, 20) {
		lines = append(lines, fmt.Sprintf("  %s [%s]", d, e.in.where(d.key.Series, d.key.Time)))
	}
	t.Logf("first differences of points (%d of them, %d in all):\n%s", len(points), len(diffs), strings.Join(lines, "\n"))
	if len(points) > 0 {
		return points[0]
	}
	return diffs[0]
}

func cmpKeys(a, b testbed.FieldKey) int {
	if c := strings.Compare(a.Series, b.Series); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Time, b.Time); c != 0 {
		return c
	}
	return strings.Compare(a.Field, b.Field)
}

func firstN[T any](s []T, n int) []T { return s[:min(n, len(s))] }

// detAlert is what is compared of an alert event.
type detAlert struct {
	state     alert.State
	eventTime int64
	value     float64
	startsAt  int64
	// Not compared: to look the rule's input up.
	rule, series string
}

func (a detAlert) same(b detAlert) bool {
	return a.state == b.state && a.eventTime == b.eventTime && math.Float64bits(a.value) == math.Float64bits(b.value) && a.startsAt == b.startsAt
}

func (a detAlert) String() string {
	return fmt.Sprintf("%s at %s value %.17g starts %s", a.state, time.Unix(0, a.eventTime).UTC().Format(time.RFC3339),
		a.value, time.Unix(0, a.startsAt).UTC().Format(time.RFC3339))
}

// alertSequences reads the run's alert topic from the start and returns
// each fingerprint's events in the order published (one fingerprint is one
// partition: they are keyed by it). A partition restarted after a kill -9
// publishes again the events of the messages it handles again (at least
// once): exact duplicates of an earlier event are removed and counted.
func (r *detRun) alertSequences(ctx context.Context) (map[string][]detAlert, int) {
	r.t.Helper()
	ends, err := r.e.admin.PartitionEnds(ctx, r.alertTopic)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	seqs := map[string][]detAlert{}
	dups := 0
	for p, end := range ends {
		if end == 0 {
			continue
		}
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{r.e.brokers}, Topic: r.alertTopic, Partition: p, MaxWait: 500 * time.Millisecond})
		for {
			m, err := rd.ReadMessage(ctx)
			if err != nil {
				rd.Close()
				r.t.Fatalf("%s: read partition %d of the alert topic up to %d: %v", r.name, p, end, err)
			}
			ev, err := alert.Decode(m.Value)
			if err != nil {
				rd.Close()
				r.t.Fatalf("%s: alert event at %d/%d: %v", r.name, p, m.Offset, err)
			}
			a := detAlert{state: ev.State, eventTime: ev.EventTime.UnixNano(), value: ev.Value, startsAt: ev.StartsAt.UnixNano(), rule: ev.Rule, series: ev.Series}
			if slices.ContainsFunc(seqs[ev.Fingerprint], a.same) {
				dups++
			} else {
				seqs[ev.Fingerprint] = append(seqs[ev.Fingerprint], a)
			}
			if m.Offset >= end-1 {
				break
			}
		}
		rd.Close()
	}
	return seqs, dups
}

// compareAlerts compares the two runs' sequences, fingerprint by
// fingerprint; it fails the test when they differ, or when a rule never
// fired and resolved in the baseline (the input would not test it).
func (fg *detFigures) compareAlerts(t interface {
	Logf(string, ...any)
	Errorf(string, ...any)
}, base, chaos map[string][]detAlert) {
	all := map[string]bool{}
	fired := map[string][2]int{}
	for fp, seq := range base {
		all[fp] = true
		fg.alertsBase += len(seq)
		for _, a := range seq {
			n := fired[a.rule]
			if a.state == alert.Firing {
				n[0]++
			} else {
				n[1]++
			}
			fired[a.rule] = n
		}
	}
	for fp, seq := range chaos {
		all[fp] = true
		fg.alertsChaos += len(seq)
	}
	fg.alertFingerprints = len(all)
	var lines []string
	for _, fp := range slices.Sorted(maps.Keys(all)) {
		b, c := base[fp], chaos[fp]
		i := 0
		for i < len(b) && i < len(c) && b[i].same(c[i]) {
			i++
		}
		if i == len(b) && i == len(c) {
			continue
		}
		fg.alertDiffs++
		show := func(s []detAlert) string {
			if i < len(s) {
				return s[i].String()
			}
			return "none"
		}
		var rule, series string
		if len(b) > 0 {
			rule, series = b[0].rule, b[0].series
		} else {
			rule, series = c[0].rule, c[0].series
		}
		lines = append(lines, fmt.Sprintf("  %s %s (%s): %d events in the baseline, %d in the chaos run; event %d: baseline %s, chaos %s",
			rule, series, fp, len(b), len(c), i+1, show(b), show(c)))
	}
	if fg.alertDiffs > 0 {
		t.Logf("alerts that differ (first %d of %d):\n%s", min(20, len(lines)), len(lines), strings.Join(first(lines, 20), "\n"))
		t.Errorf("%d of %d alerts have another sequence of events in the chaos run than in the baseline", fg.alertDiffs, fg.alertFingerprints)
	}
	for _, rule := range []string{"det_anomaly", "det_load_sma_high", "det_load_ema_low"} {
		if n := fired[rule]; n[0] == 0 || n[1] == 0 {
			t.Errorf("rule %s fired %d times and resolved %d times in the baseline: the input must make it do both", rule, n[0], n[1])
		}
	}
}
