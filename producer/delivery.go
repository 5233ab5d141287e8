package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/producer/client"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/service"
)

// sink is where a source puts its points: the Kafka producer.
type sink interface {
	// Send queues p; see client.Producer.Send.
	Send(ctx context.Context, p point.Point) error
	// SendBatch sends pts and returns once Kafka acknowledged them.
	SendBatch(ctx context.Context, pts []point.Point) error
}

// deliveryConfig is how every source delivers to Kafka.
type deliveryConfig struct {
	Service service.Config
	Topic   kafkaio.TopicSpec
	Client  client.Config
}

func (d deliveryConfig) Validate() error {
	return errors.Join(d.Service.Validate(), d.Topic.Validate(), d.Client.Validate())
}

// deliveryFlags are the flags every source shares.
func deliveryFlags() []cli.Flag {
	const cat = "Delivery"
	env := service.EnvVars
	flags := []cli.Flag{
		&cli.StringFlag{Name: "format", Value: "line", Usage: "wire format: line (InfluxDB line protocol) or json", EnvVars: env("format"), Category: cat},
		&cli.IntFlag{Name: "batch-size", Value: 1000, Usage: "messages per produce request at most", EnvVars: env("batch-size"), Category: cat},
		&cli.DurationFlag{Name: "linger", Value: 10 * time.Millisecond, Usage: "time a produce batch waits to fill", EnvVars: env("linger"), Category: cat},
		&cli.IntFlag{Name: "buffer", Value: 100_000, Usage: "points sent but not yet acknowledged by Kafka, at most", EnvVars: env("buffer"), Category: cat},
		&cli.BoolFlag{Name: "drop-when-full", Usage: "drop (and count) points when the buffer is full instead of waiting", EnvVars: env("drop-when-full"), Category: cat},
	}
	flags = append(flags, kafkaio.TopicFlags()...)
	flags = append(flags, kafkaio.Flags("metricpipe-producer")...)
	return append(flags, service.Flags("127.0.0.1:9101")...)
}

// deliveryConfigFromCLI reads deliveryFlags; its error comes with the rest
// filled in, to be reported with Validate's.
func deliveryConfigFromCLI(c *cli.Context) (deliveryConfig, error) {
	kc, err := kafkaio.ConfigFromCLI(c)
	format := parseFormat(c.String("format"))
	if format == 0 {
		err = errors.Join(err, fmt.Errorf("--format %q: want line or json", c.String("format")))
	}
	return deliveryConfig{
		Service: service.ConfigFromCLI(c),
		Topic:   kafkaio.TopicSpecFromCLI(c, c.String("topic")),
		Client: client.Config{Kafka: kc, Topic: c.String("topic"), Format: format, Batch: c.Int("batch-size"),
			Linger: c.Duration("linger"), Buffer: c.Int("buffer"), DropWhenFull: c.Bool("drop-when-full")},
	}, err
}

func parseFormat(s string) point.Format {
	switch s {
	case "line":
		return point.FormatLine
	case "json":
		return point.FormatJSON
	}
	return 0
}

// source produces points into out until it is done or ctx ends. reg is the
// service's registry, for the source's own metrics; ready reports whether
// Kafka is reachable (for sources that answer clients).
type source func(ctx context.Context, out sink, reg *prometheus.Registry, ready func(context.Context) error) error

// runSource runs src with a Kafka producer and the service's HTTP endpoints,
// then flushes what src sent (within a drain deadline) before returning.
func runSource(ctx context.Context, cfg deliveryConfig, log zerolog.Logger, name string, src source) error {
	reg := service.NewRegistry()
	admin, err := kafkaio.NewAdmin(cfg.Client.Kafka)
	if err != nil {
		return err
	}
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "metricpipe_producer_produce_seconds",
		Help: "Time from a point's Send to Kafka's acknowledgement of its batch.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
	reg.MustRegister(latency)
	hot := log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Second})
	p, err := client.New(cfg.Client,
		client.WithLatencyObserver(func(d time.Duration) { latency.Observe(d.Seconds()) }),
		client.WithErrorHandler(func(err error, points int) {
			hot.Error().Err(err).Int("points", points).Msg("points not delivered")
		}))
	if err != nil {
		return err
	}
	registerStats(reg, p)
	checks := []service.Check{{Name: "kafka", Probe: admin.Ping}}
	return service.Run(ctx, log, cfg.Service.HTTPAddr, reg, checks, func(ctx context.Context) error {
		if err := admin.EnsureTopics(ctx, cfg.Topic); err != nil {
			return err
		}
		start := time.Now()
		srcErr := src(ctx, p, reg, admin.Ping)
		// What was sent is delivered even after a stop, within the drain time.
		drainCtx, cancel := service.WithDrain(ctx, drainTimeout)
		defer cancel()
		closeErr := p.Close(drainCtx)
		st := p.Stats()
		log.Info().Str("source", name).Int64("points", st.Acked).Int64("failed", st.Failed).Int64("dropped", st.Dropped).
			Dur("elapsed", time.Since(start)).Str("topic", cfg.Topic.Name).Msg("source done")
		return errors.Join(srcErr, closeErr)
	})
}

// drainTimeout bounds how long points already sent may take to be
// acknowledged after a stop was requested.
const drainTimeout = 30 * time.Second

// registerStats exposes the producer's counters.
func registerStats(reg prometheus.Registerer, p *client.Producer) {
	counter := func(name, help string, f func(client.Stats) int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "metricpipe_producer_" + name, Help: help},
			func() float64 { return float64(f(p.Stats())) }))
	}
	counter("points_sent_total", "Points acknowledged by Kafka.", func(s client.Stats) int64 { return s.Acked })
	counter("points_failed_total", "Points Kafka did not take after retries.", func(s client.Stats) int64 { return s.Failed })
	counter("points_dropped_total", "Points dropped because the buffer was full (--drop-when-full).", func(s client.Stats) int64 { return s.Dropped })
	counter("bytes_sent_total", "Message bytes acknowledged by Kafka.", func(s client.Stats) int64 { return s.BytesAcked })
	counter("batches_total", "Produce batches acknowledged by Kafka.", func(s client.Stats) int64 { return s.Batches })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "metricpipe_producer_buffered_points",
		Help: "Points sent but not yet acknowledged (bounded by --buffer)."}, func() float64 { return float64(p.Stats().Buffered) }))
}
