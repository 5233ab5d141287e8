package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/service"
)

// Handler processes a batch of messages fetched from one consumer group.
// Messages of one partition arrive in offset order. When Handle returns nil,
// every message in the batch is considered done (written, dead-lettered or
// deliberately dropped) and its offset is committed; on error nothing is
// committed and the consumer stops. Handle must honour ctx.
type Handler interface {
	Handle(ctx context.Context, batch []kafka.Message) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, batch []kafka.Message) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, batch []kafka.Message) error { return f(ctx, batch) }

// GroupConfig describes one consumer group's subscription and batching.
type GroupConfig struct {
	Topic        string
	Group        string
	BatchSize    int           // messages handed to the Handler at most at once
	BatchWait    time.Duration // longest a fetched message waits for its batch to fill
	DrainTimeout time.Duration // on shutdown, time allowed to handle and commit the last batch
}

// Validate reports every invalid setting, each naming its flag.
func (g GroupConfig) Validate() error {
	var errs []error
	if g.Topic == "" {
		errs = append(errs, errors.New("--topic is empty"))
	}
	if g.Group == "" {
		errs = append(errs, errors.New("--group is empty"))
	}
	if g.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("batch size %d: want ≥ 1", g.BatchSize))
	}
	if g.BatchWait <= 0 {
		errs = append(errs, fmt.Errorf("flush interval %s: want > 0", g.BatchWait))
	}
	if g.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--drain-timeout %s: want > 0", g.DrainTimeout))
	}
	return errors.Join(errs...)
}

type consumerMetrics struct {
	fetched      prometheus.Counter
	committed    prometheus.Counter
	commitErrors prometheus.Counter
	batchSeconds prometheus.Histogram
	lag          prometheus.Gauge
}

func newConsumerMetrics(reg prometheus.Registerer, g GroupConfig) consumerMetrics {
	labels := prometheus.Labels{"topic": g.Topic, "group": g.Group}
	m := consumerMetrics{
		fetched: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_kafka_messages_fetched_total",
			Help: "Messages fetched from Kafka.", ConstLabels: labels}),
		committed: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_kafka_messages_committed_total",
			Help: "Messages whose offsets were committed after handling.", ConstLabels: labels}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_kafka_commit_errors_total",
			Help: "Offset commits that failed (their messages will be redelivered).", ConstLabels: labels}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "metricpipe_kafka_batch_handle_seconds",
			Help: "Time to handle one batch, writes included.", ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "metricpipe_kafka_consumer_lag",
			Help: "Messages between the last fetched offset and the partition end, as last reported by the reader.", ConstLabels: labels}),
	}
	reg.MustRegister(m.fetched, m.committed, m.commitErrors, m.batchSeconds, m.lag)
	return m
}

// GroupConsumer consumes a topic as a member of a consumer group and commits
// offsets only after its Handler finished with them: at-least-once delivery.
type GroupConsumer struct {
	reader  *kafka.Reader
	cfg     GroupConfig
	log     zerolog.Logger
	metrics consumerMetrics
}

// NewGroupConsumer joins cfg.Group on cfg.Topic. A group with no committed
// offset starts at the oldest message, so nothing produced before the first
// start is skipped. The caller must Close it.
func NewGroupConsumer(kc Config, cfg GroupConfig, log zerolog.Logger, reg prometheus.Registerer) (*GroupConsumer, error) {
	if err := errors.Join(kc.Validate(), cfg.Validate()); err != nil {
		return nil, err
	}
	dialer, err := kc.Dialer()
	if err != nil {
		return nil, err
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     kc.Brokers,
		GroupID:     cfg.Group,
		Topic:       cfg.Topic,
		Dialer:      dialer,
		StartOffset: kafka.FirstOffset,
		// Commits are synchronous and explicit (CommitInterval 0): an offset
		// is committed only after the Handler finished with its message.
		CommitInterval: 0,
		// The broker holds an empty fetch for MaxWait less kafka-go's RTT
		// allowance (a quarter of it); shorter waits leave too little margin
		// and end in read timeouts on a busy host.
		MaxWait: 2 * time.Second,
		// Without these, kafka-go's defaults hold a new member's first fetch
		// for seconds; they only bound waits, not correctness.
		HeartbeatInterval: 1 * time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  1 * time.Second,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    500 * time.Millisecond,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Warn().Str("topic", cfg.Topic).Msgf("kafka reader: "+msg, args...)
		}),
	})
	return &GroupConsumer{
		reader:  r,
		cfg:     cfg,
		log:     log.With().Str("topic", cfg.Topic).Str("group", cfg.Group).Logger(),
		metrics: newConsumerMetrics(reg, cfg),
	}, nil
}

