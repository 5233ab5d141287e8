package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/internal/clitest"
	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/nab"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/rules"
)

func TestBacktestSpan(t *testing.T) {
	f := func(startAt, endAt, end int64, want tailSpan) {
		t.Helper()
		want.Partition = 2
		if got := backtestSpan(2, startAt, endAt, end); got != want {
			t.Errorf("backtestSpan(%d, %d, %d) = %+v, want %+v", startAt, endAt, end, got, want)
		}
	}
	f(3, -1, 10, tailSpan{Start: 3, End: 10})   // no --to: up to the end at the start
	f(3, 7, 10, tailSpan{Start: 3, End: 7})     // the first message at or after --to is excluded
	f(-1, -1, 10, tailSpan{Start: 10, End: 10}) // nothing at or after --from: empty
	f(3, -1, 3, tailSpan{Start: 3, End: 3})     // empty partition tail
	f(3, 3, 10, tailSpan{Start: 3, End: 3})     // from and to fall between the same two messages
	f(3, 12, 10, tailSpan{Start: 3, End: 10})   // written since the start: not read
	f(12, -1, 10, tailSpan{Start: 10, End: 10}) // likewise
	f(0, -1, 0, tailSpan{Start: 0, End: 0})     // empty partition
}

func TestParseBacktestTime(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f := func(in string, want time.Time, wantErr bool) {
		t.Helper()
		got, err := parseBacktestTime("--from", in, now)
		if (err != nil) != wantErr || !got.Equal(want) {
			t.Errorf("parseBacktestTime(%q) = %v, %v; want %v, error %v", in, got, err, want, wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "--from") {
			t.Errorf("error %q does not name the flag", err)
		}
	}
	f("2026-11-26T03:00:00Z", time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC), false)
	f("2026-11-26T03:00:00.5+01:00", time.Date(2026, 11, 26, 2, 0, 0, 5e8, time.UTC), false)
	f("2026-11-26 03:00:00", time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC), false)
	f("2014-04-10 07:15:00.000000", time.Date(2014, 4, 10, 7, 15, 0, 0, time.UTC), false) // NAB's windows
	f("2026-11-26", time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), false)
	f("6h", now.Add(-6*time.Hour), false)
	f("", time.Time{}, false)
	f("-6h", time.Time{}, true)
	f("yesterday", time.Time{}, true)
}

func TestBacktestFlagsAreTheAnalyzers(t *testing.T) {
	app := newApp(nil, nil)
	bt := app.Command("backtest")
	if bt == nil {
		t.Fatal("no backtest command")
	}
	have := map[string]bool{}
	for _, f := range bt.Flags {
		have[f.Names()[0]] = true
	}
	// Every flag that changes what the engine derives, and the ones
	// reading and writing need.
	for _, name := range []string{"model", "season", "ar-order", "warm-up", "sma-window", "ema-alpha", "ema-span", "repeat-interval",
		"max-series", "series-idle-timeout", "interval-z", "write-forecasts", "topic", "alert-topic", "dlq-topic", "alerts-measurement",
		"isolation-level", "kafka-brokers", "kafka-tls", "kafka-sasl-mechanism", "influx-url", "influx-bucket",
		"rules", "from", "to", "write", "json", "labels"} {
		if !have[name] {
			t.Errorf("backtest has no --%s", name)
		}
	}
	for _, name := range []string{"group", "batch-size", "checkpoint-interval", "http-addr", "rules-poll"} {
		if have[name] {
			t.Errorf("backtest has --%s, which means nothing to it", name)
		}
	}
	clitest.CheckFlagEnv(t, newApp, 10)
}

func TestBacktestInvalidConfigNamesEveryBadFlag(t *testing.T) {
	clitest.CheckRejects(t, newApp,
		[]string{"analyzer", "backtest", "--from", "2026-11-26T03:00:00Z", "--to", "2026-11-26T02:00:00Z", "--sma-window", "-1",
			"--kafka-brokers", "nohost", "--isolation-level", "dirty"},
		"--rules", "--to", "--sma-window", "--kafka-brokers", "--isolation-level")
	clitest.CheckRejects(t, newApp,
		[]string{"analyzer", "backtest", "--rules", "r.yaml", "--to", "never"}, "--from", "--to")
}

