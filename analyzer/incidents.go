package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/incident"
	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/rules"
	"github.com/metricpipe/metricpipe/shared/service"
)

// DefaultIncidentTopic is where incidents are published.
const DefaultIncidentTopic = "metrics-incidents"

// incidentReplayWait is how long the incident stage waits, after a
// partition of the alert topic has replayed, for the others to: long
// enough for a replay of a day of alerts, short enough that a partition
// stuck at a batch it cannot read stops incidents only for a minute.
const incidentReplayWait = time.Minute

// incidentsConfig configures the incident stage: a consumer group of its
// own on the alert topic, every partition of which one analyzer instance
// (the group's single owner) correlates into incidents.
type incidentsConfig struct {
	Enabled     bool
	Topic       kafkaio.TopicSpec
	Group       kafkaio.GroupConfig // on the alert topic
	Correlation incident.Config
	Measurement string
}

func (c incidentsConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	errs := []error{c.Topic.Validate(), c.Group.Validate(), c.Correlation.Validate()}
	if c.Measurement == "" {
		errs = append(errs, errors.New("--incidents-measurement is empty"))
	}
	return errors.Join(errs...)
}

func incidentFlags() []cli.Flag {
	env := service.EnvVars
	return []cli.Flag{
		&cli.BoolFlag{Name: "incident-stage", Value: true, Usage: "group alerts into incidents with their likely origin, published to --incidents-topic (one analyzer instance does it for the whole alert topic; the others stand by)", EnvVars: env("incident-stage"), Category: "Incidents"},
		&cli.StringFlag{Name: "incidents-topic", Value: DefaultIncidentTopic, Usage: "topic incidents are published to, keyed by incident id", EnvVars: env("incidents-topic"), Category: "Incidents"},
		&cli.StringFlag{Name: "incidents-measurement", Value: "metricpipe_incidents", Usage: "InfluxDB measurement of incident events", EnvVars: env("incidents-measurement"), Category: "Incidents"},
		&cli.DurationFlag{Name: "incident-window", Value: 5 * time.Minute, Usage: "alerts that start within this of an incident's alerts and share a grouping label join it (event time)", EnvVars: env("incident-window"), Category: "Incidents"},
		&cli.StringFlag{Name: "incident-group-by", Value: strings.Join(incident.DefaultGroupBy, ","), Usage: "comma-separated labels an alert must share a value of with an incident's alerts to join it; also what an origin is (a host, a service)", EnvVars: env("incident-group-by"), Category: "Incidents"},
		&cli.DurationFlag{Name: "incident-lead", Value: 30 * time.Second, Usage: "T of the onset rule: a place whose anomaly began more than T before every other's is the located fault", EnvVars: env("incident-lead"), Category: "Incidents"},
		&cli.StringFlag{Name: "incident-scope", Value: "cluster", Usage: "comma-separated labels the alerts of one incident never disagree on (a service's hosts in two clusters are two places; declared dependencies hold within a cluster)", EnvVars: env("incident-scope"), Category: "Incidents"},
		&cli.DurationFlag{Name: "incident-lateness", Value: 10 * time.Minute, Usage: "how long after an incident last changed (in alert publish time) a late alert of its window may still join it: partitions are analyzed side by side, not in step, hours apart in event time during a backfill", EnvVars: env("incident-lateness"), Category: "Incidents"},
		&cli.DurationFlag{Name: "incident-replay", Value: 24 * time.Hour, Usage: "alert events re-read (by publish time) before the committed offsets when the incident stage starts or moves, to rebuild the incidents still open; an incident open longer is seen anew", EnvVars: env("incident-replay"), Category: "Incidents"},
	}
}

// incidentsFromCLI reads the incident flags; the group reads the alert
// topic in the analyzer's fetch and drain settings.
func incidentsFromCLI(c *cli.Context, main kafkaio.GroupConfig) incidentsConfig {
	g := main
	g.Topic, g.Group = c.String("alert-topic"), main.Group+"-incidents"
	// Idle tells the stage a quiet partition is done replaying.
	g.SingleOwner, g.WarmUp, g.IdleAfter = true, c.Duration("incident-replay"), time.Second
	g.Checkpoints = kafkaio.CheckpointConfig{}
	return incidentsConfig{
		Enabled:     c.Bool("incident-stage"),
		Topic:       kafkaio.TopicSpecFromCLI(c, c.String("incidents-topic")),
		Group:       g,
		Measurement: c.String("incidents-measurement"),
		Correlation: incident.Config{
			Window:       c.Duration("incident-window"),
			GroupBy:      splitLabels(c.String("incident-group-by")),
			Lead:         c.Duration("incident-lead"),
			Lateness:     c.Duration("incident-lateness"),
			ServiceLabel: "service",
			Scope:        splitLabels(c.String("incident-scope")),
		},
	}
}