// Run fetches, batches and hands messages to h, committing each batch after
// h succeeded, until ctx is cancelled. Then it stops fetching, lets the batch
// in hand finish, hands h what was already fetched and commits it, all within
// DrainTimeout, and returns nil. It returns an error when h fails or the
// reader fails for good; nothing unhandled is ever committed.
func (c *GroupConsumer) Run(ctx context.Context, h Handler) error {
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	// Handling and committing outlive ctx by up to DrainTimeout, so a stop
	// requested mid-batch still ends with the batch written and committed.
	workCtx, stopWork := service.WithDrain(ctx, c.cfg.DrainTimeout)
	defer stopWork()

	// A bounded queue between the fetcher and the handler: when the handler
	// is slow (InfluxDB down), the fetcher blocks and Kafka holds the rest.
	msgs := make(chan kafka.Message, c.cfg.BatchSize)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		for {
			m, err := c.reader.FetchMessage(fetchCtx)
			if err != nil {
				if fetchCtx.Err() == nil {
					fetchErr <- err
				}
				return
			}
			c.metrics.fetched.Inc()
			select {
			case msgs <- m:
			case <-fetchCtx.Done():
				return
			}
		}
	}()

	batch := make([]kafka.Message, 0, c.cfg.BatchSize)
	timer := time.NewTimer(c.cfg.BatchWait)
	timer.Stop()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				msgs = nil // fetcher stopped: wait for its error or ctx
				continue
			}
			if len(batch) == 0 {
				timer.Reset(c.cfg.BatchWait)
			}
			batch = append(batch, m)
			if len(batch) < c.cfg.BatchSize {
				continue
			}
			timer.Stop()
		case <-timer.C:
		case err := <-fetchErr:
			return fmt.Errorf("fetch from %q: %w", c.cfg.Topic, err)
		case <-ctx.Done():
			stopFetch()
			return c.drain(workCtx, h, batch, msgs)
		}
		if err := c.handle(workCtx, h, batch); err != nil {
			return err
		}
		batch = batch[:0]
	}
}

// drain handles what was fetched before the stop, so a stop leaves no
// fetched work undone, and commits it.
func (c *GroupConsumer) drain(ctx context.Context, h Handler, batch []kafka.Message, msgs <-chan kafka.Message) error {
	if msgs != nil {
		for m := range msgs { // closed by the fetcher once it sees the stop
			batch = append(batch, m)
		}
	}
	if len(batch) > 0 {
		c.log.Info().Int("messages", len(batch)).Msg("draining fetched messages before stopping")
	}
	for len(batch) > 0 {
		n := min(len(batch), c.cfg.BatchSize)
		if err := c.handle(ctx, h, batch[:n]); err != nil {
			return fmt.Errorf("drain on shutdown: %w", err)
		}
		batch = batch[n:]
	}
	return nil
}

func (c *GroupConsumer) handle(ctx context.Context, h Handler, batch []kafka.Message) error {
	if len(batch) == 0 {
		return nil
	}
	start := time.Now()
	if err := h.Handle(ctx, batch); err != nil {
		return fmt.Errorf("handle %d messages: %w", len(batch), err)
	}
	c.metrics.batchSeconds.Observe(time.Since(start).Seconds())
	// A failed commit loses nothing: the messages are delivered again and
	// rewritten identically. So it is counted and logged, not fatal.
	if err := c.reader.CommitMessages(ctx, batch...); err != nil {
		c.metrics.commitErrors.Inc()
		c.log.Warn().Err(err).Int("messages", len(batch)).Msg("offset commit failed; messages will be redelivered")
		return nil
	}
	c.metrics.committed.Add(float64(len(batch)))
	c.metrics.lag.Set(float64(c.reader.Stats().Lag))
	return nil
}

// Close leaves the group and closes the connections.
func (c *GroupConsumer) Close() error {
	if err := c.reader.Close(); err != nil {
		return fmt.Errorf("close reader of %q: %w", c.cfg.Topic, err)
	}
	return nil
}
