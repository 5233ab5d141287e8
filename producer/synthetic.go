package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/service"
)

// syntheticConfig configures `producer synthetic`.
type syntheticConfig struct {
	Service     service.Config
	Kafka       kafkaio.Config
	Topic       kafkaio.TopicSpec
	Series      int
	Rate        float64 // points/s over all series; 0: as fast as possible
	Count       int64   // points to send; 0: no limit
	Duration    time.Duration
	Interval    time.Duration // event-time step between two points of a series
	Seed        uint64
	Measurement string
	Format      point.Format
	BatchSize   int
	Linger      time.Duration
}

func (c syntheticConfig) Validate() error {
	errs := []error{c.Service.Validate(), c.Kafka.Validate(), c.Topic.Validate()}
	if c.Series < 1 {
		errs = append(errs, fmt.Errorf("--series %d: want ≥ 1", c.Series))
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		errs = append(errs, fmt.Errorf("--rate %v: want a finite value ≥ 0", c.Rate))
	}
	if c.Count < 0 {
		errs = append(errs, fmt.Errorf("--count %d: want ≥ 0", c.Count))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("--duration %s: want ≥ 0", c.Duration))
	}
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("--interval %s: want > 0", c.Interval))
	}
	if c.Measurement == "" {
		errs = append(errs, errors.New("--measurement is empty"))
	}
	if c.Format == 0 {
		errs = append(errs, errors.New("--format: want line or json"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("--batch-size %d: want ≥ 1", c.BatchSize))
	}
	if c.Linger < 0 {
		errs = append(errs, fmt.Errorf("--linger %s: want ≥ 0", c.Linger))
	}
	return errors.Join(errs...)
}

func syntheticCommand(stderr io.Writer) *cli.Command {
	env := service.EnvVars
	flags := []cli.Flag{
		&cli.IntFlag{Name: "series", Value: 10, Usage: "number of series", EnvVars: env("series")},
		&cli.Float64Flag{Name: "rate", Value: 100, Usage: "points per second over all series (0: as fast as possible)", EnvVars: env("rate")},
		&cli.Int64Flag{Name: "count", Usage: "stop after this many points (0: no limit)", EnvVars: env("count")},
		&cli.DurationFlag{Name: "duration", Usage: "stop after this long (0: no limit)", EnvVars: env("duration")},
		&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "event-time step between two points of one series", EnvVars: env("interval")},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed; the same seed gives the same values", EnvVars: env("seed")},
		&cli.StringFlag{Name: "measurement", Value: "synthetic", Usage: "measurement name of the points", EnvVars: env("measurement")},
		&cli.StringFlag{Name: "format", Value: "line", Usage: "wire format: line (InfluxDB line protocol) or json", EnvVars: env("format")},
		&cli.IntFlag{Name: "batch-size", Value: 1000, Usage: "messages per produce request at most", EnvVars: env("batch-size")},
		&cli.DurationFlag{Name: "linger", Value: 10 * time.Millisecond, Usage: "time a produce batch waits to fill", EnvVars: env("linger")},
	}
	flags = append(flags, kafkaio.TopicFlags()...)
	flags = append(flags, kafkaio.Flags("metricpipe-producer")...)
	flags = append(flags, service.Flags("127.0.0.1:9101")...)
	return &cli.Command{
		Name:  "synthetic",
		Usage: "generate synthetic series (seasonality, trend, noise, random walk)",
		Flags: flags,
		Action: func(c *cli.Context) error {
			kc, kerr := kafkaio.ConfigFromCLI(c)
			cfg := syntheticConfig{
				Service:     service.ConfigFromCLI(c),
				Kafka:       kc,
				Topic:       kafkaio.TopicSpecFromCLI(c, c.String("topic")),
				Series:      c.Int("series"),
				Rate:        c.Float64("rate"),
				Count:       c.Int64("count"),
				Duration:    c.Duration("duration"),
				Interval:    c.Duration("interval"),
				Seed:        c.Uint64("seed"),
				Measurement: c.String("measurement"),
				Format:      parseFormat(c.String("format")),
				BatchSize:   c.Int("batch-size"),
				Linger:      c.Duration("linger"),
			}
			if err := errors.Join(kerr, cfg.Validate()); err != nil {
				return err
			}
			log := service.NewLogger(stderr, cfg.Service, "producer")
			return runSynthetic(c.Context, cfg, log)
		},
	}
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

