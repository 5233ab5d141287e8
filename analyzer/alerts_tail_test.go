package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/internal/clitest"
	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/service"
)

// alertsTestApp is the analyzer's app with `alerts` in it, whether newApp
// already has it or not.
func alertsTestApp(stdout, stderr io.Writer) *cli.App {
	app := newApp(stdout, stderr)
	if app.Command("alerts") == nil {
		app.Commands = append(app.Commands, alertsCommand())
	}
	return app
}

func f64p(v float64) *float64 { return &v }

func TestAlertsFormatLine(t *testing.T) {
	at := func(h, m, s int) time.Time { return time.Date(2026, 11, 26, h, m, s, 0, time.UTC) }
	firing := alert.Event{Fingerprint: "a1", Rule: "cpu_high", State: alert.Firing, Severity: alert.SeverityCritical,
		Series: "cpu,host=web-1 usage_user", Value: 97.2, Threshold: f64p(90),
		StartsAt: at(3, 8, 53), EventTime: at(3, 12, 5), Summary: "CPU 97.2 > 90 on web-1"}
	resolved := firing
	resolved.State, resolved.Value, resolved.StartsAt, resolved.EndsAt, resolved.Summary = alert.Resolved, 41, at(3, 7, 5), at(3, 12, 5), "CPU back to normal"
	with := func(e alert.Event, change func(*alert.Event)) alert.Event { change(&e); return e }

	f := func(name string, format tailFormat, e alert.Event, now time.Time, want string) {
		t.Helper()
		if got := format.line(e, now); got != want {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
	}
	plain, color := tailFormat{}, tailFormat{Color: true}
	f("firing", plain, firing, time.Time{},
		"2026-11-26 03:12:05  FIRING    critical  cpu_high  cpu,host=web-1 usage_user  value=97.2 threshold=90  for 3m12s  — CPU 97.2 > 90 on web-1")
	f("resolved", plain, resolved, time.Time{},
		"2026-11-26 03:12:05  RESOLVED  critical  cpu_high  cpu,host=web-1 usage_user  value=41 threshold=90  after 5m (fired 03:07:05–03:12:05)  — CPU back to normal")
	f("no threshold, no summary, just started", plain,
		with(firing, func(e *alert.Event) {
			e.Threshold, e.Summary, e.Severity, e.StartsAt = nil, "", alert.SeverityInfo, e.EventTime
		}), time.Time{},
		"2026-11-26 03:12:05  FIRING    info      cpu_high  cpu,host=web-1 usage_user  value=97.2  for 0s")
	f("forecast and score", plain,
		with(firing, func(e *alert.Event) { e.Threshold, e.Expected, e.Score, e.Summary = nil, f64p(0.1+0.2), f64p(0.93), "" }), time.Time{},
		"2026-11-26 03:12:05  FIRING    critical  cpu_high  cpu,host=web-1 usage_user  value=97.2 expected=0.3 score=0.93  for 3m12s")
	f("colour, critical", color, firing, time.Time{},
		"2026-11-26 03:12:05  \x1b[31mFIRING\x1b[0m    \x1b[31mcritical\x1b[0m  cpu_high  cpu,host=web-1 usage_user  value=97.2 threshold=90  for 3m12s  — CPU 97.2 > 90 on web-1")
	f("colour, warning", color, with(firing, func(e *alert.Event) { e.Severity, e.Summary = alert.SeverityWarning, "" }), time.Time{},
		"2026-11-26 03:12:05  \x1b[33mFIRING\x1b[0m    \x1b[33mwarning\x1b[0m   cpu_high  cpu,host=web-1 usage_user  value=97.2 threshold=90  for 3m12s")
	f("colour, info", color, with(firing, func(e *alert.Event) { e.Severity, e.Summary = alert.SeverityInfo, "" }), time.Time{},
		"2026-11-26 03:12:05  \x1b[36mFIRING\x1b[0m    \x1b[36minfo\x1b[0m      cpu_high  cpu,host=web-1 usage_user  value=97.2 threshold=90  for 3m12s")
	f("colour, unknown severity", color, with(firing, func(e *alert.Event) { e.Severity, e.Summary = "page", "" }), time.Time{},
		"2026-11-26 03:12:05  FIRING    page      cpu_high  cpu,host=web-1 usage_user  value=97.2 threshold=90  for 3m12s")
	f("colour, resolved", color, resolved, time.Time{},
		"2026-11-26 03:12:05  \x1b[32mRESOLVED\x1b[0m  critical  cpu_high  cpu,host=web-1 usage_user  value=41 threshold=90  after 5m (fired 03:07:05–03:12:05)  — CPU back to normal")
	f("age against now", plain, with(firing, func(e *alert.Event) { e.Summary = "" }), at(5, 15, 0),
		"2026-11-26 03:12:05  FIRING    critical  cpu_high  cpu,host=web-1 usage_user  value=97.2 threshold=90  for 3m12s  (2h ago)")
	f("no age under a minute", plain, with(firing, func(e *alert.Event) { e.Summary = "" }), at(3, 13, 4),
		"2026-11-26 03:12:05  FIRING    critical  cpu_high  cpu,host=web-1 usage_user  value=97.2 threshold=90  for 3m12s")
	f("fired across midnight, shown in another zone", tailFormat{Loc: time.FixedZone("X", 3600)},
		with(resolved, func(e *alert.Event) {
			e.StartsAt, e.Summary = e.StartsAt.Add(-5*time.Hour), ""
		}), at(3, 14, 5),
		"2026-11-26 04:12:05  RESOLVED  critical  cpu_high  cpu,host=web-1 usage_user  value=41 threshold=90  after 5h5m (fired 2026-11-25 23:07:05–04:12:05)  (2m ago)")
	f("topic text cannot drive the terminal", plain,
		with(firing, func(e *alert.Event) { e.Rule, e.Summary = "cpu\x1b[2J", "line one\nline two\u202e" }), time.Time{},
		"2026-11-26 03:12:05  FIRING    critical  cpu [2J  cpu,host=web-1 usage_user  value=97.2 threshold=90  for 3m12s  — line one line two")
	f("bare event", plain, alert.Event{Fingerprint: "x", State: alert.Resolved}, time.Time{},
		"-                    RESOLVED  -         -  -  value=0")
}

func TestAlertsFilter(t *testing.T) {
	f := func(state alert.State, severity string, e alert.Event, want bool) {
		t.Helper()
		cfg := tailConfig{State: string(state), Severity: severity}
		if got := cfg.filter().match(e.State, e.Severity); got != want {
			t.Errorf("--state %q --severity %s, event %s/%q: match %t, want %t", state, severity, e.State, e.Severity, got, want)
		}
	}
	ev := func(s alert.State, sev string) alert.Event {
		return alert.Event{Fingerprint: "x", State: s, Severity: sev}
	}
	f("", "info", ev(alert.Firing, "info"), true)
	f("", "info", ev(alert.Resolved, "critical"), true)
	f("firing", "info", ev(alert.Resolved, "critical"), false)
	f("firing", "info", ev(alert.Firing, "info"), true)
	f("resolved", "info", ev(alert.Resolved, "info"), true)
	f("", "warning", ev(alert.Firing, "info"), false)
	f("", "warning", ev(alert.Firing, "warning"), true)
	f("", "warning", ev(alert.Firing, ""), true) // no severity: a warning
	f("", "critical", ev(alert.Firing, ""), false)
	f("", "critical", ev(alert.Firing, "warning"), false)
	f("", "critical", ev(alert.Firing, "critical"), true)
	f("", "critical", ev(alert.Firing, "page"), true) // unknown: never hidden
	f("resolved", "critical", ev(alert.Firing, "critical"), false)
}

func TestAlertsSeenForgetsTheOldest(t *testing.T) {
	s := newTailSeen(2)
	key := func(fp string) tailKey { return tailKeyOf(alert.Event{Fingerprint: fp, State: alert.Firing}) }
	for i, step := range []struct {
		fp   string
		want bool
	}{{"a", true}, {"a", false}, {"b", true}, {"a", false}, {"c", true}, {"b", false}, {"a", true}, {"c", false}, {"b", true}} {
		if got := s.add(key(step.fp)); got != step.want {
			t.Fatalf("step %d: add(%s) = %t, want %t", i, step.fp, got, step.want)
		}
	}
	if s.len() != 2 {
		t.Fatalf("%d keys remembered, want 2", s.len())
	}
	// The dedup key is the documented triple, with times compared as instants.
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	e := alert.Event{Fingerprint: "a", State: alert.Firing, StartsAt: t0, EventTime: t0}
	again := e
	again.StartsAt, again.EventTime, again.Value = t0.In(time.FixedZone("X", 3600)), t0.Add(time.Minute), 3
	if tailKeyOf(e) != tailKeyOf(again) {
		t.Fatal("a re-announcement has another key")
	}
	for _, other := range []alert.Event{
		{Fingerprint: "b", State: alert.Firing, StartsAt: t0},
		{Fingerprint: "a", State: alert.Resolved, StartsAt: t0},
		{Fingerprint: "a", State: alert.Firing, StartsAt: t0.Add(time.Nanosecond)},
	} {
		if tailKeyOf(e) == tailKeyOf(other) {
			t.Fatalf("%+v has the key of %+v", other, e)
		}
	}
}

func TestAlertsHelpers(t *testing.T) {
	for in, want := range map[string]tailFrom{"end": {}, "beginning": {Beginning: true}, "90m": {Ago: 90 * time.Minute}} {
		if got, err := parseTailFrom(in); err != nil || got != want {
			t.Errorf("parseTailFrom(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "start", "-1h", "0s", "yesterday"} {
		if _, err := parseTailFrom(in); err == nil || !strings.Contains(err.Error(), "--from") {
			t.Errorf("parseTailFrom(%q) = %v, want an error naming --from", in, err)
		}
	}
	for _, c := range []struct {
		mode, noColor string
		want          bool
	}{{"always", "1", true}, {"never", "", false}, {"auto", "", false}, {"auto", "1", false}} {
		if got := tailColor(c.mode, &bytes.Buffer{}, c.noColor); got != c.want {
			t.Errorf("tailColor(%s, buffer, NO_COLOR=%q) = %t, want %t", c.mode, c.noColor, got, c.want)
		}
	}
	for v, want := range map[float64]string{0: "0", 97.2: "97.2", -3.5: "-3.5", 0.1 + 0.2: "0.3", 123456789: "123456789", 1e-7: "1e-07", 2.5e15: "2.5e+15"} {
		if got := tailValue(v); got != want {
			t.Errorf("tailValue(%v) = %s, want %s", v, got, want)
		}
	}
	for d, want := range map[time.Duration]string{0: "0s", 400 * time.Millisecond: "0s", 192 * time.Second: "3m12s", 5 * time.Minute: "5m",
		10 * time.Minute: "10m", 2 * time.Hour: "2h", 90 * time.Minute: "1h30m", time.Hour + 5*time.Second: "1h0m5s", 50 * time.Hour: "50h"} {
		if got := tailDuration(d); got != want {
			t.Errorf("tailDuration(%s) = %s, want %s", d, got, want)
		}
	}
}

// TestAlertsEveryFlagHasItsEnvVar checks the alerts command alone; the
// analyzer's TestEveryFlagHasItsEnvVar checks the whole app.
func TestAlertsEveryFlagHasItsEnvVar(t *testing.T) {
	app := service.NewApp("analyzer", "", io.Discard, io.Discard)
	app.Commands = []*cli.Command{alertsCommand()}
	if err := service.CheckFlagEnv(app); err != nil {
		t.Fatal(err)
	}
	opts := service.Options(app)
	for _, name := range []string{"from", "follow", "json", "state", "severity", "color", "alert-topic", "kafka-brokers", "kafka-sasl-password-file"} {
		if _, ok := opts["alerts tail "+name]; !ok {
			t.Errorf("alerts tail has no --%s", name)
		}
	}
}

func TestAlertsInvalidConfigNamesEveryBadFlag(t *testing.T) {
	clitest.CheckRejects(t, alertsTestApp,
		[]string{"analyzer", "alerts", "tail", "--from", "yesterday", "--state", "pending", "--severity", "high",
			"--color", "rainbow", "--kafka-brokers", "nohost", "--alert-topic", ""},
		"--from", "--state", "--severity", "--color", "--kafka-brokers", "--alert-topic")
}

// alertsCluster starts an in-process Kafka with topic seeded in 3 partitions.
func alertsCluster(t *testing.T, topic string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// produceAlerts writes msgs in order; a message's partition is the number
// its key starts with ("1/..." goes to partition 1), so a test knows every
// offset.
func produceAlerts(t *testing.T, brokers, topic string, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(strings.Split(brokers, ",")...), Topic: topic, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, _ ...int) int {
			return int(m.Key[0] - '0')
		})}
	defer w.Close()
	if err := w.WriteMessages(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func alertMessage(t *testing.T, partition int, e alert.Event) kafka.Message {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(string(rune('0'+partition)) + "/" + e.Fingerprint), Value: b}
}

// runAlerts runs the analyzer with args and returns its output.
func runAlerts(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := alertsTestApp(&out, &errOut).RunContext(t.Context(), append([]string{"analyzer"}, args...)); err != nil {
		t.Fatalf("analyzer %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String()
}

func alertsLines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

func TestAlertsTailReadsTheTopic(t *testing.T) {
	const topic = kafkaio.DefaultAlertTopic
	brokers := alertsCluster(t, topic)

	// Event times a few seconds old: no "(… ago)" on the lines.
	t0 := time.Now().Add(-10 * time.Second).Truncate(time.Second)
	cpu := alert.Event{Fingerprint: "cpu1", Rule: "cpu_high", State: alert.Firing, Severity: alert.SeverityCritical,
		Series: "cpu,host=web-1 usage_user", Labels: map[string]string{"host": "web-1"}, Value: 97.2, Threshold: f64p(90),
		StartsAt: t0, EventTime: t0.Add(2 * time.Second), Summary: "CPU 97.2 > 90 on web-1"}
	cpuAgain := cpu // re-announced while firing: same triple, newer time
	cpuAgain.EventTime, cpuAgain.Value = t0.Add(4*time.Second), 98
	cpuResolved := cpu
	cpuResolved.State, cpuResolved.Value, cpuResolved.EndsAt, cpuResolved.EventTime = alert.Resolved, 40, t0.Add(6*time.Second), t0.Add(6*time.Second)
	disk := alert.Event{Fingerprint: "disk1", Rule: "disk_full", State: alert.Firing, Severity: alert.SeverityWarning,
		Series: "disk,host=db-1 used_percent", Value: 91, Threshold: f64p(90), StartsAt: t0, EventTime: t0}
	mem := alert.Event{Fingerprint: "mem1", Rule: "mem_forecast", State: alert.Firing, Severity: alert.SeverityInfo,
		Series: "mem,host=db-1 used", Value: 7, Expected: f64p(5), StartsAt: t0, EventTime: t0.Add(time.Second)}

	pretty, err := json.MarshalIndent(mem, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	// Partition 0: cpu1; partition 1: disk1 and junk; partition 2: mem1.
	msgs := []kafka.Message{
		alertMessage(t, 0, cpu),                          // p0 offset 0
		alertMessage(t, 0, cpu),                          // p0 offset 1: replayed, dropped
		alertMessage(t, 0, cpuAgain),                     // p0 offset 2: re-announced, dropped
		{Key: []byte("1/junk"), Value: []byte("cpu=97")}, // p1 offset 0: not JSON
		alertMessage(t, 1, disk),                         // p1 offset 1
		{Key: []byte("1/pending"), Value: []byte(`{"fingerprint":"p","state":"pending"}`)}, // p1 offset 2: not published state
		alertMessage(t, 0, cpuResolved),        // p0 offset 3
		{Key: []byte("2/mem1"), Value: pretty}, // p2 offset 0: several lines
	}
	produceAlerts(t, brokers, topic, msgs...)
	base := []string{"alerts", "tail", "--kafka-brokers", brokers, "--follow=false", "--color", "never"}

	format := tailFormat{Loc: time.Local}
	stdout, stderr := runAlerts(t, append(base, "--from", "beginning")...)
	got := alertsLines(stdout)
	want := []string{format.line(cpu, time.Time{}), format.line(cpuResolved, time.Time{}), format.line(disk, time.Time{}), format.line(mem, time.Time{})}
	if !alertsSameSet(got, want) {
		t.Fatalf("printed:\n%s\nwant, in any order across partitions:\n%s", stdout, strings.Join(want, "\n"))
	}
	if slices.Index(got, want[0]) > slices.Index(got, want[1]) {
		t.Errorf("cpu1 resolved printed before it fired:\n%s", stdout)
	}
	for _, w := range []string{"FIRING    critical  cpu_high  cpu,host=web-1 usage_user  value=97.2 threshold=90  for 2s  — CPU 97.2 > 90 on web-1",
		"RESOLVED  critical  cpu_high  cpu,host=web-1 usage_user  value=40 threshold=90  after 6s (fired "} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
	warnings := alertsLines(stderr)
	wantWarnings := []*regexp.Regexp{
		regexp.MustCompile(`^warning: metrics-alerts partition 1 offset 0: not an alert event, skipped: decode alert event: .+$`),
		regexp.MustCompile(`^warning: metrics-alerts partition 1 offset 2: not an alert event, skipped: decode alert event p: state "pending": want firing or resolved$`),
	}
	if len(warnings) != len(wantWarnings) {
		t.Fatalf("stderr:\n%s\nwant %d warnings", stderr, len(wantWarnings))
	}
	for i, re := range wantWarnings {
		if !re.MatchString(warnings[i]) {
			t.Errorf("warning %q does not match %s", warnings[i], re)
		}
	}

	t.Run("json", func(t *testing.T) {
		stdout, _ := runAlerts(t, append(base, "--from", "beginning", "--json")...)
		var compact bytes.Buffer
		if err := json.Compact(&compact, pretty); err != nil {
			t.Fatal(err)
		}
		want := []string{string(msgs[0].Value), string(msgs[6].Value), string(msgs[4].Value), compact.String()}
		if got := alertsLines(stdout); !alertsSameSet(got, want) {
			t.Fatalf("printed:\n%s\nwant exactly the published bytes:\n%s", stdout, strings.Join(want, "\n"))
		}
	})
	t.Run("filters", func(t *testing.T) {
		stdout, _ := runAlerts(t, append(base, "--from", "beginning", "--state", "firing", "--severity", "warning")...)
		if want := []string{format.line(cpu, time.Time{}), format.line(disk, time.Time{})}; !alertsSameSet(alertsLines(stdout), want) {
			t.Fatalf("printed:\n%s\nwant:\n%s", stdout, strings.Join(want, "\n"))
		}
	})
	t.Run("from end", func(t *testing.T) {
		if stdout, stderr := runAlerts(t, base...); stdout != "" || stderr != "" {
			t.Fatalf("--from end --follow=false printed %q, stderr %q; want nothing", stdout, stderr)
		}
	})
	t.Run("flags given to the analyzer", func(t *testing.T) {
		stdout, _ := runAlerts(t, "--kafka-brokers", brokers, "--alert-topic", topic,
			"alerts", "tail", "--follow=false", "--from", "beginning", "--state", "resolved", "--json")
		if got := strings.TrimSpace(stdout); got != string(msgs[6].Value) {
			t.Fatalf("printed %q, want the resolved event", got)
		}
	})
}

func TestAlertsTailFromDuration(t *testing.T) {
	const topic = "alerts-by-time"
	brokers := alertsCluster(t, topic)
	now := time.Now()
	old := alert.Event{Fingerprint: "old", Rule: "r", State: alert.Firing, StartsAt: now.Add(-2 * time.Hour), EventTime: now.Add(-2 * time.Hour)}
	recent := alert.Event{Fingerprint: "recent", Rule: "r", State: alert.Firing, StartsAt: now.Add(-10 * time.Minute), EventTime: now.Add(-10 * time.Minute)}
	m1, m2, m3 := alertMessage(t, 0, old), alertMessage(t, 0, recent), alertMessage(t, 1, old)
	m1.Time, m2.Time, m3.Time = old.EventTime, recent.EventTime, old.EventTime
	produceAlerts(t, brokers, topic, m1, m2, m3)

	stdout, _ := runAlerts(t, "alerts", "tail", "--kafka-brokers", brokers, "--alert-topic", topic,
		"--follow=false", "--from", "1h", "--json")
	if got := strings.TrimSpace(stdout); got != string(m2.Value) {
		t.Fatalf("--from 1h printed %q, want only the event published 10 minutes ago", got)
	}
}

func TestAlertsTailFollowsUntilCancelled(t *testing.T) {
	const topic = kafkaio.DefaultAlertTopic
	brokers := alertsCluster(t, topic)
	t0 := time.Now().Truncate(time.Second)
	first := alert.Event{Fingerprint: "first", Rule: "r", State: alert.Firing, StartsAt: t0, EventTime: t0}
	second := alert.Event{Fingerprint: "second", Rule: "r", State: alert.Firing, StartsAt: t0, EventTime: t0}
	produceAlerts(t, brokers, topic, alertMessage(t, 2, first))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut alertsSyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- alertsTestApp(&out, &errOut).RunContext(ctx,
			[]string{"analyzer", "alerts", "tail", "-f", "--kafka-brokers", brokers, "--from", "beginning", "--json"})
	}()
	alertsWaitFor(t, done, func() bool { return strings.Contains(out.String(), `"first"`) })
	produceAlerts(t, brokers, topic, alertMessage(t, 0, second))
	alertsWaitFor(t, done, func() bool { return strings.Contains(out.String(), `"second"`) })

	cancel() // what SIGINT does through service.Main
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("interrupted tail returned %v, want nil (exit 0); stderr: %s", err, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not stop within 10s of cancellation")
	}
	if n := len(alertsLines(out.String())); n != 2 {
		t.Fatalf("printed %d lines, want 2:\n%s", n, out.String())
	}
}

// waitFor polls cond until it holds, failing t after 10s or if the command
// ended early.
func alertsWaitFor(t *testing.T, done <-chan error, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case err := <-done:
			t.Fatalf("tail ended early: %v", err)
		case <-deadline:
			t.Fatal("condition not met within 10s")
		case <-tick.C:
		}
	}
}

type alertsSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *alertsSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *alertsSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func alertsSameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
