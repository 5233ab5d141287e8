package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/metricpipe/metricpipe/shared/action"
	"github.com/metricpipe/metricpipe/shared/anomaly"
	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/rules"
	"github.com/metricpipe/metricpipe/shared/service"
)

// config is the analyzer's whole configuration.
type config struct {
	Service  service.Config
	Kafka    kafkaio.Config
	Influx   influx.Config
	Topic    kafkaio.TopicSpec
	Alerts   kafkaio.TopicSpec
	DLQ      kafkaio.TopicSpec // for forecasts and alerts InfluxDB refuses
	Group    kafkaio.GroupConfig
	Analysis analysis
	// RulesFile is the YAML rule file; empty: no rules, forecasts only.
	RulesFile string
	// RulesPoll is how often the rule file is checked for changes.
	RulesPoll time.Duration
	// AlertsMeasurement is the InfluxDB measurement of alert events.
	AlertsMeasurement string
	// ActionsDir is the allow-list directory of the programs exec actions
	// may run; empty: rules with exec actions are refused.
	ActionsDir string
	Actions    action.Config
	// ActionsTopic receives the audit record of every action attempt.
	ActionsTopic kafkaio.TopicSpec
	Incidents    incidentsConfig
}

func (c config) Validate() error {
	errs := []error{c.Service.Validate(), c.Kafka.Validate(), c.Influx.Validate(), c.Topic.Validate(),
		c.Alerts.Validate(), c.DLQ.Validate(), c.Group.Validate(), c.Analysis.Validate(), c.Actions.Validate(),
		c.ActionsTopic.Validate(), c.Incidents.Validate()}
	if c.ActionsDir != "" {
		if st, err := os.Stat(c.ActionsDir); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("--actions-dir %q: not a directory", c.ActionsDir))
		}
	}
	if c.RulesPoll <= 0 {
		errs = append(errs, fmt.Errorf("--rules-poll %s: want > 0", c.RulesPoll))
	}
	if c.AlertsMeasurement == "" {
		errs = append(errs, errors.New("--alerts-measurement is empty"))
	}
	return errors.Join(errs...)
}

type metrics struct {
	points, undecodable, untracked, expired, refused prometheus.Counter
	alerts, retries                                  *prometheus.CounterVec
	publishSeconds                                   prometheus.Histogram
	series                                           *prometheus.GaugeVec
	ruleReloads                                      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_analyzer_" + name, Help: help})
	}
	latency := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "metricpipe_analyzer_" + name, Help: help,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)})
	}
	m := metrics{
		points:      counter("points_total", "Points analyzed."),
		undecodable: counter("undecodable_messages_total", "Messages that could not be decoded (the consumer dead-letters them)."),
		untracked:   counter("points_untracked_total", "Field values not analyzed because --max-series series were tracked."),
		expired:     counter("series_expired_total", "Series forgotten after --series-idle-timeout without a point."),
		refused:     counter("points_dead_lettered_total", "Forecasts and alert events InfluxDB refused, dead-lettered as line protocol with the reason."),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metricpipe_analyzer_alerts_total",
			Help: "Alert events published, by state and severity."}, []string{"state", "severity"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metricpipe_analyzer_retries_total",
			Help: "Kafka publishes retried after a failure, by target (kafka: alert events; dlq: dead letters); InfluxDB writes count in write_retries_total."}, []string{"target"}),
		publishSeconds: latency("publish_seconds", "Latency of publishing one batch of alert events, retries included."),
		series: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "metricpipe_analyzer_series_tracked",
			Help: "Series-fields analyzed, per partition."}, []string{"partition"}),
		ruleReloads: counter("rule_reloads_total", "Changed rule files loaded after the start (invalid ones are logged and ignored)."),
	}
	reg.MustRegister(m.points, m.undecodable, m.untracked, m.expired, m.refused, m.alerts, m.retries,
		m.publishSeconds, m.series, m.ruleReloads)
	return m
}