func TestCountRules(t *testing.T) {
	set, err := rules.Parse("r.yaml", []byte("rules:\n  - name: b\n    threshold: {above: 1}\n  - name: a\n    threshold: {above: 2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ev := func(rule string, s alert.State) alert.Event { return alert.Event{Rule: rule, State: s} }
	counts, firing, resolved := countRules(set, []alert.Event{ev("a", alert.Firing), ev("a", alert.Resolved), ev("a", alert.Firing),
		ev("gone", alert.Resolved)})
	got := fmt.Sprint(counts, firing, resolved)
	// Every rule of the set, in its order, quiet ones too; then rules
	// only events name.
	if want := "[{b 0 0} {a 2 1} {gone 0 1}] 2 2"; got != want {
		t.Errorf("countRules = %s, want %s", got, want)
	}
}

func TestScoreLabels(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	rows := func(key string, n int) *nab.Series { // one point a second from t0
		s := &nab.Series{Name: key}
		for i := range n {
			s.Times, s.Values = append(s.Times, at(i)), append(s.Values, 0)
		}
		return s
	}
	win := func(a, b int) labelWindow { return labelWindow{Start: at(a), End: at(b)} }
	fire := func(series, rule string, s int) alert.Event {
		return alert.Event{Fingerprint: rule + series, Rule: rule, Series: series, State: alert.Firing, StartsAt: at(s), EventTime: at(s)}
	}
	anomalyRule := func(rule string) bool { return rule == "spike" }

	type want struct {
		series, windows, tp, fp, repeats, unlabelled int
		precision, recall                            string
	}
	f := func(name string, seen map[string]*nab.Series, labels map[string][]labelWindow, events []alert.Event, w want) labelScore {
		t.Helper()
		ls, err := scoreLabels(events, seen, labels, anomalyRule)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := want{ls.Series, ls.Windows, ls.TP, ls.FP, ls.Repeats, ls.Unlabelled, fmtNum(ls.Precision), fmtNum(ls.Recall)}
		if got != w {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, w)
		}
		return ls
	}
	seen := map[string]*nab.Series{"s a": rows("s a", 200), "s b": rows("s b", 200)}
	labels := map[string][]labelWindow{
		"s a": {win(100, 110), win(150, 160), win(500, 510)}, // the last holds no point of the span
		"s b": {},
	}
	f("nothing fired", seen, labels, nil, want{2, 2, 0, 0, 0, 0, "-", "0"})
	f("one window found, first event only", seen, labels, []alert.Event{
		fire("s a", "spike", 100), fire("s a", "spike", 105), fire("s a", "other", 110), // TP, then two repeats
		fire("s a", "spike", 50),  // FP
		fire("s b", "spike", 20),  // FP: a listed series without windows
		fire("s c", "spike", 20),  // not listed
		fire("s a", "spike", 520), // FP: outside every window of the span
	}, want{2, 2, 1, 3, 2, 1, "0.25", "0.5"})
	repeat := fire("s a", "spike", 150)
	again := repeat
	again.EventTime = at(300) // a re-announcement: same fingerprint and StartsAt
	f("re-announcements count once", seen, labels, []alert.Event{repeat, again}, want{2, 2, 1, 0, 0, 0, "1", "0.5"})
	end := labelWindow{Start: at(110), End: at(110)}
	f("windows are inclusive at both ends", seen, map[string][]labelWindow{"s a": {end}},
		[]alert.Event{fire("s a", "spike", 110)}, want{2, 1, 1, 0, 0, 0, "1", "1"})
	f("no labelled series seen", map[string]*nab.Series{}, labels, []alert.Event{fire("s a", "spike", 100)},
		want{0, 0, 0, 1, 0, 0, "0", "-"}) // windows of unseen series count nowhere

	// NAB: the anomaly rule's detection on the first row of each window
	// earns the full reward: a perfect score; the other rule is no
	// detection.
	ls := f("NAB", seen, labels, []alert.Event{fire("s a", "spike", 100), fire("s a", "spike", 150), fire("s a", "other", 60)},
		want{2, 2, 2, 1, 0, 0, "0.666667", "1"})
	if len(ls.NAB) != 3 || ls.NAB[0].Profile != "standard" || ls.NAB[0].Score == nil || *ls.NAB[0].Score != 100 || ls.NAB[0].FP != 0 {
		t.Errorf("NAB rows %+v, want standard first at 100 with no false positive", ls.NAB)
	}
	// A missed window and a false positive far from windows: NAB's own
	// maths, on the rows backtest saw.
	ls = f("NAB miss", seen, labels, []alert.Event{fire("s a", "spike", 100), fire("s b", "spike", 40)}, want{2, 2, 1, 1, 0, 0, "0.5", "0.5"})
	c := &nab.Corpus{Series: []nab.Series{*seen["s a"], *seen["s b"]}, Windows: map[string][]nab.Window{"s a": {{Start: 100, End: 110}, {Start: 150, End: 160}}}}
	scores := map[string][]float64{"s a": make([]float64, 200), "s b": make([]float64, 200)}
	scores["s a"][100], scores["s b"][40] = 1, 1
	res, err := nab.Score(c, scores, nab.Profiles()[0], 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if ls.NAB[0].Score == nil || *ls.NAB[0].Score != res.Normalized || ls.NAB[0].FN != 1 || ls.NAB[0].FP != 1 {
		t.Errorf("NAB standard %+v, want %v with FN 1 and FP 1", ls.NAB[0], res.Normalized)
	}
}

func TestLoadBacktestLabels(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, fmt.Sprintf("l%d.json", len(s)))
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := loadBacktestLabels(write(`{"cpu,host=a usage": [["2026-11-26 03:00:00.000000", "2026-11-26T03:05:00Z"], ["2026-11-26 01:00:00", "2026-11-26 01:01:00"]], "m v": []}`))
	if err != nil {
		t.Fatal(err)
	}
	w := got["cpu,host=a usage"]
	if len(w) != 2 || w[0].Start.Hour() != 1 || !w[1].End.Equal(time.Date(2026, 11, 26, 3, 5, 0, 0, time.UTC)) || len(got["m v"]) != 0 {
		t.Errorf("labels %+v: want two windows, sorted", got)
	}
	_, err = loadBacktestLabels(write(`{"a": [["2026-11-26 03:00:00", "2026-11-26 02:00:00"], ["x"]], "b": [["2026-11-26 03:00:00", "2026-11-26 04:00:00"], ["2026-11-26 03:30:00", "2026-11-26 05:00:00"]]}`))
	for _, want := range []string{"a window 0: ends before it starts", "a window 1: want [start, end]", "b: windows starting"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v: want %q", err, want)
		}
	}
}