// splitLabels splits a comma-separated list of label names.
func splitLabels(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

type incidentMetrics struct {
	events     *prometheus.CounterVec
	open       prometheus.Gauge
	undecoded  prometheus.Counter
	unmatched  prometheus.Counter
	publishing *prometheus.CounterVec
}

func newIncidentMetrics(reg prometheus.Registerer) incidentMetrics {
	m := incidentMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metricpipe_analyzer_incident_events_total",
			Help: "Incident events published, by state."}, []string{"state"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "metricpipe_analyzer_incidents_open",
			Help: "Incidents with an alert firing, on the instance that owns the incident stage."}),
		undecoded: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_analyzer_incident_alerts_undecodable_total",
			Help: "Messages of the alert topic that are no alert event, skipped by the incident stage."}),
		unmatched: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_analyzer_incident_alerts_unmatched_total",
			Help: "Resolved alert events of alerts the incident stage never saw fire (before --incident-replay)."}),
		publishing: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metricpipe_analyzer_incident_retries_total",
			Help: "Incident publishes and writes retried after a failure, by target."}, []string{"target"}),
	}
	reg.MustRegister(m.events, m.open, m.undecoded, m.unmatched, m.publishing)
	return m
}

// incidents is the incident stage: one correlator fed by the handlers of
// every alert-topic partition this instance owns. Each handler publishes
// the incident events its alerts caused, and writes them to InfluxDB,
// before its offsets are committed; on assignment the partitions' recent
// alerts are replayed (kafkaio.Warmer) to rebuild the open incidents.
type incidents struct {
	mu          sync.Mutex // held from observing a batch until its incidents are published
	corr        *incident.Correlator
	rules       *rules.Set // whose dependencies corr has
	book        *atomic.Pointer[ruleBook]
	w           messageWriter
	writer      *influx.Writer
	dlq         *kafkaio.DeadLetters
	measurement string
	backoff     retry.Backoff
	metrics     incidentMetrics
	log         zerolog.Logger

	// The partitions of the current assignment not yet done replaying,
	// and a channel closed once none is.
	readyMu   sync.Mutex
	replaying map[int]bool
	replayed  chan struct{}
	// replayWait bounds how long a partition waits for the others'
	// replay: one stuck partition must not stop every incident.
	replayWait time.Duration
}

// assign starts an assignment (kafkaio.GroupConfig.OnAssign): no partition
// acts before every one has replayed, or an alert handled on one could
// start an incident that an older alert still replaying on another
// belongs to, under another id than before the restart.
func (s *incidents) assign(partitions []int) {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	s.replaying, s.replayed = map[int]bool{}, make(chan struct{})
	for _, p := range partitions {
		s.replaying[p] = true
	}
	if len(partitions) == 0 {
		close(s.replayed)
	}
}

// done records that partition p finished replaying (it has a batch to
// handle, or is idle) and returns the channel closed once all have.
func (s *incidents) done(p int) <-chan struct{} {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if s.replaying[p] {
		delete(s.replaying, p)
		if len(s.replaying) == 0 {
			close(s.replayed)
		}
	}
	return s.replayed
}

// awaitReplay marks partition p done replaying and waits, at most
// replayWait, for the assignment's other partitions; past that it gives
// up on the stragglers, logging them, and lets every partition act.
func (s *incidents) awaitReplay(ctx context.Context, p int) error {
	all := s.done(p)
	select {
	case <-all:
		return nil
	default:
	}
	timer := time.NewTimer(s.replayWait)
	defer timer.Stop()
	select {
	case <-all:
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		s.readyMu.Lock()
		if all == s.replayed && len(s.replaying) > 0 {
			s.log.Warn().Ints("partitions", slices.Sorted(maps.Keys(s.replaying))).Stringer("waited", s.replayWait).
				Msg("alert partitions still replaying; going on without them (incidents they hold may be split or renamed)")
			clear(s.replaying)
			close(s.replayed)
		}
		s.readyMu.Unlock()
	}
	return nil
}

func newIncidents(cfg incidentsConfig, book *atomic.Pointer[ruleBook], w messageWriter, writer *influx.Writer,
	dlq *kafkaio.DeadLetters, log zerolog.Logger, reg prometheus.Registerer) *incidents {
	s := &incidents{corr: incident.NewCorrelator(cfg.Correlation), book: book, w: w, writer: writer, dlq: dlq,
		measurement: cfg.Measurement, backoff: retry.DefaultBackoff(), metrics: newIncidentMetrics(reg),
		log: log.With().Str("stage", "incidents").Logger(), replayed: make(chan struct{}), replayWait: incidentReplayWait}
	close(s.replayed) // until an assignment says otherwise
	return s
}

// observe feeds a batch of alert events to the correlator; what it returns
// are the incident events to publish. The caller holds mu.
func (s *incidents) observe(batch []kafka.Message) []incident.Event {
	if b := s.book.Load(); b.set != s.rules {
		s.rules = b.set
		s.corr.SetDependencies(b.set.Dependencies)
	}
	before := s.corr.Unmatched
	var out []incident.Event
	for i := range batch {
		m := &batch[i]
		e, err := alert.Decode(m.Value)
		if err != nil {
			s.metrics.undecoded.Inc()
			s.log.Debug().Err(err).Int("partition", m.Partition).Int64("offset", m.Offset).Msg("not an alert event; skipped")
			continue
		}
		out = s.corr.Observe(e, m.Time, out)
	}
	s.metrics.unmatched.Add(float64(s.corr.Unmatched - before))
	s.metrics.open.Set(float64(s.corr.Open()))
	return out
}

