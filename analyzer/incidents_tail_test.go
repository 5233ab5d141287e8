package main

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/internal/clitest"
	"github.com/metricpipe/metricpipe/shared/incident"
	"github.com/metricpipe/metricpipe/shared/service"
)

// incidentTailExample is an open incident of three alerts whose origin,
// db-1, led the others by 45s; t0 is its start.
func incidentTailExample(t0 time.Time) incident.Event {
	return incident.Event{
		ID: "inc-7f3a", State: incident.Open, Version: 3, Severity: "critical",
		Labels:    map[string]string{"cluster": "eu"},
		StartedAt: t0, UpdatedAt: t0.Add(3 * time.Minute), Firing: 2, AlertCount: 3,
		Alerts: []incident.Member{
			{Fingerprint: "f1", Rule: "db_latency", Series: "db,host=db-1 p99", Severity: "critical", State: "firing", StartsAt: t0},
			{Fingerprint: "f2", Rule: "api_errors", Series: "http,host=api-1 errors", Severity: "warning", State: "firing", StartsAt: t0.Add(45 * time.Second)},
			{Fingerprint: "f3", Rule: "web_5xx", Series: "http,host=web-1 5xx", Severity: "warning", State: "resolved",
				StartsAt: t0.Add(50 * time.Second), EndsAt: t0.Add(2 * time.Minute)},
		},
		Origins: []incident.Origin{
			{Rank: 2, Labels: map[string]string{"service": "api", "host": "api-1", "cluster": "eu"}, Onset: t0.Add(45 * time.Second),
				Evidence: []string{"depends on db (declared)"}},
			{Rank: 1, Labels: map[string]string{"service": "db", "host": "db-1", "cluster": "eu"}, Onset: t0, LeadSeconds: 45, Located: true,
				Evidence: []string{"onset 45s before host=api-1 (lead T 30s): fault located", "upstream of 2 candidates"}},
			{Rank: 3, Labels: map[string]string{"service": "web", "host": "web-1", "cluster": "eu"}, Onset: t0.Add(50 * time.Second)},
		},
		Summary: "db latency on db-1, then api-1 and web-1",
	}
}

