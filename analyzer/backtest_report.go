package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/nab"
	"github.com/metricpipe/metricpipe/shared/rules"
)

// labelWindow is an anomaly window of a labelled series, both ends
// included, as NAB's.
type labelWindow struct{ Start, End time.Time }

func (w labelWindow) holds(t time.Time) bool { return !t.Before(w.Start) && !t.After(w.End) }

// loadBacktestLabels reads a windows file: a JSON object mapping series
// keys to [start, end] pairs of RFC 3339 or NAB times (UTC). Windows are
// sorted; overlapping ones are an error.
func loadBacktestLabels(path string) (map[string][]labelWindow, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --labels: %w", err)
	}
	var raw map[string][][]string
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("--labels %s: %w", path, err)
	}
	if raw == nil {
		return nil, fmt.Errorf(`--labels %s: want a JSON object {"<series key>": [[start, end], ...], ...}`, path)
	}
	out := make(map[string][]labelWindow, len(raw))
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(raw)) {
		wins := make([]labelWindow, 0, len(raw[key]))
		for j, pair := range raw[key] {
			if len(pair) != 2 {
				errs = append(errs, fmt.Errorf("--labels %s: %s window %d: want [start, end], got %d times", path, key, j, len(pair)))
				continue
			}
			var w [2]time.Time
			for k, s := range pair {
				t, err := parseBacktestTime("window", s, time.Time{})
				if err != nil || s != "" && t.IsZero() {
					errs = append(errs, fmt.Errorf("--labels %s: %s window %d: %q: want an RFC 3339 or NAB time", path, key, j, s))
				}
				w[k] = t
			}
			if w[1].Before(w[0]) {
				errs = append(errs, fmt.Errorf("--labels %s: %s window %d: ends before it starts", path, key, j))
			}
			wins = append(wins, labelWindow{Start: w[0], End: w[1]})
		}
		slices.SortFunc(wins, func(a, b labelWindow) int { return a.Start.Compare(b.Start) })
		for j := 1; j < len(wins); j++ {
			if !wins[j].Start.After(wins[j-1].End) {
				errs = append(errs, fmt.Errorf("--labels %s: %s: windows starting %s and %s overlap", path, key,
					wins[j-1].Start.Format(time.RFC3339), wins[j].Start.Format(time.RFC3339)))
			}
		}
		out[key] = wins
	}
	return out, errors.Join(errs...)
}

// ruleCount is one rule's events.
type ruleCount struct {
	Rule     string `json:"rule"`
	Firing   int    `json:"firing"`
	Resolved int    `json:"resolved"`
}

// partitionSummary is what was read of one partition.
type partitionSummary struct {
	Partition   int   `json:"partition"`
	Start       int64 `json:"start_offset"`
	End         int64 `json:"end_offset"` // excluded
	Messages    int64 `json:"messages"`
	Points      int64 `json:"points"`
	Undecodable int64 `json:"undecodable"`
}

// labelScore is how the firing events match the labelled windows.
type labelScore struct {
	Series  int `json:"series"`  // labelled series with points in the span
	Windows int `json:"windows"` // their windows holding a point of the span
	// TP counts windows holding a firing event, FP firing events outside
	// every window, Repeats firing events in a window already counted.
	TP      int `json:"tp"`
	FP      int `json:"fp"`
	Repeats int `json:"repeats"`
	// Unlabelled counts firing events of series the labels do not list,
	// which count nowhere.
	Unlabelled int      `json:"unlabelled"`
	Precision  *float64 `json:"precision"` // TP/(TP+FP); null without firing events
	Recall     *float64 `json:"recall"`    // TP/Windows; null without windows
	NAB        []nabRow `json:"nab"`
}

// nabRow is the NAB score of the anomaly rules' firing events under one
// profile.
type nabRow struct {
	Profile string   `json:"profile"`
	Score   *float64 `json:"score"` // normalized; null when no window is scored
	TP      int      `json:"tp"`    // windows detected
	FP      int      `json:"fp"`    // false-positive rows
	FN      int      `json:"fn"`    // windows missed
}

// backtestReport is the summary printed after the events.
type backtestReport struct {
	Topic       string             `json:"topic"`
	From        time.Time          `json:"from"`
	To          *time.Time         `json:"to,omitempty"`
	Partitions  []partitionSummary `json:"partitions"`
	Messages    int64              `json:"messages"`
	Points      int64              `json:"points"`
	Undecodable int64              `json:"undecodable"`
	Firing      int                `json:"firing"`
	Resolved    int                `json:"resolved"`
	Rules       []ruleCount        `json:"rules"`
	Written     bool               `json:"written"`
	Labels      *labelScore        `json:"labels,omitempty"`

	events []alert.Event
}