// incidentHandler is one alert-topic partition's handler of the stage.
type incidentHandler struct {
	s         *incidents
	partition int
}

var _ kafkaio.Warmer = incidentHandler{}

// Warm rebuilds the incidents from alerts handled before: nothing is
// published.
func (h incidentHandler) Warm(batch []kafka.Message) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	h.s.observe(batch)
}

// Handle publishes while it holds the stage: an incident's events must
// reach its partition in version order, the latest last, whichever alert
// partition caused them.
func (h incidentHandler) Handle(ctx context.Context, batch []kafka.Message) error {
	if err := h.s.awaitReplay(ctx, h.partition); err != nil {
		return err
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	events := h.s.observe(batch)
	if len(events) == 0 {
		return nil
	}
	return h.s.emit(ctx, events)
}

// Idle marks a quiet partition done replaying.
func (h incidentHandler) Idle(context.Context) error {
	h.s.done(h.partition)
	return nil
}

// emit publishes incident events keyed by id, then writes them to
// InfluxDB; what InfluxDB refuses is dead-lettered.
func (s *incidents) emit(ctx context.Context, events []incident.Event) error {
	msgs := make([]kafka.Message, 0, len(events))
	var lines []byte
	for i := range events {
		e := &events[i]
		v, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode incident %s: %w", e.ID, err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(e.ID), Value: v,
			Headers: []kafka.Header{{Key: kafkaio.HeaderContentType, Value: []byte("application/json")}}})
		lines = appendIncidentLine(lines, s.measurement, e)
		s.log.Info().Str("incident", e.ID).Str("state", string(e.State)).Int("version", e.Version).
			Int("alerts", e.AlertCount).Str("summary", e.Summary).Msg("incident")
	}
	err := retry.Do(ctx, s.backoff, func(ctx context.Context) error { return s.w.WriteMessages(ctx, msgs...) },
		func(attempt int, delay time.Duration, err error) {
			s.metrics.publishing.WithLabelValues("kafka").Inc()
			s.log.Warn().Err(err).Int("attempt", attempt).Stringer("retry_in", delay).Msg("incident publish failed; retrying")
		})
	if err != nil {
		return fmt.Errorf("publish %d incident events: %w", len(msgs), err)
	}
	for i := range events {
		s.metrics.events.WithLabelValues(string(events[i].State)).Inc()
	}
	refused, err := s.writer.WriteLines(ctx, lines)
	if err != nil {
		return err
	}
	return influx.Runs(refused, func(run []influx.Refusal) error {
		var b []byte
		for _, r := range run {
			b = appendIncidentLine(b, s.measurement, &events[r.Index])
		}
		return s.dlq.PublishLines(ctx, b, run[0].Err)
	})
}

// appendIncidentLine encodes e as one line of the incidents measurement:
// tags id, severity and state; fields version, alerts, firing,
// lead_seconds, located, origin (the rank-1 origin's labels), summary and
// started_at. Its time is the event's updated_at.
func appendIncidentLine(b []byte, measurement string, e *incident.Event) []byte {
	p := point.Point{Measurement: measurement}
	for _, t := range [...]point.Tag{{Key: "id", Value: e.ID}, {Key: "severity", Value: e.Severity},
		{Key: "state", Value: string(e.State)}} { // sorted by key
		if t.Value != "" {
			p.Tags = append(p.Tags, t)
		}
	}
	b = point.AppendSeriesKey(b, &p)
	var origin string
	var lead float64
	var located bool
	if len(e.Origins) > 0 {
		origin, lead, located = incident.FormatLabels(e.Origins[0].Labels), e.Origins[0].LeadSeconds, e.Origins[0].Located
	}
	b = append(b, " version="...)
	b = strconv.AppendInt(b, int64(e.Version), 10)
	b = append(b, "i,alerts="...)
	b = strconv.AppendInt(b, int64(e.AlertCount), 10)
	b = append(b, "i,firing="...)
	b = strconv.AppendInt(b, int64(e.Firing), 10)
	b = append(b, "i,lead_seconds="...)
	b = strconv.AppendFloat(b, lead, 'g', -1, 64)
	b = append(b, ",located="...)
	b = strconv.AppendBool(b, located)
	b = append(b, ",origin="...)
	b = appendLPString(b, origin)
	b = append(b, ",summary="...)
	b = appendLPString(b, e.Summary)
	b = append(b, ",started_at="...)
	b = appendLPString(b, e.StartedAt.Format(time.RFC3339Nano))
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.UpdatedAt.UnixNano(), 10)
	return append(b, '\n')
}
