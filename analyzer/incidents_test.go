package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/incident"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/rules"
)

// TestIncidentStageRebuildsAfterRestart: an incident stage that restarts
// (or moves to another analyzer) rebuilds its open incidents by replaying
// the alert events before its committed offsets, so an alert arriving after
// the restart joins the incident it belongs to, under the same id.
func TestIncidentStageRebuildsAfterRestart(t *testing.T) {
	const topic = "alerts"
	brokers := alertsCluster(t, topic)
	t0 := time.Now().UTC().Truncate(time.Second)
	fire := func(fp, host, service string, at time.Time) alert.Event {
		return alert.Event{Fingerprint: fp, Rule: "errors", State: alert.Firing, Severity: alert.SeverityCritical,
			Series: "svc,host=" + host + " errors", Labels: map[string]string{"cluster": "eu", "host": host, "service": service},
			StartsAt: at, EventTime: at}
	}
	cfg := incidentsConfig{Enabled: true, Measurement: "metricpipe_incidents", Topic: kafkaio.TopicSpec{Name: "incidents", Partitions: 1, ReplicationFactor: 1},
		Group: kafkaio.GroupConfig{Topic: topic, Group: "g-incidents", BatchSize: 100, BatchWait: 10 * time.Millisecond,
			DrainTimeout: 5 * time.Second, WarmUp: time.Hour, IdleAfter: 100 * time.Millisecond, SingleOwner: true},
		Correlation: incident.Config{Window: 5 * time.Minute, GroupBy: incident.DefaultGroupBy, Lead: 30 * time.Second,
			Lateness: 10 * time.Minute, ServiceLabel: "service", Scope: []string{"cluster"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var book atomic.Pointer[ruleBook]
	book.Store(&ruleBook{set: &rules.Set{Dependencies: map[string][]string{"api": {"db"}}}})
	admin, err := kafkaio.NewAdmin(kafkaio.Config{Brokers: []string{brokers}})
	if err != nil {
		t.Fatal(err)
	}
	// run runs a fresh stage until it published an incident event that
	// done accepts and committed every alert, and returns that event.
	run := func(done func(incident.Event) bool) incident.Event {
		t.Helper()
		c := &captured{}
		reg := prometheus.NewRegistry()
		out := testOutput(t, &captured{}, reg)
		stage := newIncidents(cfg, &book, c, out.writer, nil, zerolog.Nop(), reg)
		gcfg := cfg.Group
		gcfg.OnAssign = stage.assign
		gc, err := kafkaio.NewGroupConsumer(kafkaio.Config{Brokers: []string{brokers}}, gcfg, zerolog.Nop(), reg)
		if err != nil {
			t.Fatal(err)
		}
		defer gc.Close()
		ctx, cancel := context.WithCancel(t.Context())
		stopped := make(chan error, 1)
		go func() {
			stopped <- gc.Run(ctx, func(p int) (kafkaio.Handler, error) { return incidentHandler{stage, p}, nil })
		}()
		var got incident.Event
		deadline := time.Now().Add(30 * time.Second)
		for found := false; !found; {
			if time.Now().After(deadline) {
				t.Fatal("no incident event as expected within 30s")
			}
			for _, l := range c.take() {
				e, err := incident.Decode([]byte(l[strings.IndexByte(l, '{'):]))
				if err != nil {
					t.Fatal(err)
				}
				if done(e) {
					got, found = e, true
				}
			}
			time.Sleep(20 * time.Millisecond) // a poll bound by the deadline
		}
		for ok := false; !ok && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			ends, _ := admin.PartitionEnds(t.Context(), topic)
			committed, _ := admin.CommittedOffsets(t.Context(), cfg.Group.Group, topic)
			ok = true
			for p, end := range ends {
				ok = ok && (end == 0 || committed[p] == end)
			}
		}
		cancel()
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		return got
	}

	produceAlerts(t, brokers, topic, alertMessage(t, 0, fire("db1", "db-eu-1", "db", t0)))
	first := run(func(e incident.Event) bool { return e.AlertCount == 1 })
	produceAlerts(t, brokers, topic, alertMessage(t, 1, fire("api1", "api-eu-1", "api", t0.Add(time.Minute))))
	second := run(func(e incident.Event) bool { return e.AlertCount >= 1 })
	if second.ID != first.ID || second.AlertCount != 2 || second.Version != 2 {
		t.Fatalf("after the restart: incident %s v%d with %d alerts; want %s v2 with 2 alerts", second.ID, second.Version, second.AlertCount, first.ID)
	}
	if o := second.Origins[0]; o.Labels["host"] != "db-eu-1" || !o.Located {
		t.Errorf("origin %v located %v, want db-eu-1 located (evidence %q)", o.Labels, o.Located, o.Evidence)
	}
}

// TestIncidentStageDoesNotWaitForeverForAStuckPartition: a partition that
// never finishes replaying (stuck at a batch it cannot read) holds the
// others back for a while, not for ever: incidents go on, their ids then
// perhaps not those of before the restart.
func TestIncidentStageDoesNotWaitForeverForAStuckPartition(t *testing.T) {
	c := &captured{}
	reg := prometheus.NewRegistry()
	out := testOutput(t, &captured{}, reg)
	var book atomic.Pointer[ruleBook]
	book.Store(&ruleBook{set: &rules.Set{}})
	cfg := incidentsConfig{Correlation: incident.Config{Window: 5 * time.Minute, GroupBy: incident.DefaultGroupBy,
		Lead: 30 * time.Second, Lateness: 10 * time.Minute, ServiceLabel: "service"}, Measurement: "metricpipe_incidents"}
	stage := newIncidents(cfg, &book, c, out.writer, nil, zerolog.Nop(), reg)
	stage.replayWait = 50 * time.Millisecond
	stage.assign([]int{0, 1}) // partition 1 never reports
	at := time.Now().UTC()
	e := alert.Event{Fingerprint: "f", Rule: "r", State: alert.Firing, Severity: alert.SeverityWarning,
		Labels: map[string]string{"host": "a"}, StartsAt: at, EventTime: at}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := (incidentHandler{stage, 0}).Handle(ctx, []kafka.Message{alertMessage(t, 0, e)}); err != nil {
		t.Fatalf("partition 0 held back by partition 1: %v", err)
	}
	if got := c.take(); len(got) != 1 {
		t.Errorf("published %d incident events, want 1", len(got))
	}
}
