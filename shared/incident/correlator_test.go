package incident

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/alert"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// fire and resolve make the events of an alert on the series with those
// labels ("k=v,k=v"), starting s seconds after t0.
func fire(name string, s float64, labels string) alert.Event {
	start := t0.Add(time.Duration(s * float64(time.Second)))
	l := map[string]string{}
	for kv := range strings.SplitSeq(labels, ",") {
		k, v, _ := strings.Cut(kv, "=")
		l[k] = v
	}
	return alert.Event{Fingerprint: name, Rule: "r", State: alert.Firing, Severity: alert.SeverityWarning,
		Series: "svc," + labels + " latency_ms", Labels: l, StartsAt: start, EventTime: start}
}

func resolve(e alert.Event, s float64) alert.Event {
	e.State = alert.Resolved
	e.EndsAt = t0.Add(time.Duration(s * float64(time.Second)))
	e.EventTime = e.EndsAt
	return e
}

func config() Config {
	return Config{Window: 5 * time.Minute, GroupBy: DefaultGroupBy, Lead: 30 * time.Second, Lateness: 5 * time.Minute, ServiceLabel: "service", Scope: []string{"cluster"}}
}

// final returns each incident's latest event, by id.
func final(events []Event) map[string]Event {
	out := map[string]Event{}
	for _, e := range events {
		out[e.ID] = e
	}
	return out
}

func membersOf(e Event) []string {
	var fps []string
	for _, m := range e.Alerts {
		fps = append(fps, m.Fingerprint)
	}
	slices.Sort(fps)
	return fps
}

// groups returns the members of the incidents not merged, sorted.
func groups(events []Event) []string {
	var out []string
	for _, e := range final(events) {
		if e.State != Merged {
			out = append(out, strings.Join(membersOf(e), "+"))
		}
	}
	slices.Sort(out)
	return out
}

// feed feeds events as published at their event time.
func feed(c *Correlator, events ...alert.Event) []Event {
	var out []Event
	for _, e := range events {
		out = c.Observe(e, e.EventTime, out)
	}
	return out
}