// run runs the analyzer until ctx is cancelled; a value on reload (SIGHUP)
// rereads the rule file.
func run(ctx context.Context, cfg config, log zerolog.Logger, reg *prometheus.Registry, reload <-chan struct{}) error {
	params, err := anomaly.NewParams(cfg.Analysis.Anomaly)
	if err != nil {
		return err
	}
	m := newMetrics(reg)
	var book atomic.Pointer[ruleBook]
	book.Store(&ruleBook{set: &rules.Set{}})
	var watcher *rules.Watcher
	if cfg.RulesFile != "" {
		gen := uint64(1)
		loaded := func(s *rules.Set) { book.Store(&ruleBook{set: s, gen: gen}) } // the watcher logs loads
		opts := rules.Options{ActionsDir: cfg.ActionsDir, ResolveExec: true}
		watcher, err = rules.NewWatcherWith(cfg.RulesFile, cfg.RulesPoll, opts, log, func(s *rules.Set) {
			gen++ // onLoad runs on the watcher's goroutine only
			m.ruleReloads.Inc()
			loaded(s)
		})
		if err != nil {
			return err
		}
		loaded(watcher.Current())
	}
	admin, err := kafkaio.NewAdmin(cfg.Kafka)
	if err != nil {
		return err
	}
	sink, err := influx.NewSink(cfg.Influx)
	if err != nil {
		return err
	}
	defer sink.Close()
	writer := influx.NewWriter(sink, log, reg, "analyzer")
	out := &output{writer: writer, measurement: cfg.AlertsMeasurement, backoff: retry.DefaultBackoff(), metrics: m, log: log,
		// Per-point warnings are sampled; the counters carry the totals.
		hotLog: log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Second})}
	partitions, setPartitions := service.Pending("kafka partitions")
	incidentPartitions, setIncidentPartitions := service.Pending("incident partitions")
	checks := []service.Check{{Name: "kafka", Probe: admin.Ping}, writer.Check(), partitions}
	topics := append([]kafkaio.TopicSpec{cfg.Topic, cfg.Alerts, cfg.DLQ, cfg.ActionsTopic}, cfg.Group.Checkpoints.Topics(cfg.Topic)...)
	if cfg.Incidents.Enabled {
		checks = append(checks, incidentPartitions)
		topics = append(topics, cfg.Incidents.Topic)
	}
	return service.Run(ctx, log, cfg.Service.HTTPAddr, reg, checks, func(ctx context.Context) error {
		if err := admin.EnsureTopics(ctx, topics...); err != nil {
			return err
		}
		dlq, err := kafkaio.NewDeadLetters(cfg.Kafka, cfg.DLQ.Name, "analyzer")
		if err != nil {
			return err
		}
		defer dlq.Close()
		dlq.OnRetry = func(attempt int, delay time.Duration, err error) {
			m.retries.WithLabelValues("dlq").Inc()
			log.Warn().Err(err).Int("attempt", attempt).Str("retry_in", delay.String()).Msg("dead-letter publish failed; retrying")
		}
		out.dlq = dlq
		w, err := kafkaio.NewWriter(cfg.Kafka, cfg.Alerts.Name, kafkaio.WriterOptions{})
		if err != nil {
			return err
		}
		defer w.Close()
		out.alerts = w
		aw, err := kafkaio.NewWriter(cfg.Kafka, cfg.ActionsTopic.Name, kafkaio.WriterOptions{})
		if err != nil {
			return err
		}
		defer aw.Close()
		actions, err := action.New(cfg.Actions, log.With().Str("topic", cfg.ActionsTopic.Name).Logger(), reg, auditWriter{aw})
		if err != nil {
			return err
		}
		out.actions = actions
		gc, err := kafkaio.NewGroupConsumer(cfg.Kafka, cfg.Group, log, reg)
		if err != nil {
			return err
		}
		defer gc.Close()
		setPartitions(gc.Check())
		log.Info().Str("topic", cfg.Group.Topic).Str("group", cfg.Group.Group).Str("bucket", writer.Bucket()).Msg("analyzing")
		// The executor outlives the partitions' drain, so that the events
		// its last batches publish are still handed over (then dropped and
		// audited as such if it has no time to run them).
		actx, stopActions := context.WithCancel(context.WithoutCancel(ctx))
		actionsDone := make(chan struct{})
		go func() { defer close(actionsDone); actions.Run(actx) }()
		defer func() { stopActions(); <-actionsDone }()
		g, ctx := errgroup.WithContext(ctx)
		if watcher != nil {
			g.Go(func() error { return watcher.Run(ctx, reload) })
		}
		if cfg.Incidents.Enabled {
			iw, err := kafkaio.NewWriter(cfg.Kafka, cfg.Incidents.Topic.Name, kafkaio.WriterOptions{})
			if err != nil {
				return err
			}
			defer iw.Close()
			stage := newIncidents(cfg.Incidents, &book, iw, writer, dlq, log, reg)
			gcfg := cfg.Incidents.Group
			gcfg.OnAssign = stage.assign
			ic, err := kafkaio.NewGroupConsumer(cfg.Kafka, gcfg, log, reg)
			if err != nil {
				return err
			}
			defer ic.Close()
			setIncidentPartitions(ic.Check())
			g.Go(func() error {
				return ic.Run(ctx, func(p int) (kafkaio.Handler, error) { return incidentHandler{stage, p}, nil })
			})
		}
		g.Go(func() error {
			return gc.Run(ctx, func(partition int) (kafkaio.Handler, error) {
				return &handler{out: out, dec: newDecoder(), eng: newEngine(&cfg.Analysis, params, book.Load()), rules: &book, now: time.Now,
					series: m.series.WithLabelValues(strconv.Itoa(partition))}, nil
			})
		})
		err = g.Wait()
		log.Info().Int64("points", out.analyzed.Load()).Int64("alerts", out.published.Load()).Msg("summary")
		return err
	})
}