// newBacktestReport sums up the partitions' runs; set is the rule set, whose
// every rule gets a count, labels the windows of --labels (nil without).
func newBacktestReport(cfg backtestConfig, set *rules.Set, runs []partitionRun, labels map[string][]labelWindow) (*backtestReport, error) {
	r := &backtestReport{Topic: cfg.Topic, From: cfg.From.UTC(), Written: cfg.Write}
	if !cfg.To.IsZero() {
		to := cfg.To.UTC()
		r.To = &to
	}
	seen := map[string]*nab.Series{}
	for _, run := range runs {
		r.Partitions = append(r.Partitions, partitionSummary{Partition: run.Span.Partition, Start: run.Span.Start, End: run.Span.End,
			Messages: run.Messages, Points: run.Points, Undecodable: run.Undecodable})
		r.Messages += run.Messages
		r.Points += run.Points
		r.Undecodable += run.Undecodable
		r.events = append(r.events, run.Events...)
		maps.Copy(seen, run.Seen)
	}
	sortEvents(r.events)
	r.Rules, r.Firing, r.Resolved = countRules(set, r.events)
	if labels != nil {
		kinds := map[string]rules.Kind{}
		for _, rl := range set.Rules {
			kinds[rl.Name] = rl.Kind
		}
		ls, err := scoreLabels(r.events, seen, labels, func(rule string) bool { return kinds[rule] == rules.Anomaly })
		if err != nil {
			return nil, err
		}
		r.Labels = &ls
	}
	return r, nil
}

// countRules counts each rule's firing and resolved events, every rule of
// set first, in its order, then rules only events name.
func countRules(set *rules.Set, events []alert.Event) (counts []ruleCount, firing, resolved int) {
	index := map[string]int{}
	for _, rl := range set.Rules {
		if _, ok := index[rl.Name]; !ok {
			index[rl.Name] = len(counts)
			counts = append(counts, ruleCount{Rule: rl.Name})
		}
	}
	for _, e := range events {
		i, ok := index[e.Rule]
		if !ok {
			i = len(counts)
			index[e.Rule] = i
			counts = append(counts, ruleCount{Rule: e.Rule})
		}
		switch e.State {
		case alert.Firing:
			counts[i].Firing++
			firing++
		case alert.Resolved:
			counts[i].Resolved++
			resolved++
		}
	}
	return counts, firing, resolved
}