func TestIncidentsTailFormat(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 8, 53, 0, time.UTC)
	open := incidentTailExample(t0)
	with := func(e incident.Event, change func(*incident.Event)) incident.Event {
		e.Alerts, e.Origins = slices.Clone(e.Alerts), slices.Clone(e.Origins)
		change(&e)
		return e
	}
	f := func(name string, format tailFormat, e incident.Event, now time.Time, want ...string) {
		t.Helper()
		if got := format.incident(e, now); got != strings.Join(want, "\n") {
			t.Errorf("%s:\n got %s\nwant %s", name, strings.ReplaceAll(got, "\n", "\n     "), strings.Join(want, "\n     "))
		}
	}
	plain, color := tailFormat{}, tailFormat{Color: true}
	f("open, origin located", plain, open, time.Time{},
		"2026-11-26 03:11:53  OPEN      critical  inc-7f3a  3 alerts, 2 firing  origin cluster=eu,host=db-1,service=db (lead 45s, located)  — db latency on db-1, then api-1 and web-1",
		"    2026-11-26 03:08:53  FIRING    db_latency  db,host=db-1 p99",
		"    2026-11-26 03:09:38  FIRING    api_errors  http,host=api-1 errors",
		"    2026-11-26 03:09:43  RESOLVED  web_5xx     http,host=web-1 5xx",
		"    origin 1  cluster=eu,host=db-1,service=db  lead 45s, located",
		"        onset 45s before host=api-1 (lead T 30s): fault located",
		"        upstream of 2 candidates",
		"    origin 2  cluster=eu,host=api-1,service=api",
		"        depends on db (declared)",
		"    origin 3  cluster=eu,host=web-1,service=web")
	f("colour: open by severity, alerts by theirs, resolved green", color,
		with(open, func(e *incident.Event) { e.Origins, e.Summary = nil, "" }), time.Time{},
		"2026-11-26 03:11:53  \x1b[31mOPEN\x1b[0m      \x1b[31mcritical\x1b[0m  inc-7f3a  3 alerts, 2 firing",
		"    2026-11-26 03:08:53  \x1b[31mFIRING\x1b[0m    db_latency  db,host=db-1 p99",
		"    2026-11-26 03:09:38  \x1b[33mFIRING\x1b[0m    api_errors  http,host=api-1 errors",
		"    2026-11-26 03:09:43  \x1b[32mRESOLVED\x1b[0m  web_5xx     http,host=web-1 5xx")
	resolved := with(open, func(e *incident.Event) {
		e.State, e.Firing, e.Version, e.ResolvedAt, e.UpdatedAt = incident.Resolved, 0, 5, t0.Add(4*time.Minute), t0.Add(4*time.Minute)
		for i := range e.Alerts {
			e.Alerts[i].State = "resolved"
		}
		e.Origins = []incident.Origin{{Rank: 1, Labels: map[string]string{"host": "db-1"}, LeadSeconds: 1.25}}
		e.Summary = ""
	})
	f("resolved, a lead short of locating", color, resolved, time.Time{},
		"2026-11-26 03:12:53  \x1b[32mRESOLVED\x1b[0m  critical  inc-7f3a  3 alerts, 0 firing  origin host=db-1 (lead 1.3s)",
		"    2026-11-26 03:08:53  \x1b[32mRESOLVED\x1b[0m  db_latency  db,host=db-1 p99",
		"    2026-11-26 03:09:38  \x1b[32mRESOLVED\x1b[0m  api_errors  http,host=api-1 errors",
		"    2026-11-26 03:09:43  \x1b[32mRESOLVED\x1b[0m  web_5xx     http,host=web-1 5xx",
		"    origin 1  host=db-1  lead 1.3s")
	f("merged: one line", color, incident.Event{ID: "inc-b", State: incident.Merged, Version: 2, MergedInto: "inc-7f3a",
		Severity: "warning", UpdatedAt: t0, Summary: "not shown"}, t0.Add(2*time.Hour),
		"2026-11-26 03:08:53  MERGED    warning   inc-b  merged into inc-7f3a  (2h ago)")
	f("more alerts than listed, more than three origins, one alert", plain, with(open, func(e *incident.Event) {
		e.AlertCount, e.Firing, e.Alerts, e.Summary = 1, 1, e.Alerts[:1], ""
		e.Origins = append(e.Origins, incident.Origin{Rank: 4, Labels: map[string]string{"host": "lb-1"}})
	}), time.Time{},
		"2026-11-26 03:11:53  OPEN      critical  inc-7f3a  1 alert, 1 firing  origin cluster=eu,host=db-1,service=db (lead 45s, located)",
		"    2026-11-26 03:08:53  FIRING    db_latency  db,host=db-1 p99",
		"    origin 1  cluster=eu,host=db-1,service=db  lead 45s, located",
		"        onset 45s before host=api-1 (lead T 30s): fault located",
		"        upstream of 2 candidates",
		"    origin 2  cluster=eu,host=api-1,service=api",
		"        depends on db (declared)",
		"    origin 3  cluster=eu,host=web-1,service=web")
	f("an incident wider than its listed alerts", plain, with(open, func(e *incident.Event) {
		e.AlertCount, e.Alerts, e.Origins, e.Summary = 703, e.Alerts[:2], nil, ""
	}), time.Time{},
		"2026-11-26 03:11:53  OPEN      critical  inc-7f3a  703 alerts, 2 firing",
		"    2026-11-26 03:08:53  FIRING    db_latency  db,host=db-1 p99",
		"    2026-11-26 03:09:38  FIRING    api_errors  http,host=api-1 errors",
		"    … and 701 more alerts")
	f("long lead, another zone, age", tailFormat{Loc: time.FixedZone("X", 3600)}, with(open, func(e *incident.Event) {
		e.Alerts, e.Summary = nil, ""
		e.Origins = []incident.Origin{{Rank: 1, Labels: map[string]string{"host": "db-1"}, LeadSeconds: 192.4, Located: true}}
	}), t0.Add(10*time.Minute),
		"2026-11-26 04:11:53  OPEN      critical  inc-7f3a  3 alerts, 2 firing  origin host=db-1 (lead 3m12s, located)  (7m ago)",
		"    … and 3 more alerts",
		"    origin 1  host=db-1  lead 3m12s, located")
	f("topic text cannot drive the terminal", plain, incident.Event{ID: "i\x1b[2J", State: incident.Open, Version: 1,
		AlertCount: 1, Firing: 1, Summary: "line one\nline two\u202e",
		Alerts:  []incident.Member{{Rule: "r\r", Series: "s\x07", State: "firing"}},
		Origins: []incident.Origin{{Rank: 1, Labels: map[string]string{"host\n": "a\x1b"}, Evidence: []string{"why\x1b[31m", "\n"}}}}, time.Time{},
		"-                    OPEN      -         i [2J  1 alert, 1 firing  origin host =a   — line one line two",
		"    -                    FIRING    r   s ",
		"    origin 1  host =a ",
		"        why [31m")
	f("bare event", plain, incident.Event{ID: "x", State: incident.Open}, time.Time{},
		"-                    OPEN      -         x  0 alerts, 0 firing")
}

