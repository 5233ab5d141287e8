package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/anomaly"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/rules"
	"github.com/metricpipe/metricpipe/shared/service"
)

// rulesCommand returns `analyzer rules`, the operator's tools for rule files.
func rulesCommand() *cli.Command {
	return &cli.Command{
		Name:        "rules",
		Usage:       "work with alert rule files",
		Subcommands: []*cli.Command{rulesTestCommand()},
	}
}

func rulesTestCommand() *cli.Command {
	return &cli.Command{
		Name:      "test",
		Usage:     "unit-test alert rules: feed series written in each test file through the analyzer and compare the alert events with the expected ones",
		ArgsUsage: "FILE...",
		Description: "Each test file names a rule file (rule_file, relative to the test file), optional analyzer settings\n" +
			"(settings: the flags " + strings.Join(rulesTestSettings(), ", ") + "; default the analyzer's defaults)\n" +
			"and cases (tests): input series in promtool's values notation (1+1x10, 5x3, _), the absence checks to run\n" +
			"(absent_at: offsets; in a test, wall time is event time) and the expected alert events. Every case runs\n" +
			"through the analyzer's own engine from a fresh state; every expected event must happen at its time and no\n" +
			"other may. Each mismatch is printed with file:line; the exit status is non-zero if any case failed.\n" +
			"Format: see the README's alert rules section and deploy/rules.test.yaml.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print every case and the alert events it produced, as expectations to paste", EnvVars: service.EnvVars("verbose")},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return errors.New("rules test: want one or more test files")
			}
			return runRulesTests(c.App.Writer, c.Args().Slice(), c.Bool("verbose"))
		},
	}
}

// rulesTestSettings are the analyzer flags a test file's settings may set:
// those that change which alert events a series raises.
func rulesTestSettings() []string {
	return []string{"model", "season", "ar-order", "warm-up", "sma-window", "ema-alpha", "ema-span", "repeat-interval", "series-idle-timeout"}
}

// runRulesTests runs the cases of every file, printing each mismatch (and
// with verbose, each case and its events) and a summary line to w. The
// error says how many cases failed or files could not run.
func runRulesTests(w io.Writer, files []string, verbose bool) error {
	var cases, failed, broken int
	for _, path := range files {
		n, f, err := runRulesTestFile(w, path, verbose)
		cases, failed = cases+n, failed+f
		if err != nil {
			broken++
			fmt.Fprintln(w, err)
		}
	}
	summary := fmt.Sprintf("%d cases, %d failed", cases, failed)
	if broken > 0 {
		summary += fmt.Sprintf(", %d of %d files not run", broken, len(files))
	}
	fmt.Fprintln(w, summary)
	if failed > 0 || broken > 0 {
		return errors.New("rule tests failed: " + summary)
	}
	return nil
}

// runRulesTestFile runs the cases of one file; the error is the file's
// own (it does not parse, its rules or settings are invalid).
func runRulesTestFile(w io.Writer, path string, verbose bool) (cases, failed int, err error) {
	f, err := loadTestFile(path)
	if err != nil {
		return 0, 0, err
	}
	a, err := analysisFromSettings(f)
	if err != nil {
		return 0, 0, err
	}
	params, err := anomaly.NewParams(a.Anomaly)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: settings: %w", path, err)
	}
	set, err := rules.Load(f.ruleFile)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: rule_file: %w", path, err)
	}
	book := &ruleBook{set: set, gen: 1}
	for _, c := range f.cases {
		got := runTestCase(a, params, book, f.start, c)
		fails := compareAlerts(f, c, set, got)
		cases++
		if len(fails) > 0 {
			failed++
		}
		if verbose {
			status := "ok  "
			if len(fails) > 0 {
				status = "FAIL"
			}
			fmt.Fprintf(w, "%s %s:%d: case %q: %d alert events\n", status, f.path, c.line, c.name, len(got))
			for i := range got {
				fmt.Fprintf(w, "      - %s\n", expectation(&got[i], f.start))
			}
		}
		for _, m := range fails {
			fmt.Fprintln(w, m)
		}
	}
	return cases, failed, nil
}