type producerMetrics struct {
	points, bytes, batches, errors prometheus.Counter
	latency                        prometheus.Histogram
}

func newProducerMetrics(reg prometheus.Registerer) producerMetrics {
	m := producerMetrics{
		points:  prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_producer_points_sent_total", Help: "Points acknowledged by Kafka."}),
		bytes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_producer_bytes_sent_total", Help: "Message value bytes acknowledged by Kafka."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_producer_batches_total", Help: "Produce batches acknowledged by Kafka."}),
		errors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_producer_errors_total", Help: "Produce attempts that failed (retried)."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "metricpipe_producer_produce_seconds", Help: "Time from handing a batch to Kafka to its acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	reg.MustRegister(m.points, m.bytes, m.batches, m.errors, m.latency)
	return m
}

func runSynthetic(ctx context.Context, cfg syntheticConfig, log zerolog.Logger) error {
	reg := service.NewRegistry()
	metrics := newProducerMetrics(reg)
	admin, err := kafkaio.NewAdmin(cfg.Kafka)
	if err != nil {
		return err
	}
	checks := []service.Check{{Name: "kafka", Probe: admin.Ping}}
	return service.Run(ctx, log, cfg.Service.HTTPAddr, reg, checks, func(ctx context.Context) error {
		if err := admin.EnsureTopics(ctx, cfg.Topic); err != nil {
			return err
		}
		w, err := kafkaio.NewWriter(cfg.Kafka, cfg.Topic.Name, kafkaio.WriterOptions{BatchSize: cfg.BatchSize, Linger: cfg.Linger})
		if err != nil {
			return err
		}
		defer w.Close()
		gen := newGenerator(cfg)
		start := time.Now()
		sent, err := produce(ctx, cfg, gen, w, metrics, log)
		log.Info().Int64("points", sent).Dur("elapsed", time.Since(start)).Str("topic", cfg.Topic.Name).Msg("synthetic load done")
		return err
	})
}

// produce sends generated points in batches until the count or duration is
// reached or ctx is done. A batch handed to Kafka is retried until
// acknowledged, until drainTimeout after ctx ended at the latest.
func produce(ctx context.Context, cfg syntheticConfig, gen *generator, w *kafka.Writer, m producerMetrics, log zerolog.Logger) (int64, error) {
	var (
		sent    int64
		arena   []byte
		msgs    = make([]kafka.Message, 0, cfg.BatchSize)
		pt      point.Point
		headers = []kafka.Header{{Key: kafkaio.HeaderContentType, Value: []byte(cfg.Format.ContentType())}} // shared, read-only
		started = time.Now()
	)
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	// A batch handed to Kafka is finished even when a stop arrives meanwhile.
	sendCtx, stopSend := service.WithDrain(ctx, drainTimeout)
	defer stopSend()
	for ctx.Err() == nil && (cfg.Count == 0 || sent < cfg.Count) {
		n := cfg.BatchSize
		if cfg.Count > 0 {
			n = int(min(int64(n), cfg.Count-sent))
		}
		if cfg.Rate > 0 {
			// Batches of at most 100 ms worth of points, each sent when its
			// first point is due: the schedule, not per-batch sleeps, keeps
			// the rate however long the writes take.
			n = max(1, min(n, int(cfg.Rate/10)))
			due := started.Add(time.Duration(float64(sent) / cfg.Rate * float64(time.Second)))
			if retry.Sleep(ctx, time.Until(due)) != nil {
				break
			}
		}
		msgs, arena = msgs[:0], arena[:0]
		for range n {
			gen.next(&pt)
			keyStart := len(arena)
			arena = point.AppendSeriesKey(arena, &pt)
			valStart := len(arena)
			if cfg.Format == point.FormatJSON {
				arena = point.AppendJSON(arena, &pt)
			} else {
				arena = point.AppendLine(arena, &pt)
			}
			// Key and value point into arena; when append moves arena, the
			// old array keeps the bytes already sliced, so they stay valid.
			msgs = append(msgs, kafka.Message{
				Key:     arena[keyStart:valStart:valStart],
				Value:   arena[valStart:len(arena):len(arena)],
				Headers: headers,
			})
		}
		if err := send(sendCtx, w, msgs, m, log); err != nil {
			return sent, err
		}
		sent += int64(n)
	}
	return sent, nil
}