// lineMessage is a line-protocol message for partition p with Kafka
// timestamp ts.
func lineMessage(p int, ts time.Time, line string) kafka.Message {
	return kafka.Message{Key: []byte(fmt.Sprintf("%d/k", p)), Value: []byte(line), Time: ts,
		Headers: []kafka.Header{{Key: "content-type", Value: []byte("text/plain")}}}
}

func TestBacktestSpansByTimestamp(t *testing.T) {
	const topic = "metrics"
	brokers := alertsCluster(t, topic)
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	var msgs []kafka.Message
	for i := range 10 { // partition 0: a message a minute; partition 1: one at 3:04:30
		msgs = append(msgs, lineMessage(0, t0.Add(time.Duration(i)*time.Minute), fmt.Sprintf("m v=%d", i)))
	}
	msgs = append(msgs, lineMessage(1, t0.Add(270*time.Second), "m v=1"))
	produceAlerts(t, brokers, topic, msgs...)
	client := &kafka.Client{Addr: kafka.TCP(brokers)}
	f := func(from, to time.Time, want ...tailSpan) {
		t.Helper()
		got, err := backtestSpans(t.Context(), client, topic, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("[%s, %s): spans %v, want %v", from.Format("15:04:05"), to.Format("15:04:05"), got, want)
		}
	}
	at := func(m, s int) time.Time { return t0.Add(time.Duration(m)*time.Minute + time.Duration(s)*time.Second) }
	f(at(0, 0), time.Time{}, tailSpan{0, 0, 10}, tailSpan{1, 0, 1}, tailSpan{2, 0, 0})
	f(at(2, 0), at(5, 0), tailSpan{0, 2, 5}, tailSpan{1, 0, 1}, tailSpan{2, 0, 0})    // at --from included, at --to excluded
	f(at(2, 1), at(4, 59), tailSpan{0, 3, 5}, tailSpan{1, 0, 1}, tailSpan{2, 0, 0})   // between messages
	f(at(4, 31), at(20, 0), tailSpan{0, 5, 10}, tailSpan{1, 1, 1}, tailSpan{2, 0, 0}) // past partition 1's last
	f(at(30, 0), time.Time{}, tailSpan{0, 10, 10}, tailSpan{1, 1, 1}, tailSpan{2, 0, 0})
	f(at(-10, 0), at(0, 0), tailSpan{0, 0, 0}, tailSpan{1, 0, 0}, tailSpan{2, 0, 0})
}