func TestGrouping(t *testing.T) {
	dbA := fire("dbA", 0, "cluster=eu,service=db,host=db-1")
	apiA := fire("apiA", 60, "cluster=eu,service=api,host=api-1")
	usA := fire("usA", 30, "cluster=us,service=web,host=web-9")
	cases := []struct {
		name   string
		cfg    func(*Config)
		events []alert.Event
		want   []string
	}{
		{name: "same cluster within the window", events: []alert.Event{dbA, apiA}, want: []string{"apiA+dbA"}},
		{name: "no shared label", events: []alert.Event{dbA, usA}, want: []string{"dbA", "usA"}},
		{name: "one service in two clusters: two places", events: []alert.Event{dbA, fire("dbUS", 20, "cluster=us,service=db,host=db-7")},
			want: []string{"dbA", "dbUS"}},
		{name: "outside the window", events: []alert.Event{dbA, fire("late", 301, "cluster=eu,service=db,host=db-1")}, want: []string{"dbA", "late"}},
		{name: "within the window of the latest alert", events: []alert.Event{dbA, apiA, fire("chain", 350, "cluster=eu,service=web,host=web-1")},
			want: []string{"apiA+chain+dbA"}},
		{name: "repeats are one alert", events: []alert.Event{dbA, dbA, apiA, dbA}, want: []string{"apiA+dbA"}},
		{name: "by host only", cfg: func(c *Config) { c.GroupBy = []string{"host"} }, events: []alert.Event{dbA, apiA},
			want: []string{"apiA", "dbA"}},
		{name: "declared dependency links", cfg: func(c *Config) {
			c.GroupBy = []string{"host"}
			c.Dependencies = map[string][]string{"web": {"api"}, "api": {"db"}}
		}, events: []alert.Event{dbA, apiA, fire("web", 90, "cluster=eu,service=web,host=web-1")},
			want: []string{"apiA+dbA+web"}},
		{name: "a dependency holds within its scope", cfg: func(c *Config) {
			c.GroupBy = []string{"host"}
			c.Dependencies = map[string][]string{"api": {"db"}}
		}, events: []alert.Event{dbA, fire("apiUS", 60, "cluster=us,service=api,host=api-7")},
			want: []string{"apiUS", "dbA"}},
		{name: "an alert linking two incidents merges them", cfg: func(c *Config) { c.GroupBy = []string{"host", "service"} },
			events: []alert.Event{fire("a", 0, "host=a,service=x"), fire("b", 10, "host=b,service=y"), fire("ab", 20, "host=a,service=y")},
			want:   []string{"a+ab+b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			got := groups(feed(NewCorrelator(cfg), tc.events...))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("incidents %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMergeKeepsTheOlderIncident(t *testing.T) {
	cfg := config()
	cfg.GroupBy = []string{"host", "service"}
	c := NewCorrelator(cfg)
	events := feed(c, fire("a", 0, "host=a,service=x"), fire("b", 10, "host=b,service=y"), fire("ab", 20, "host=a,service=y"))
	last := final(events)
	var merged, kept []Event
	for _, e := range last {
		if e.State == Merged {
			merged = append(merged, e)
		} else {
			kept = append(kept, e)
		}
	}
	if len(merged) != 1 || len(kept) != 1 {
		t.Fatalf("got %d merged and %d kept incidents, want 1 and 1: %+v", len(merged), len(kept), last)
	}
	if merged[0].MergedInto != kept[0].ID || kept[0].ID != newID(alertKey{"a", t0.UnixNano()}) {
		t.Errorf("incident %s merged into %s; kept %s, want the first alert's", merged[0].ID, merged[0].MergedInto, kept[0].ID)
	}
	if got := strings.Join(membersOf(kept[0]), "+"); got != "a+ab+b" {
		t.Errorf("members %s, want a+ab+b", got)
	}
}

func TestLifecycle(t *testing.T) {
	c := NewCorrelator(config())
	a, b := fire("a", 0, "host=h1,cluster=eu"), fire("b", 5, "host=h2,cluster=eu")
	type step struct {
		in           alert.Event
		state        State
		version      int
		firing, all  int
		resolvedAtS  float64
		wantNoChange bool
	}
	steps := []step{
		{in: a, state: Open, version: 1, firing: 1, all: 1},
		{in: b, state: Open, version: 2, firing: 2, all: 2},
		{in: b, wantNoChange: true},
		{in: resolve(a, 100), state: Open, version: 3, firing: 1, all: 2},
		{in: resolve(a, 100), wantNoChange: true},
		{in: resolve(b, 120), state: Resolved, version: 4, firing: 0, all: 2, resolvedAtS: 120},
		// Within the window of its last start: it opens again, same id.
		{in: fire("c", 200, "host=h1,cluster=eu"), state: Open, version: 5, firing: 1, all: 3},
		{in: resolve(fire("c", 200, "host=h1,cluster=eu"), 210), state: Resolved, version: 6, firing: 0, all: 3, resolvedAtS: 210},
	}
	id := newID(alertKey{"a", t0.UnixNano()})
	for i, s := range steps {
		out := c.Observe(s.in, s.in.EventTime, nil)
		if s.wantNoChange {
			if len(out) != 0 {
				t.Errorf("step %d: %d events for a repeat, want none", i, len(out))
			}
			continue
		}
		if len(out) != 1 {
			t.Fatalf("step %d: %d events, want 1", i, len(out))
		}
		e := out[0]
		if e.ID != id || e.State != s.state || e.Version != s.version || e.Firing != s.firing || e.AlertCount != s.all {
			t.Errorf("step %d: %s %s v%d firing %d of %d; want %s %s v%d firing %d of %d", i,
				e.ID, e.State, e.Version, e.Firing, e.AlertCount, id, s.state, s.version, s.firing, s.all)
		}
		if want := t0.Add(time.Duration(s.resolvedAtS * float64(time.Second))); s.resolvedAtS > 0 && !e.ResolvedAt.Equal(want) {
			t.Errorf("step %d: resolved at %s, want %s", i, e.ResolvedAt, want)
		}
	}
	// A late alert of the window, published within the lateness of the
	// incident's last change, still joins it, though event time has moved
	// past the window.
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	c.Observe(fire("elsewhere", 900, "host=h9,cluster=us"), at(220), nil)
	late := fire("late", 450, "host=h1,cluster=eu")
	if out := c.Observe(late, at(221), nil); len(out) != 1 || out[0].ID != id || out[0].AlertCount != 4 {
		t.Fatalf("a late alert within the lateness: %+v, want incident %s with 4 alerts", out, id)
	}
	c.Observe(resolve(late, 460), at(222), nil)
	// Past the lateness it is forgotten: another late alert starts anew.
	c.Observe(fire("elsewhere2", 1000, "host=h8,cluster=us"), at(222).Add(config().Lateness+time.Second), nil)
	out := c.Observe(fire("later", 455, "host=h1,cluster=eu"), at(223).Add(config().Lateness+time.Second), nil)
	if len(out) != 1 || out[0].ID == id || out[0].AlertCount != 1 {
		t.Errorf("past the lateness: %+v, want a new incident of 1 alert", out)
	}
	if c.Observe(resolve(fire("ghost", 0, "host=x"), 5), t0, nil) != nil || c.Unmatched != 1 {
		t.Errorf("a resolved event of an unknown alert: unmatched %d, want 1 and no event", c.Unmatched)
	}
}

func TestOriginRanking(t *testing.T) {
	deps := map[string][]string{"web": {"api"}, "api": {"db", "cache"}}
	cases := []struct {
		name    string
		deps    map[string][]string
		events  []alert.Event
		want    string // rank 1's labels
		located bool
		lead    float64
	}{
		{name: "the earliest by more than T is located",
			events: []alert.Event{
				fire("api1", 60, "cluster=eu,service=api,host=api-1"), fire("db1", 0, "cluster=eu,service=db,host=db-1"),
				fire("api2", 62, "cluster=eu,service=api,host=api-2")},
			want: "cluster=eu,host=db-1,service=db", located: true, lead: 60},
		{name: "a service's hosts lead together",
			events: []alert.Event{
				fire("db1", 0, "cluster=eu,service=db,host=db-1"), fire("db2", 1, "cluster=eu,service=db,host=db-2"),
				fire("web", 45, "cluster=eu,service=web,host=web-1")},
			want: "cluster=eu,host=db-1,service=db", located: true, lead: 45},
		{name: "within T the declared dependency decides", deps: deps,
			events: []alert.Event{
				fire("api1", 0, "cluster=eu,service=api,host=api-1"), fire("db1", 10, "cluster=eu,service=db,host=db-1"),
				fire("web1", 12, "cluster=eu,service=web,host=web-1")},
			want: "cluster=eu,host=db-1,service=db", lead: 0},
		{name: "the onset rule wins over a declaration", deps: deps,
			events: []alert.Event{
				fire("api1", 0, "cluster=eu,service=api,host=api-1"), fire("db1", 120, "cluster=eu,service=db,host=db-1")},
			want: "cluster=eu,host=api-1,service=api", located: true, lead: 120},
		{name: "without either, the earlier onset",
			events: []alert.Event{
				fire("b", 0, "cluster=eu,service=b,host=b-1"), fire("a", 10, "cluster=eu,service=a,host=a-1")},
			want: "cluster=eu,host=b-1,service=b", lead: 10},
		{name: "one place", events: []alert.Event{fire("x", 0, "cluster=eu,service=db,host=db-1"), fire("y", 20, "cluster=eu,service=db,host=db-1")},
			want: "cluster=eu,host=db-1,service=db", located: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config()
			cfg.Dependencies = tc.deps
			out := feed(NewCorrelator(cfg), tc.events...)
			e := out[len(out)-1]
			if len(e.Origins) == 0 {
				t.Fatalf("no origins: %+v", e)
			}
			o := e.Origins[0]
			if got := FormatLabels(o.Labels); got != tc.want || o.Located != tc.located || o.LeadSeconds != tc.lead {
				t.Errorf("rank 1: %s located %v lead %v; want %s located %v lead %v\nevidence: %q", got, o.Located, o.LeadSeconds,
					tc.want, tc.located, tc.lead, o.Evidence)
			}
			if len(o.Evidence) == 0 || !strings.Contains(e.Summary, "likely origin "+tc.want) {
				t.Errorf("evidence %q, summary %q", o.Evidence, e.Summary)
			}
		})
	}
}

// TestOrderIndependence feeds the events of random faults in two orders
// that keep each alert's own events in order, as the partitions of the
// alert topic may deliver them, up to the lateness apart: the incidents
// come out the same.
func TestOrderIndependence(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		var alerts [][]alert.Event
		for f := range 8 {
			start := float64(f) * 240 // the last start of one 140 s before the next: past the window
			cluster := []string{"eu", "us"}[r.IntN(2)]
			for h := range 1 + r.IntN(4) {
				s := start + r.Float64()*100
				e := fire(fmt.Sprintf("f%d-%d", f, h), s, fmt.Sprintf("cluster=%s,service=s%d,host=h%d-%d", cluster, h%2, f, h))
				alerts = append(alerts, []alert.Event{e, resolve(e, s+r.Float64()*60)})
			}
		}
		var inOrder []alert.Event
		for _, a := range alerts {
			inOrder = append(inOrder, a...)
		}
		// Each alert's events delayed by up to the lateness, as if on a
		// partition that lags; an alert's events keep their order.
		type delayed struct {
			at time.Time
			e  alert.Event
		}
		var ds []delayed
		for _, a := range alerts {
			lag := time.Duration(r.Int64N(int64(config().Lateness)))
			for _, e := range a {
				ds = append(ds, delayed{e.EventTime.Add(lag), e})
			}
		}
		slices.SortStableFunc(ds, func(a, b delayed) int { return a.at.Compare(b.at) })
		cfg := config()
		cfg.Window = 2 * time.Minute
		c := NewCorrelator(cfg)
		var out []Event
		for _, d := range ds {
			out = c.Observe(d.e, d.at, out) // published when delivered
		}
		a, b := groups(feed(NewCorrelator(cfg), inOrder...)), groups(out)
		if !reflect.DeepEqual(a, b) || len(a) != 8 {
			t.Fatalf("seed %d: in order %v\nshuffled %v\nwant the same 8", seed, a, b)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Lead: -1, GroupBy: []string{""}}.Validate()
	for _, want := range []string{"--incident-window 0s: want > 0", "--incident-lead -1ns: want ≥ 0", "empty label name", "service label is empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to say %q", err, want)
		}
	}
}
