package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/movavg"
	"github.com/metricpipe/metricpipe/shared/service"
)

// config is the consumer's whole configuration.
type config struct {
	Service   service.Config
	Kafka     kafkaio.Config
	Influx    influx.Config
	Topic     kafkaio.TopicSpec // the raw topic, created when missing
	DLQ       kafkaio.TopicSpec
	Group     kafkaio.GroupConfig
	Stage     movavg.Config
	MaxFuture time.Duration // points further ahead of their message time skip the stage
}

func (c config) Validate() error {
	errs := []error{c.Service.Validate(), c.Kafka.Validate(), c.Influx.Validate(),
		c.Topic.Validate(), c.DLQ.Validate(), c.Group.Validate(), c.Stage.Validate()}
	if c.MaxFuture <= 0 {
		errs = append(errs, fmt.Errorf("--max-future %s: want > 0", c.MaxFuture))
	}
	return errors.Join(errs...)
}

type metrics struct {
	pointsIn, pointsWritten, derivedWritten prometheus.Counter
	fieldValues                             prometheus.Counter // of the raw points' lines, derived fields merged in
	fieldsPerPoint                          prometheus.Gauge
	deadLettered                            *prometheus.CounterVec
	series                                  *prometheus.GaugeVec
	untracked, droppedLate, expired, future prometheus.Counter
	derivedRefused                          prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_consumer_" + name, Help: help})
	}
	m := metrics{
		pointsIn:       counter("points_in_total", "Points decoded from Kafka messages."),
		pointsWritten:  counter("points_written_total", "Raw points accepted by InfluxDB."),
		derivedWritten: counter("derived_points_written_total", "Moving-average and rollup points accepted by InfluxDB."),
		fieldValues:    counter("field_values_written_total", "Field values of the raw points' lines written, their moving averages included: InfluxDB's cost follows this."),
		fieldsPerPoint: prometheus.NewGauge(prometheus.GaugeOpts{Name: "metricpipe_consumer_field_values_per_point",
			Help: "Field values written per raw point in the last batch, moving averages included (see --derive-fields)."}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metricpipe_consumer_dead_lettered_total",
			Help: "Messages sent to the dead-letter topic, by reason (decode, rejected)."}, []string{"reason"}),
		series: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "metricpipe_consumer_series_tracked",
			Help: "Series-fields whose moving averages and rollups are tracked, per partition."}, []string{"partition"}),
		untracked:      counter("points_untracked_total", "Points written raw only because --max-series series-fields were tracked."),
		droppedLate:    counter("points_dropped_late_total", "Points too late for their rollup window (still written raw and averaged)."),
		expired:        counter("series_expired_total", "Series-field states dropped after --series-idle-timeout."),
		future:         counter("points_future_total", "Points stamped beyond --max-future ahead of their message, kept out of the stage."),
		derivedRefused: counter("derived_points_rejected_total", "Derived points InfluxDB refused (a field type conflict, say), dead-lettered as line protocol."),
	}
	reg.MustRegister(m.pointsIn, m.pointsWritten, m.derivedWritten, m.fieldValues, m.fieldsPerPoint, m.deadLettered,
		m.series, m.untracked, m.droppedLate, m.expired, m.future, m.derivedRefused)
	return m
}

// run runs the consumer until ctx is cancelled, exposing its metrics in reg.
func run(ctx context.Context, cfg config, log zerolog.Logger, reg *prometheus.Registry) error {
	admin, err := kafkaio.NewAdmin(cfg.Kafka)
	if err != nil {
		return err
	}
	sink, err := influx.NewSink(cfg.Influx)
	if err != nil {
		return err
	}
	defer sink.Close()
	m := newMetrics(reg)
	writer := influx.NewWriter(sink, log, reg, "consumer")
	out := &output{writer: writer, metrics: m, log: log,
		// Per-message warnings are sampled; the counters carry the totals.
		hotLog: log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Second})}
	partitions, setPartitions := service.Pending("kafka partitions")
	checks := []service.Check{{Name: "kafka", Probe: admin.Ping}, writer.Check(), partitions}
	return service.Run(ctx, log, cfg.Service.HTTPAddr, reg, checks, func(ctx context.Context) error {
		if err := admin.EnsureTopics(ctx, append([]kafkaio.TopicSpec{cfg.Topic, cfg.DLQ}, cfg.Group.Checkpoints.Topics(cfg.Topic)...)...); err != nil {
			return err
		}
		dlq, err := kafkaio.NewDeadLetters(cfg.Kafka, cfg.DLQ.Name, "consumer")
		if err != nil {
			return err
		}
		defer dlq.Close()
		dlq.OnRetry = func(attempt int, delay time.Duration, err error) {
			log.Warn().Err(err).Int("attempt", attempt).Str("retry_in", delay.String()).Msg("dead-letter publish failed; retrying")
		}
		out.dlq = dlq
		gc, err := kafkaio.NewGroupConsumer(cfg.Kafka, cfg.Group, log, reg)
		if err != nil {
			return err
		}
		defer gc.Close()
		setPartitions(gc.Check())
		log.Info().Str("topic", cfg.Group.Topic).Str("group", cfg.Group.Group).Str("bucket", writer.Bucket()).Msg("consuming")
		return gc.Run(ctx, func(partition int) (kafkaio.Handler, error) {
			return newHandler(out, cfg.Stage, cfg.MaxFuture, partition)
		})
	})
}