// TestBacktestRunsTheEngine: backtest over kfake reads the span, skips and
// reports an undecodable message, and prints what the analyzer's engine
// makes of the points: the same events as feeding them to an engine
// directly, in the alert topic's JSON, then the summary.
func TestBacktestRunsTheEngine(t *testing.T) {
	const topic = "metrics"
	brokers := alertsCluster(t, topic)
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.yaml")
	const ruleYAML = "rules:\n  - name: high\n    threshold: {above: 50}\n    severity: critical\n"
	if err := os.WriteFile(rulesFile, []byte(ruleYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	values := []float64{10, 60, 70, 20, 80, 10, 90, 95}
	var msgs []kafka.Message
	for i, v := range values {
		ts := t0.Add(time.Duration(i) * time.Minute)
		msgs = append(msgs, lineMessage(0, ts, fmt.Sprintf("cpu,host=a v=%g %d", v, ts.UnixNano())))
		if i == 3 {
			msgs = append(msgs, lineMessage(0, ts, "cpu,host=a v=oops"))
		}
	}
	produceAlerts(t, brokers, topic, msgs...)

	// [3:01, 3:06): values 60, 70, 20, 80, 10 and the bad message.
	var out, errOut bytes.Buffer
	err := newApp(&out, &errOut).RunContext(t.Context(), []string{"analyzer", "backtest", "--kafka-brokers", brokers, "--topic", topic,
		"--rules", rulesFile, "--from", "2026-11-26T03:01:00Z", "--to", "2026-11-26 03:06:00", "--json"})
	if err != nil {
		t.Fatalf("backtest: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "metrics partition 0 offset 4: undecodable, skipped") {
		t.Errorf("stderr %q: want the undecodable message reported", errOut.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")

	e := testEngine(t, testAnalysis(), ruleYAML)
	for i, v := range values[1:6] {
		ts := t0.Add(time.Duration(i+1) * time.Minute).UnixNano()
		e.process(&point.Point{Measurement: "cpu", Tags: []point.Tag{{Key: "host", Value: "a"}}, Fields: []point.Field{{Key: "v", Value: v}}, Time: ts}, ts)
	}
	res := e.res
	if len(res.events) != 4 {
		t.Fatalf("the engine made %d events, want 4", len(res.events))
	}
	if len(lines) != len(res.events)+1 {
		t.Fatalf("backtest printed %d lines, want %d events and the summary:\n%s", len(lines), len(res.events), out.String())
	}
	for i := range res.events {
		want, _ := json.Marshal(&res.events[i])
		if lines[i] != string(want) {
			t.Errorf("event %d:\n got %s\nwant %s", i, lines[i], want)
		}
	}
	var summary struct {
		Summary backtestReport `json:"summary"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil {
		t.Fatal(err)
	}
	s := summary.Summary
	if got := fmt.Sprint(s.Messages, s.Points, s.Undecodable, s.Firing, s.Resolved, s.Rules, s.Partitions[0]); got != "6 5 1 2 2 [{high 2 2}] {0 1 7 6 5 1}" {
		t.Errorf("summary %s", got)
	}

	// The table for people.
	out.Reset()
	if err := newApp(&out, &errOut).RunContext(t.Context(), []string{"analyzer", "backtest", "--kafka-brokers", brokers, "--topic", topic,
		"--rules", rulesFile, "--from", "2026-11-26T03:01:00Z", "--to", "2026-11-26 03:06:00"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"TIME                  RULE  SEVERITY  STATE     SERIES        VALUE  EXPECTED\n2026-11-26T03:01:00Z  high  critical  firing    cpu,host=a v  60     -\n" +
			"2026-11-26T03:03:00Z  high  critical  resolved  cpu,host=a v  20     80\n",
		"RULE  FIRING  RESOLVED\nhigh  2       2\n",
		"metrics from 2026-11-26T03:01:00Z to 2026-11-26T03:06:00Z: 6 messages (1 undecodable), 5 points in 3 partitions; 2 firing, 2 resolved\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table:\n%s\nwant it to hold:\n%s", out.String(), want)
		}
	}
}