// send writes one batch, retrying until Kafka acknowledges it or ctx ends.
func send(ctx context.Context, w *kafka.Writer, msgs []kafka.Message, m producerMetrics, log zerolog.Logger) error {
	start := time.Now()
	err := retry.Do(ctx, retry.DefaultBackoff(), func(ctx context.Context) error {
		return w.WriteMessages(ctx, msgs...)
	}, func(attempt int, delay time.Duration, err error) {
		m.errors.Inc()
		log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", delay).Int("messages", len(msgs)).Msg("produce failed; retrying")
	})
	if err != nil {
		return fmt.Errorf("produce %d messages to %q: %w", len(msgs), w.Topic, err)
	}
	m.latency.Observe(time.Since(start).Seconds())
	m.batches.Inc()
	m.points.Add(float64(len(msgs)))
	for i := range msgs {
		m.bytes.Add(float64(len(msgs[i].Value)))
	}
	return nil
}

// drainTimeout bounds how long a batch already handed to Kafka may take to be
// acknowledged after a stop was requested.
const drainTimeout = 30 * time.Second

// generator produces the synthetic series: each a level with a daily-like
// seasonal swing, a slow trend, a random walk and noise, reproducible from the
// seed. Series take turns, so every series advances at the same pace.
type generator struct {
	rng         *rand.Rand
	measurement string
	interval    time.Duration
	start       int64
	series      []seriesState
	turn        int
}

type seriesState struct {
	tags               []point.Tag
	level, amp, period float64 // period in points
	trend, walk, noise float64
	step               int64
	fields             [1]point.Field
}

func newGenerator(cfg syntheticConfig) *generator {
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	g := &generator{
		rng:         rng,
		measurement: cfg.Measurement,
		interval:    cfg.Interval,
		start:       time.Now().Truncate(cfg.Interval).UnixNano(),
		series:      make([]seriesState, cfg.Series),
	}
	for i := range g.series {
		s := &g.series[i]
		s.tags = []point.Tag{{Key: "host", Value: "host-" + strconv.Itoa(i%100)}, {Key: "series", Value: strconv.Itoa(i)}}
		s.level = 10 + rng.Float64()*90
		s.amp = s.level * (0.05 + rng.Float64()*0.25)
		s.period = float64(24*time.Hour/cfg.Interval) / (1 + float64(rng.IntN(24))) // a day, or a few hours
		s.trend = (rng.Float64() - 0.5) * s.level * 1e-4
		s.noise = s.level * 0.01
	}
	return g
}

// next fills p with the next point; p's slices are reused between calls.
func (g *generator) next(p *point.Point) {
	s := &g.series[g.turn]
	g.turn = (g.turn + 1) % len(g.series)
	x := float64(s.step)
	s.walk += g.rng.NormFloat64() * s.noise * 0.3
	v := s.level + s.amp*math.Sin(2*math.Pi*x/s.period) + s.trend*x + s.walk + g.rng.NormFloat64()*s.noise
	s.fields[0] = point.Field{Key: "value", Value: v}
	p.Measurement = g.measurement
	p.Tags = s.tags
	p.Fields = s.fields[:]
	p.Time = g.start + s.step*int64(g.interval)
	s.step++
}