func TestIncidentsTailFilter(t *testing.T) {
	f := func(state, severity string, e incident.Event, want bool) {
		t.Helper()
		cfg := tailConfig{Incidents: true, State: state, Severity: severity}
		if got := cfg.incidentTailFilter().match(e.State, e.Severity); got != want {
			t.Errorf("--state %q --severity %s, incident %s/%q: match %t, want %t", state, severity, e.State, e.Severity, got, want)
		}
	}
	ev := func(s incident.State, sev string) incident.Event {
		return incident.Event{ID: "x", State: s, Severity: sev}
	}
	f("", "info", ev(incident.Open, "info"), true)
	f("", "info", ev(incident.Merged, "critical"), true)
	f("open", "info", ev(incident.Resolved, "critical"), false)
	f("open", "info", ev(incident.Merged, "critical"), false)
	f("open", "info", ev(incident.Open, "info"), true)
	f("resolved", "info", ev(incident.Resolved, "info"), true)
	f("merged", "info", ev(incident.Merged, "warning"), true)
	f("", "warning", ev(incident.Open, "info"), false)
	f("", "warning", ev(incident.Open, ""), true) // no severity: a warning
	f("", "critical", ev(incident.Open, "warning"), false)
	f("", "critical", ev(incident.Open, "critical"), true)
	f("", "critical", ev(incident.Open, "page"), true) // unknown: never hidden
	f("resolved", "critical", ev(incident.Open, "critical"), false)

	for _, s := range []string{"", "open", "resolved", "merged"} {
		if err := validIncidentTailState(s); err != nil {
			t.Errorf("--incidents --state %q: %v", s, err)
		}
	}
	for _, s := range []string{"firing", "OPEN", "closed"} {
		if err := validIncidentTailState(s); err == nil || !strings.Contains(err.Error(), "--state") {
			t.Errorf("--incidents --state %q: %v, want an error naming --state", s, err)
		}
	}
}

func TestIncidentsTailSeen(t *testing.T) {
	s := newIncidentTailSeen(2)
	for i, step := range []struct {
		id      string
		version int
		want    bool
	}{
		{"a", 1, true}, {"a", 1, false}, // replayed
		{"a", 2, true}, {"a", 1, false}, // older than printed
		{"b", 1, true}, {"a", 4, true}, // a version skipped (filtered or before --from) is fine
		{"a", 3, false}, {"b", 1, false},
		{"c", 1, true}, // forgets a, the first added
		{"a", 1, true}, // forgets b: a replay of a forgotten id prints again
		{"b", 1, true},
	} {
		if got := s.add(step.id, step.version); got != step.want {
			t.Fatalf("step %d: add(%s, %d) = %t, want %t", i, step.id, step.version, got, step.want)
		}
	}
	if s.len() != 2 {
		t.Fatalf("%d ids remembered, want 2", s.len())
	}
}

