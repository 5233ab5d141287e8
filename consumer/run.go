package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/service"
)

// config is the consumer's whole configuration.
type config struct {
	Service service.Config
	Kafka   kafkaio.Config
	Influx  influx.Config
	Topic   kafkaio.TopicSpec // the raw topic, created when missing
	DLQ     kafkaio.TopicSpec
	Group   kafkaio.GroupConfig
}

func (c config) Validate() error {
	return errors.Join(c.Service.Validate(), c.Kafka.Validate(), c.Influx.Validate(),
		c.Topic.Validate(), c.DLQ.Validate(), c.Group.Validate())
}

type metrics struct {
	pointsIn, pointsWritten prometheus.Counter
	deadLettered            *prometheus.CounterVec
	retries                 prometheus.Counter
	writeSeconds            prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		pointsIn:      prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_consumer_points_in_total", Help: "Points decoded from Kafka messages."}),
		pointsWritten: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_consumer_points_written_total", Help: "Points accepted by InfluxDB."}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metricpipe_consumer_dead_lettered_total",
			Help: "Messages sent to the dead-letter topic, by reason (decode, rejected)."}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_consumer_write_retries_total", Help: "InfluxDB writes retried after a transient failure."}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "metricpipe_consumer_write_seconds", Help: "Latency of one InfluxDB batch write, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
	}
	reg.MustRegister(m.pointsIn, m.pointsWritten, m.deadLettered, m.retries, m.writeSeconds)
	return m
}

func run(ctx context.Context, cfg config, log zerolog.Logger) error {
	reg := service.NewRegistry()
	admin, err := kafkaio.NewAdmin(cfg.Kafka)
	if err != nil {
		return err
	}
	sink, err := influx.NewSink(cfg.Influx)
	if err != nil {
		return err
	}
	defer sink.Close()
	out := &output{sink: sink, backoff: retry.DefaultBackoff(), metrics: newMetrics(reg), log: log,
		// Per-message warnings are sampled; the counters carry the totals.
		hotLog: log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Second})}
	out.writable.Store(true)
	checks := []service.Check{
		{Name: "kafka", Probe: admin.Ping},
		{Name: "influxdb", Probe: func(ctx context.Context) error {
			if !out.writable.Load() {
				return errors.New("writes are failing and being retried")
			}
			return sink.Ping(ctx)
		}},
	}
	return service.Run(ctx, log, cfg.Service.HTTPAddr, reg, checks, func(ctx context.Context) error {
		if err := admin.EnsureTopics(ctx, cfg.Topic, cfg.DLQ); err != nil {
			return err
		}
		dlq, err := kafkaio.NewDeadLetters(cfg.Kafka, cfg.DLQ.Name, "consumer")
		if err != nil {
			return err
		}
		defer dlq.Close()
		out.dlq = dlq
		gc, err := kafkaio.NewGroupConsumer(cfg.Kafka, cfg.Group, log, reg)
		if err != nil {
			return err
		}
		defer gc.Close()
		log.Info().Str("topic", cfg.Group.Topic).Str("group", cfg.Group.Group).Str("bucket", sink.Bucket()).Msg("consuming")
		return gc.Run(ctx, func(int) kafkaio.Handler { return &handler{out: out} })
	})
}

// output is where every partition's handler writes: InfluxDB, and the
// dead-letter topic for what cannot be written. Safe for concurrent use.
type output struct {
	sink     *influx.Sink
	dlq      *kafkaio.DeadLetters
	backoff  retry.Backoff
	metrics  metrics
	log      zerolog.Logger
	hotLog   zerolog.Logger
	writable atomic.Bool // false while writes are being retried: /readyz reports it
}

// handler turns a batch of one partition's messages into one InfluxDB write.
// Messages that cannot be decoded, and those whose points InfluxDB rejects
// for good, go to the dead-letter topic; everything else is retried until
// written. One handler per partition assignment; not safe for concurrent use.
type handler struct {
	out *output
	dec point.Decoder

	pts   []point.Point // reused across batches
	spans []span
}

// span is the points one message decoded to: pts[from:to] came from batch[msg].
type span struct{ msg, from, to int }

func (h *handler) Handle(ctx context.Context, batch []kafka.Message) error {
	h.pts, h.spans = h.pts[:0], h.spans[:0]
	for i := range batch {
		m := &batch[i]
		from := len(h.pts)
		pts, err := h.dec.Decode(h.pts, m.Value, kafkaio.HeaderValue(m, kafkaio.HeaderContentType))
		if err != nil {
			if err := h.out.deadLetter(ctx, m, "decode", err); err != nil {
				return err
			}
			continue
		}
		for j := from; j < len(pts); j++ {
			if pts[j].Time == 0 {
				pts[j].Time = m.Time.UnixNano()
			}
		}
		h.pts = pts
		h.spans = append(h.spans, span{msg: i, from: from, to: len(pts)})
	}
	h.out.metrics.pointsIn.Add(float64(len(h.pts)))
	err := h.out.write(ctx, h.pts)
	if err == nil || !retry.IsPermanent(err) {
		return err
	}
	// InfluxDB refused the batch for good (a field type conflict, say):
	// find the messages responsible by writing each alone.
	h.out.log.Warn().Err(err).Int("messages", len(h.spans)).Msg("batch rejected; writing message by message to isolate the bad points")
	for _, s := range h.spans {
		err := h.out.write(ctx, h.pts[s.from:s.to])
		if err != nil && retry.IsPermanent(err) {
			err = h.out.deadLetter(ctx, &batch[s.msg], "rejected", err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// write writes pts, retrying transient failures until ctx is done. A
// permanent rejection comes back marked retry.Permanent.
func (o *output) write(ctx context.Context, pts []point.Point) error {
	if len(pts) == 0 {
		return nil
	}
	start := time.Now()
	err := retry.Do(ctx, o.backoff, func(ctx context.Context) error {
		err := o.sink.Write(ctx, pts)
		if err != nil && !influx.IsRetryable(err) {
			return retry.Permanent(err)
		}
		return err
	}, func(attempt int, delay time.Duration, err error) {
		o.writable.Store(false)
		o.metrics.retries.Inc()
		o.log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", delay).Int("points", len(pts)).Msg("influxdb write failed; retrying")
	})
	if err != nil {
		return err
	}
	o.writable.Store(true)
	o.metrics.writeSeconds.Observe(time.Since(start).Seconds())
	o.metrics.pointsWritten.Add(float64(len(pts)))
	return nil
}

// deadLetter publishes m with its reason, retrying until the dead-letter
// topic took it: the message's offset must not be committed before that.
func (o *output) deadLetter(ctx context.Context, m *kafka.Message, kind string, reason error) error {
	o.hotLog.Warn().Err(reason).Str("topic", m.Topic).Int("partition", m.Partition).Int64("offset", m.Offset).Str("reason", kind).Msg("dead-lettering message")
	err := retry.Do(ctx, o.backoff, func(ctx context.Context) error {
		return o.dlq.Publish(ctx, *m, reason)
	}, func(attempt int, delay time.Duration, err error) {
		o.log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", delay).Msg("dead-letter publish failed; retrying")
	})
	if err != nil {
		return fmt.Errorf("dead-letter: %w", err)
	}
	o.metrics.deadLettered.WithLabelValues(kind).Inc()
	return nil
}