// analysisFromSettings builds the analysis of the analyzer run with the
// file's settings as flags: analysisFromCLI on the analyzer's own flags, so
// defaults and parsing are the service's. Environment variables are not
// read: a test means the same on every machine.
func analysisFromSettings(f *testFile) (*analysis, error) {
	app := newApp(io.Discard, io.Discard)
	set := flag.NewFlagSet("settings", flag.ContinueOnError)
	set.SetOutput(io.Discard)
	var errs []error
	want := map[string]string{} // what each flag takes, for messages
	for _, fl := range app.Flags {
		// A copy without its environment variables.
		var err error
		switch fl := fl.(type) {
		case *cli.IntFlag:
			c := *fl
			c.EnvVars, want[c.Name] = nil, "an integer"
			err = c.Apply(set)
		case *cli.Float64Flag:
			c := *fl
			c.EnvVars, want[c.Name] = nil, "a number"
			err = c.Apply(set)
		case *cli.StringFlag:
			c := *fl
			c.EnvVars, want[c.Name] = nil, "a string"
			err = c.Apply(set)
		case *cli.DurationFlag:
			c := *fl
			c.EnvVars, want[c.Name] = nil, "a duration such as 90s or 5m"
			err = c.Apply(set)
		case *cli.BoolFlag:
			c := *fl
			c.EnvVars, want[c.Name] = nil, "true or false"
			err = c.Apply(set)
		}
		errs = append(errs, err)
	}
	for _, s := range f.settings {
		if err := set.Set(s.name, s.value); err != nil {
			errs = append(errs, testFileError(f.path, s.line, "settings."+s.name, fmt.Sprintf("want %s, got %q", want[s.name], s.value)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	a, err := analysisFromCLI(cli.NewContext(app, set, nil))
	if err := errors.Join(err, a.Validate()); err != nil {
		return nil, testFileError(f.path, 0, "settings", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return &a, nil
}

// runTestCase feeds the case's points, in time order (the file's order
// at equal times), to a fresh engine as the analyzer does, each arriving
// at its own event time, and runs the absence checks at their offsets
// (after the points of the same time). It returns the alert events.
func runTestCase(a *analysis, params anomaly.Params, book *ruleBook, start time.Time, c *testCase) []alert.Event {
	var pts []point.Point
	for _, in := range c.inputs {
		for _, tp := range in.points {
			pts = append(pts, point.Point{Measurement: in.measurement, Tags: in.tags,
				Fields: []point.Field{{Key: in.field, Value: tp.value}}, Time: start.Add(tp.at).UnixNano()})
		}
	}
	slices.SortStableFunc(pts, func(a, b point.Point) int { return cmp.Compare(a.Time, b.Time) })
	e := newEngine(a, params, book)
	var res results
	var events []alert.Event
	absent := c.absentAt
	check := func(before int64) {
		for len(absent) > 0 && start.Add(absent[0]).UnixNano() < before {
			e.Expire(start.Add(absent[0]).UnixNano(), &res)
			absent = absent[1:]
		}
	}
	for i := range pts {
		check(pts[i].Time)
		e.Process(&pts[i], pts[i].Time, &res)
		events = append(events, res.events...)
		res.Reset()
	}
	check(math.MaxInt64)
	return append(events, res.events...)
}

// mismatch is one difference between the expected events and those that
// happened, at offset at.
type mismatch struct {
	at  time.Duration
	msg string
}

// compareAlerts pairs the case's expected events with those that happened
// and describes every difference, in time order: an event matches when
// its time, rule and state are the expected ones, its labels include the
// expected ones, and its value and forecast are within tolerance of the
// expected ones, when given. An expected event that is unmatched but has
// an unmatched event of its rule at its time is reported as that event
// being wrong (state, label, value); the rest as missing or unexpected.
func compareAlerts(f *testFile, c *testCase, set *rules.Set, got []alert.Event) []string {
	where := func(line int, at time.Duration) string {
		return fmt.Sprintf("%s:%d: case %q: at %s", f.path, line, c.name, at)
	}
	offset := func(ev *alert.Event) time.Duration { return ev.EventTime.Sub(f.start) }
	used := make([]bool, len(got))
	done := make([]bool, len(c.alerts))
	var ms []mismatch
	for i := range c.alerts {
		w := &c.alerts[i]
		if !slices.ContainsFunc(set.Rules, func(r *rules.Rule) bool { return r.Name == w.rule }) {
			done[i] = true
			ms = append(ms, mismatch{w.at, fmt.Sprintf("%s: %s: no such rule in %s", where(w.line, w.at), w.rule, f.ruleFile)})
			continue
		}
		for j := range got {
			if !used[j] && offset(&got[j]) == w.at && got[j].Rule == w.rule && len(w.diffs(&got[j])) == 0 {
				used[j], done[i] = true, true
				break
			}
		}
	}
	for i := range c.alerts {
		if done[i] {
			continue
		}
		w := &c.alerts[i]
		best, bestDiffs := -1, []string(nil)
		for j := range got {
			if used[j] || offset(&got[j]) != w.at || got[j].Rule != w.rule {
				continue
			}
			if d := w.diffs(&got[j]); best < 0 || len(d) < len(bestDiffs) {
				best, bestDiffs = j, d
			}
		}
		if best >= 0 {
			used[best] = true
			head := fmt.Sprintf("%s: %s %s", where(w.line, w.at), w.rule, w.state)
			if got[best].State != w.state {
				head = fmt.Sprintf("%s: %s", where(w.line, w.at), w.rule) // the state's diff comes first
			}
			ms = append(ms, mismatch{w.at, fmt.Sprintf("%s: %s (series %s)", head, strings.Join(bestDiffs, "; "), got[best].Series)})
			continue
		}
		var seen []string
		for j := range got {
			if got[j].Rule == w.rule {
				seen = append(seen, fmt.Sprintf("%s at %s", got[j].State, offset(&got[j])))
			}
		}
		context := fmt.Sprintf("no %s event in this case", w.rule)
		if len(seen) > 0 {
			context = fmt.Sprintf("%s events in this case: %s", w.rule, strings.Join(seen, ", "))
		}
		if i := slices.IndexFunc(set.Rules, func(r *rules.Rule) bool { return r.Name == w.rule }); set.Rules[i].Kind == rules.Absence &&
			w.state == alert.Firing && !slices.Contains(c.absentAt, w.at) {
			context += fmt.Sprintf("; absence is checked only at absent_at: add %s", w.at)
		}
		ms = append(ms, mismatch{w.at, fmt.Sprintf("%s: %s: want %s%s, got none (%s)", where(w.line, w.at), w.rule, w.state, fmtLabels(w.labels), context)})
	}
	for j := range got {
		if !used[j] {
			ev := &got[j]
			ms = append(ms, mismatch{offset(ev), fmt.Sprintf("%s: %s: unexpected %s (series %s, value %s)", where(c.line, offset(ev)), ev.Rule, ev.State, ev.Series, fmtFloat(ev.Value))})
		}
	}
	slices.SortStableFunc(ms, func(a, b mismatch) int { return cmp.Compare(a.at, b.at) })
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.msg
	}
	return out
}

// diffs lists how ev, an event of w's rule at w's time, differs from w.
func (w *wantAlert) diffs(ev *alert.Event) []string {
	var d []string
	if ev.State != w.state {
		d = append(d, fmt.Sprintf("want %s, got %s", w.state, ev.State))
	}
	for _, k := range slices.Sorted(maps.Keys(w.labels)) {
		if v, ok := ev.Labels[k]; !ok {
			d = append(d, fmt.Sprintf("label %s: want %q, got none", k, w.labels[k]))
		} else if v != w.labels[k] {
			d = append(d, fmt.Sprintf("label %s: want %q, got %q", k, w.labels[k], v))
		}
	}
	if w.value != nil && !w.near(*w.value, ev.Value) {
		d = append(d, fmt.Sprintf("value: want %s, got %s", w.fmtWant(*w.value), fmtFloat(ev.Value)))
	}
	if w.expected != nil {
		switch {
		case ev.Expected == nil:
			d = append(d, fmt.Sprintf("expected: want %s, got no forecast", w.fmtWant(*w.expected)))
		case !w.near(*w.expected, *ev.Expected):
			d = append(d, fmt.Sprintf("expected: want %s, got %s", w.fmtWant(*w.expected), fmtFloat(*ev.Expected)))
		}
	}
	return d
}

func (w *wantAlert) tol(want float64) float64 {
	if w.tolerance > 0 {
		return w.tolerance
	}
	return 1e-9 * max(1, math.Abs(want))
}

func (w *wantAlert) near(want, got float64) bool { return math.Abs(got-want) <= w.tol(want) }

func (w *wantAlert) fmtWant(v float64) string {
	return fmtFloat(v) + " ± " + strconv.FormatFloat(w.tol(v), 'g', 3, 64)
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func fmtLabels(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	parts := make([]string, 0, len(l))
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, l[k]))
	}
	return " {" + strings.Join(parts, ", ") + "}"
}

// expectation renders ev as an entry of a case's alerts list.
func expectation(ev *alert.Event, start time.Time) string {
	parts := make([]string, 0, len(ev.Labels))
	for _, k := range slices.Sorted(maps.Keys(ev.Labels)) {
		parts = append(parts, fmt.Sprintf("%s: %q", k, ev.Labels[k]))
	}
	s := fmt.Sprintf("{at: %s, rule: %s, state: %s, labels: {%s}, value: %s", ev.EventTime.Sub(start), ev.Rule, ev.State, strings.Join(parts, ", "), fmtFloat(ev.Value))
	if ev.Expected != nil {
		s += ", expected: " + fmtFloat(*ev.Expected)
	}
	return s + "}"
}