// detections returns the firing events once each: a re-announcement
// (--repeat-interval) has the fingerprint and StartsAt of one before it.
func detections(events []alert.Event) []alert.Event {
	type key struct {
		fp     string
		starts time.Time
	}
	seen := map[key]bool{}
	var out []alert.Event
	for _, e := range events {
		k := key{e.Fingerprint, e.StartsAt}
		if e.State != alert.Firing || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out
}

// scoreLabels matches the firing events (sorted by event time) against the
// windows of the series labels lists, and computes the NAB scores of the
// events of the rules anomaly reports true for. seen holds the points of
// each labelled series backtest analyzed: the rows of its NAB series, and
// the only windows counted are those holding one of them.
func scoreLabels(events []alert.Event, seen map[string]*nab.Series, labels map[string][]labelWindow, anomaly func(rule string) bool) (labelScore, error) {
	var ls labelScore
	corpus := &nab.Corpus{Windows: map[string][]nab.Window{}}
	scores := map[string][]float64{}
	counted := map[string][]labelWindow{} // the windows holding a point, by series
	for _, key := range slices.Sorted(maps.Keys(seen)) {
		s := seen[key]
		ls.Series++
		var rows []nab.Window
		for _, w := range labels[key] {
			lo, _ := slices.BinarySearchFunc(s.Times, w.Start, time.Time.Compare)
			hi, found := slices.BinarySearchFunc(s.Times, w.End, time.Time.Compare)
			if found {
				hi++
			}
			if lo >= hi { // no point of the span in it
				continue
			}
			rows = append(rows, nab.Window{Start: lo, End: hi - 1})
			counted[key] = append(counted[key], w)
		}
		ls.Windows += len(rows)
		corpus.Series = append(corpus.Series, *s)
		corpus.Windows[key] = rows
		scores[key] = make([]float64, len(s.Times))
	}
	detected := map[string][]bool{}
	for k, wins := range counted {
		detected[k] = make([]bool, len(wins))
	}
	for _, e := range detections(events) {
		if _, listed := labels[e.Series]; !listed {
			ls.Unlabelled++
			continue
		}
		hit := slices.IndexFunc(counted[e.Series], func(w labelWindow) bool { return w.holds(e.EventTime) })
		switch {
		case hit < 0:
			ls.FP++
		case detected[e.Series][hit]:
			ls.Repeats++
		default:
			detected[e.Series][hit] = true
			ls.TP++
		}
		if sc, ok := scores[e.Series]; ok && anomaly(e.Rule) {
			// The row of the point that made the event: the first at or
			// after its event time.
			if i, _ := slices.BinarySearchFunc(seen[e.Series].Times, e.EventTime, time.Time.Compare); i < len(sc) {
				sc[i] = 1
			}
		}
	}
	ls.Precision = ratio(ls.TP, ls.TP+ls.FP)
	ls.Recall = ratio(ls.TP, ls.Windows)
	if len(corpus.Series) == 0 {
		return ls, nil
	}
	for _, p := range nab.Profiles() {
		res, err := nab.Score(corpus, scores, p, 0.5)
		if err != nil {
			return ls, fmt.Errorf("NAB score of the labelled series: %w", err)
		}
		row := nabRow{Profile: p.Name, TP: res.TP, FP: res.FP, FN: res.FN}
		if !math.IsNaN(res.Normalized) {
			row.Score = &res.Normalized
		}
		ls.NAB = append(ls.NAB, row)
	}
	return ls, nil
}

// ratio is n/d, nil when d is 0.
func ratio(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	v := float64(n) / float64(d)
	return &v
}

// writeJSON prints every event as the alert topic carries it (the JSON the
// analyzer publishes), one per line, then {"summary": r}.
func (r *backtestReport) writeJSON(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw) // json.Marshal's bytes, as published, and a newline
	for i := range r.events {
		if err := enc.Encode(&r.events[i]); err != nil {
			return fmt.Errorf("encode alert %s: %w", r.events[i].Fingerprint, err)
		}
	}
	if err := enc.Encode(struct {
		Summary *backtestReport `json:"summary"`
	}{r}); err != nil {
		return err
	}
	return bw.Flush()
}

// writeText prints the events as a table, then the per-rule counts and
// what was read, then the label scores.
func (r *backtestReport) writeText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	if len(r.events) > 0 {
		fmt.Fprintln(tw, "TIME\tRULE\tSEVERITY\tSTATE\tSERIES\tVALUE\tEXPECTED")
		for _, e := range r.events {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.EventTime.UTC().Format(time.RFC3339Nano), e.Rule, e.Severity, e.State,
				tailPrintable(e.Series), fmtNum(&e.Value), fmtNum(e.Expected))
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintln(tw, "RULE\tFIRING\tRESOLVED")
	for _, c := range r.Rules {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", c.Rule, c.Firing, c.Resolved)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	to := "the end"
	if r.To != nil {
		to = r.To.Format(time.RFC3339Nano)
	}
	fmt.Fprintf(bw, "\n%s from %s to %s: %d messages (%d undecodable), %d points in %d partitions; %d firing, %d resolved",
		r.Topic, r.From.Format(time.RFC3339Nano), to, r.Messages, r.Undecodable, r.Points, len(r.Partitions), r.Firing, r.Resolved)
	if r.Written {
		fmt.Fprint(bw, " (published and written)")
	}
	fmt.Fprintln(bw)
	if l := r.Labels; l != nil {
		fmt.Fprintf(bw, "labels: %d series, %d windows in the span: %d detected, %d false alerts, %d more in detected windows, %d on unlabelled series; precision %s, recall %s\n",
			l.Series, l.Windows, l.TP, l.FP, l.Repeats, l.Unlabelled, fmtNum(l.Precision), fmtNum(l.Recall))
		for _, n := range l.NAB {
			fmt.Fprintf(bw, "NAB %s: %s (TP %d, FP %d, FN %d)\n", n.Profile, fmtNum(n.Score), n.TP, n.FP, n.FN)
		}
	}
	return bw.Flush()
}

// fmtNum prints a number shortly, "-" when there is none.
func fmtNum(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'g', 6, 64)
}