func TestIncidentsTailEveryFlagHasItsEnvVar(t *testing.T) {
	app := service.NewApp("analyzer", "", io.Discard, io.Discard)
	app.Commands = []*cli.Command{alertsCommand()}
	opts := service.Options(app)
	for _, name := range []string{"incidents", "incidents-topic"} {
		if _, ok := opts["alerts tail "+name]; !ok {
			t.Errorf("alerts tail has no --%s", name)
		}
	}
	if err := service.CheckFlagEnv(app); err != nil {
		t.Fatal(err)
	}
}

func TestIncidentsTailInvalidConfigNamesEveryBadFlag(t *testing.T) {
	clitest.CheckRejects(t, alertsTestApp,
		[]string{"analyzer", "alerts", "tail", "--incidents", "--incidents-topic", "", "--state", "firing", "--severity", "high"},
		"--incidents-topic", "--state", "--severity")
}

func incidentTailMessage(t *testing.T, partition int, e incident.Event) kafka.Message {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(string(rune('0'+partition)) + "/" + e.ID), Value: b}
}

func TestIncidentsTailReadsTheTopic(t *testing.T) {
	const topic = DefaultIncidentTopic
	brokers := alertsCluster(t, topic)

	// Event times a few seconds old: no "(… ago)" on the headers.
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	v1 := incidentTailExample(t0)
	v1.Version, v1.UpdatedAt, v1.AlertCount, v1.Firing, v1.Alerts, v1.Origins = 1, time.Now().Add(-20*time.Second).Truncate(time.Second), 1, 1, v1.Alerts[:1], v1.Origins[1:2]
	v2 := incidentTailExample(t0)
	v2.Version, v2.UpdatedAt = 2, v1.UpdatedAt.Add(5*time.Second)
	v3 := v2
	v3.Version, v3.State, v3.Firing, v3.UpdatedAt, v3.Summary = 3, incident.Resolved, 0, v2.UpdatedAt.Add(5*time.Second), "resolved"
	other := incident.Event{ID: "inc-b", State: incident.Open, Version: 1, Severity: "warning", StartedAt: v1.UpdatedAt,
		UpdatedAt: v1.UpdatedAt, AlertCount: 1, Firing: 1, Summary: "disk on web-2",
		Alerts: []incident.Member{{Fingerprint: "f9", Rule: "disk_full", Series: "disk,host=web-2 used", Severity: "warning", State: "firing", StartsAt: v1.UpdatedAt}}}
	merged := incident.Event{ID: "inc-b", State: incident.Merged, Version: 2, MergedInto: v1.ID, Severity: "warning",
		StartedAt: other.StartedAt, UpdatedAt: v2.UpdatedAt}

	pretty, err := json.MarshalIndent(other, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	// Partition 0: inc-7f3a; partition 1: junk; partition 2: inc-b.
	msgs := []kafka.Message{
		incidentTailMessage(t, 0, v1),                                      // p0 offset 0
		incidentTailMessage(t, 0, v2),                                      // p0 offset 1
		incidentTailMessage(t, 0, v1),                                      // p0 offset 2: replayed, dropped
		incidentTailMessage(t, 0, v2),                                      // p0 offset 3: replayed, dropped
		{Key: []byte("1/junk"), Value: []byte("{}")},                       // p1 offset 0: no id
		{Key: []byte("2/inc-b"), Value: pretty},                            // p2 offset 0: several lines
		incidentTailMessage(t, 0, v3),                                      // p0 offset 4
		incidentTailMessage(t, 2, merged),                                  // p2 offset 1
		{Key: []byte("1/x"), Value: []byte(`{"id":"x","state":"closed"}`)}, // p1 offset 1
	}
	produceAlerts(t, brokers, topic, msgs...)
	base := []string{"alerts", "tail", "--incidents", "--kafka-brokers", brokers, "--follow=false", "--color", "never", "--from", "beginning"}

	format := tailFormat{Loc: time.Local}
	// blocks splits printed output into one string per incident event.
	blocks := func(s string) []string {
		var out []string
		for _, line := range alertsLines(s) {
			if strings.HasPrefix(line, " ") && len(out) > 0 {
				out[len(out)-1] += "\n" + line
			} else {
				out = append(out, line)
			}
		}
		return out
	}
	stdout, stderr := runAlerts(t, base...)
	got := blocks(stdout)
	want := []string{format.incident(v1, time.Time{}), format.incident(v2, time.Time{}), format.incident(v3, time.Time{}),
		format.incident(other, time.Time{}), format.incident(merged, time.Time{})}
	if !alertsSameSet(got, want) {
		t.Fatalf("printed:\n%s\nwant, in any order across partitions:\n%s", stdout, strings.Join(want, "\n"))
	}
	if i, j, k := slices.Index(got, want[0]), slices.Index(got, want[1]), slices.Index(got, want[2]); i > j || j > k {
		t.Errorf("inc-7f3a's versions printed out of order:\n%s", stdout)
	}
	for _, w := range []string{"  OPEN      critical  inc-7f3a  3 alerts, 2 firing  origin cluster=eu,host=db-1,service=db (lead 45s, located)  — db latency",
		"    origin 1  cluster=eu,host=db-1,service=db  lead 45s, located\n        onset 45s before",
		"  MERGED    warning   inc-b  merged into inc-7f3a\n"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
	warnings := alertsLines(stderr)
	wantWarnings := []*regexp.Regexp{
		regexp.MustCompile(`^warning: metrics-incidents partition 1 offset 0: not an incident event, skipped: decode incident event: no id$`),
		regexp.MustCompile(`^warning: metrics-incidents partition 1 offset 1: not an incident event, skipped: decode incident event x: state "closed": want open, resolved or merged$`),
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
		stdout, _ := runAlerts(t, append(base, "--json")...)
		var compact bytes.Buffer
		if err := json.Compact(&compact, pretty); err != nil {
			t.Fatal(err)
		}
		want := []string{string(msgs[0].Value), string(msgs[1].Value), string(msgs[6].Value), compact.String(), string(msgs[7].Value)}
		if got := alertsLines(stdout); !alertsSameSet(got, want) {
			t.Fatalf("printed:\n%s\nwant exactly the published bytes:\n%s", stdout, strings.Join(want, "\n"))
		}
	})
	t.Run("filters", func(t *testing.T) {
		stdout, _ := runAlerts(t, append(base, "--state", "open", "--severity", "critical", "--json")...)
		if want := []string{string(msgs[0].Value), string(msgs[1].Value)}; !alertsSameSet(alertsLines(stdout), want) {
			t.Fatalf("printed:\n%s\nwant inc-7f3a's open versions:\n%s", stdout, strings.Join(want, "\n"))
		}
	})
	t.Run("the alert topic is not read", func(t *testing.T) {
		stdout, _ := runAlerts(t, "alerts", "tail", "--kafka-brokers", brokers, "--alert-topic", topic,
			"--follow=false", "--from", "beginning", "--json", "--state", "resolved")
		if stdout != "" {
			t.Fatalf("alerts tail without --incidents printed %q from the incidents topic, want no alert event", stdout)
		}
	})
	t.Run("flags given to the analyzer", func(t *testing.T) {
		run := func(args ...string) (string, error) {
			var out, errOut bytes.Buffer
			app := alertsTestApp(&out, &errOut)
			err := app.RunContext(t.Context(), append([]string{"analyzer", "--kafka-brokers", brokers, "--incidents-topic", topic,
				"alerts", "tail", "--incidents", "--follow=false", "--from", "beginning"}, args...))
			return out.String(), err
		}
		stdout, err := run("--state", "merged", "--json")
		if got := strings.TrimSpace(stdout); err != nil || got != string(msgs[7].Value) {
			t.Fatalf("printed %q, %v; want the merged event", got, err)
		}
		// A topic given after tail wins over the analyzer's.
		const elsewhere = "incidents-elsewhere"
		if _, err := run("--incidents-topic", elsewhere); err == nil || !strings.Contains(err.Error(), elsewhere) {
			t.Fatalf("tail of the missing topic %s returned %v, want an error naming it", elsewhere, err)
		}
	})
}
