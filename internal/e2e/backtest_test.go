package e2e

import (
	"cmp"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/alert"
)

// TestBacktestMatchesLiveAnalyzer: `analyzer backtest` over a span of the
// raw topic raises the alerts the live analyzer raised over it, alert for
// alert.
//
// The synthetic producer runs three times (A, B, C), paced so that event
// time keeps up with the clock, with a pause before and after each run in
// which t1 (before B) and t2 (after B) are taken; the same series go on
// across the runs. Then:
//   - a live analyzer reads the whole topic, and backtest over [before A,
//     end) must print exactly its events;
//   - a second live analyzer group starts at the offsets B starts at
//     (committed before it starts), so its detectors start cold at t1 as
//     backtest's do: backtest over [t1, t2) must print exactly its events
//     made by B's points, those whose event time is before t2 (C's points
//     all come later), and read exactly B's offsets. This is the rule for
//     a sub-span: backtest equals a live analyzer started at --from, not
//     one that was already warm there;
//   - as a control, backtest over the whole span with another --warm-up
//     must differ from the live events.
func TestBacktestMatchesLiveAnalyzer(t *testing.T) {
	const (
		series = 20
		perRun = 8000 // 400 points a series
		rate   = "2000"
		gap    = 500 * time.Millisecond // > the 100 ms a burst of points runs ahead of the clock
	)
	b := newBed(t, "backtest")
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.yaml")
	writeFile(t, rulesFile, `rules:
  - name: synthetic_anomaly
    match: {measurement: synthetic}
    anomaly: {z: 8}
    keep_firing_for: 500ms
    severity: warning
`)
	ctx := t.Context()
	pause := func() {
		t.Helper()
		since := time.Now()
		testbed.Eventually(t, 5*time.Second, "a pause between producer runs", func() (bool, string) {
			return time.Since(since) >= gap, ""
		})
	}
	produce := func() map[int]int64 {
		t.Helper()
		p := b.produce(perRun, "--series", fmt.Sprint(series), "--rate", rate, "--anomaly-rate", "0.003", "--seed", "5")
		if err := p.Wait(2 * time.Minute); err != nil {
			t.Fatalf("producer: %v\n%s", err, p.Output())
		}
		ends, err := b.admin.PartitionEnds(ctx, b.topic)
		if err != nil {
			t.Fatal(err)
		}
		return ends
	}
	t0 := time.Now().Add(-time.Second)
	endA := produce()
	pause()
	t1 := time.Now()
	pause()
	endB := produce()
	pause()
	t2 := time.Now()
	pause()
	produce()

	// The live analyzer over everything.
	settings := []string{"--warm-up", "30"}
	a := b.analyzer("a", rulesFile, testbed.FreeAddr(t), settings...)
	b.waitCommitted(b.topic+"-a", 3*time.Minute)
	stopGracefully(t, a)
	live := b.alertEventsOn(b.topic + "-alerts")

	// The live analyzer from B's first offsets.
	groupB := b.topic + "-b"
	commits := map[string][]kafka.OffsetCommit{}
	for p, off := range endA {
		commits[b.topic] = append(commits[b.topic], kafka.OffsetCommit{Partition: p, Offset: off})
	}
	client := &kafka.Client{Addr: kafka.TCP(b.brokers)}
	res, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: groupB, GenerationID: -1, Topics: commits})
	if err != nil {
		t.Fatalf("commit group %s at the start of run B: %v", groupB, err)
	}
	for _, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				t.Fatalf("commit group %s partition %d: %v", groupB, p.Partition, p.Error)
			}
		}
	}
	lb := b.analyzer("b", rulesFile, testbed.FreeAddr(t), append(settings, "--alert-topic", b.topic+"-alerts-b")...)
	b.waitCommitted(groupB, 3*time.Minute)
	stopGracefully(t, lb)
	var liveB []alert.Event
	for _, e := range b.alertEventsOn(b.topic + "-alerts-b") {
		if e.EventTime.Before(t2) {
			liveB = append(liveB, e)
		}
	}

	full, _ := b.backtest(rulesFile, t0, time.Time{}, settings...)
	t.Logf("whole span: live analyzer %d events (%d firing), backtest %d", len(live), firingCount(live), len(full))
	if firingCount(live) < 10 {
		t.Fatalf("the live analyzer fired %d times: too few to compare", firingCount(live))
	}
	requireSameEvents(t, "whole span", live, full)

	sub, summary := b.backtest(rulesFile, t1, t2, settings...)
	t.Logf("[t1, t2): live analyzer from t1 %d events before t2 (%d firing), backtest %d", len(liveB), firingCount(liveB), len(sub))
	if firingCount(liveB) < 3 {
		t.Fatalf("the live analyzer from t1 fired %d times before t2: too few to compare", firingCount(liveB))
	}
	requireSameEvents(t, "[t1, t2)", liveB, sub)
	for _, p := range summary.Partitions {
		if p.Start != endA[p.Partition] || p.End != endB[p.Partition] {
			t.Errorf("[t1, t2) read partition %d offsets [%d, %d), want run B's [%d, %d)", p.Partition, p.Start, p.End, endA[p.Partition], endB[p.Partition])
		}
	}

	// Control: other settings, other alerts.
	other, _ := b.backtest(rulesFile, t0, time.Time{}, "--warm-up", "300")
	if diff := eventsDiff(live, other); diff == "" {
		t.Errorf("backtest with --warm-up 300 printed the live analyzer's %d events: the comparison cannot tell settings apart", len(live))
	} else {
		t.Logf("control, --warm-up 300: %d events, %d firing; differs from live as expected: %s", len(other), firingCount(other), diff)
	}
}

// backtestSummary is the part of backtest's summary the test reads.
type backtestSummary struct {
	Messages, Points int64
	Partitions       []struct {
		Partition  int
		Start, End int64
	}
}

// backtest runs `analyzer backtest --json` over [from, to) (to zero: to
// the end) and returns its events and summary.
func (b *bed) backtest(rulesFile string, from, to time.Time, extra ...string) ([]alert.Event, backtestSummary) {
	b.t.Helper()
	args := []string{"backtest", "--kafka-brokers", b.brokers, "--topic", b.topic, "--rules", rulesFile, "--json",
		"--from", from.UTC().Format(time.RFC3339Nano)}
	if !to.IsZero() {
		args = append(args, "--to", to.UTC().Format(time.RFC3339Nano))
	}
	p := testbed.Start(b.t, "backtest", b.bins["analyzer"], append(args, extra...)...)
	if err := p.Wait(2 * time.Minute); err != nil {
		b.t.Fatalf("backtest: %v\n%s", err, p.Output())
	}
	var events []alert.Event
	var summary struct {
		Summary *struct {
			Messages   int64 `json:"messages"`
			Points     int64 `json:"points"`
			Partitions []struct {
				Partition int   `json:"partition"`
				Start     int64 `json:"start_offset"`
				End       int64 `json:"end_offset"`
			} `json:"partitions"`
		} `json:"summary"`
	}
	for _, line := range strings.Split(p.Output(), "\n") {
		switch {
		case strings.HasPrefix(line, `{"summary"`):
			if err := json.Unmarshal([]byte(line), &summary); err != nil {
				b.t.Fatalf("backtest summary %q: %v", line, err)
			}
		case strings.HasPrefix(line, "{"):
			e, err := alert.Decode([]byte(line))
			if err != nil {
				b.t.Fatalf("backtest printed %q: %v", line, err)
			}
			events = append(events, e)
		}
	}
	if summary.Summary == nil {
		b.t.Fatalf("backtest printed no summary:\n%s", p.Output())
	}
	s := backtestSummary{Messages: summary.Summary.Messages, Points: summary.Summary.Points}
	for _, p := range summary.Summary.Partitions {
		s.Partitions = append(s.Partitions, struct {
			Partition  int
			Start, End int64
		}{p.Partition, p.Start, p.End})
	}
	b.t.Logf("backtest %s: %d messages, %d points, %d events", strings.Join(args[len(args)-2:], " "), s.Messages, s.Points, len(events))
	return events, s
}

// alertEventsOn reads every event on topic with `analyzer alerts tail
// --json`, which prints each distinct event once.
func (b *bed) alertEventsOn(topic string) []alert.Event {
	b.t.Helper()
	return tailEvents(b, alert.Decode, "--alert-topic", topic)
}

// tailEvents runs `analyzer alerts tail --json` from the beginning to the
// end of a topic with the extra arguments and decodes what it printed.
func tailEvents[E any](b *bed, decode func([]byte) (E, error), extra ...string) []E {
	b.t.Helper()
	args := append([]string{"alerts", "tail", "--kafka-brokers", b.brokers, "--from", "beginning", "--follow=false", "--json"}, extra...)
	tail := testbed.Start(b.t, "alerts-tail", b.bins["analyzer"], args...)
	if err := tail.Wait(time.Minute); err != nil {
		b.t.Fatalf("alerts tail %v: %v\n%s", extra, err, tail.Output())
	}
	var events []E
	for _, line := range strings.Split(tail.Output(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		e, err := decode([]byte(line))
		if err != nil {
			b.t.Fatalf("alerts tail %v printed %q: %v", extra, line, err)
		}
		events = append(events, e)
	}
	return events
}

func firingCount(events []alert.Event) int {
	n := 0
	for _, e := range events {
		if e.State == alert.Firing {
			n++
		}
	}
	return n
}

// eventKey is what must match alert for alert.
func eventKey(e alert.Event) string {
	return fmt.Sprintf("%s %s %s starts %s at %s value %v", e.Rule, e.Fingerprint, e.State,
		e.StartsAt.Format(time.RFC3339Nano), e.EventTime.Format(time.RFC3339Nano), e.Value)
}

// eventsDiff describes how two event lists differ as sets of eventKey
// ("" when they are equal), the first few differences spelt out.
func eventsDiff(want, got []alert.Event) string {
	keys := func(evs []alert.Event) []string {
		out := make([]string, len(evs))
		for i, e := range evs {
			out[i] = eventKey(e)
		}
		slices.SortFunc(out, cmp.Compare)
		return out
	}
	w, g := keys(want), keys(got)
	if slices.Equal(w, g) {
		return ""
	}
	var missing, extra []string
	i, j := 0, 0
	for i < len(w) || j < len(g) {
		switch {
		case j == len(g) || i < len(w) && w[i] < g[j]:
			missing = append(missing, w[i])
			i++
		case i == len(w) || g[j] < w[i]:
			extra = append(extra, g[j])
			j++
		default:
			i++
			j++
		}
	}
	return fmt.Sprintf("%d events (want %d): %d missing %q, %d extra %q", len(g), len(w),
		len(missing), missing[:min(3, len(missing))], len(extra), extra[:min(3, len(extra))])
}

func requireSameEvents(t *testing.T, span string, live, backtest []alert.Event) {
	t.Helper()
	if diff := eventsDiff(live, backtest); diff != "" {
		t.Errorf("%s: backtest differs from the live analyzer: %s", span, diff)
	}
}
