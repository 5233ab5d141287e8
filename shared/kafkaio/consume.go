package kafkaio

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/service"
)

// Handler processes a batch of messages fetched from one consumer group.
// Messages of one partition arrive in offset order. When Handle returns nil,
// every message in the batch is considered done (written, dead-lettered or
// deliberately dropped) and its offset is committed; on error nothing is
// committed and the consumer stops. Handle must honour ctx. The batch, and
// the bytes of its messages' keys, values and headers, are valid until
// Handle returns: they share the fetch response's buffer, which is reused.
// What Handle decodes may refer to them (point.Decoder.Alias) while it
// runs; what it keeps longer, it must copy.
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
	// IdleAfter is how long a partition may go without a message before an
	// Idler handler is told so, and how often again while it stays quiet
	// (0: never).
	IdleAfter time.Duration
	// WarmUp is how far back in message time, before a partition's
	// committed offset, a Warmer handler is given the messages an earlier
	// owner already handled (0: none).
	WarmUp time.Duration
	// Fetch is what a partition does with offsets out of range, corrupt
	// batches and transactions.
	Fetch FetchPolicy
	// Checkpoints saves a Checkpointer handler's state, and restores it
	// when a partition is assigned.
	Checkpoints CheckpointConfig
	// SingleOwner assigns every partition to one member of the group, for
	// handlers that must see the whole topic; the others stand by.
	SingleOwner bool
	// OnAssign, when set, is told the partitions of each assignment before
	// their handlers start: handlers sharing state across partitions can
	// wait for all of them (after their Warm) before acting.
	OnAssign func(partitions []int)
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
	if g.IdleAfter < 0 {
		errs = append(errs, fmt.Errorf("idle time %s: want ≥ 0", g.IdleAfter))
	}
	if g.WarmUp < 0 {
		errs = append(errs, fmt.Errorf("--state-replay %s: want ≥ 0", g.WarmUp))
	}
	errs = append(errs, g.Fetch.validate()...)
	errs = append(errs, g.Checkpoints.validate()...)
	return errors.Join(errs...)
}

type consumerMetrics struct {
	fetched      prometheus.Counter
	committed    prometheus.Counter
	commitErrors prometheus.Counter
	batchSeconds prometheus.Histogram
	lag          *prometheus.GaugeVec
	assigned     prometheus.Gauge
	fetchErrors  *prometheus.CounterVec
	offsetResets *prometheus.CounterVec
	skipped      *prometheus.CounterVec
	stuckSince   *prometheus.GaugeVec
}

func newConsumerMetrics(reg prometheus.Registerer, g GroupConfig) consumerMetrics {
	labels := prometheus.Labels{"topic": g.Topic, "group": g.Group}
	m := consumerMetrics{
		fetched: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_kafka_messages_fetched_total",
			Help: "Messages fetched from Kafka.", ConstLabels: labels}),
		committed: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_kafka_commits_total",
			Help: "Partition offsets committed, each after the handling of what it covers.", ConstLabels: labels}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_kafka_commit_errors_total",
			Help: "Offset commits that failed (their messages will be delivered again).", ConstLabels: labels}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "metricpipe_kafka_batch_handle_seconds",
			Help: "Time to handle one batch, writes included.", ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "metricpipe_kafka_consumer_lag",
			Help: "Messages not yet handled: the partition end (high-water mark, or last stable offset under read_committed) at the last fetch, less the next offset to handle; per assigned partition.", ConstLabels: labels}, []string{"partition"}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "metricpipe_kafka_partitions_assigned",
			Help: "Partitions assigned to this instance.", ConstLabels: labels}),
		fetchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metricpipe_kafka_fetch_errors_total",
			Help: "Failed fetches, each retried, by partition and Kafka error code (network: connection or protocol failures; corrupt: undecodable batches).", ConstLabels: labels}, []string{"partition", "code"}),
		offsetResets: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metricpipe_kafka_offset_resets_total",
			Help: "Fetch offsets moved by the fetcher: out of range below the log start or beyond its end, or past a corrupt batch.", ConstLabels: labels}, []string{"partition", "reason"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metricpipe_kafka_messages_skipped_total",
			Help: "Offsets never to be delivered: deleted by retention before they were consumed, jumped over by --reset-offset latest, or in corrupt batches skipped.", ConstLabels: labels}, []string{"partition", "reason"}),
		stuckSince: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "metricpipe_kafka_partition_stuck_since_seconds",
			Help: "Unix time since which the partition has been stuck at a batch it cannot decode (--on-corrupt-batch stop); 0 when fine.", ConstLabels: labels}, []string{"partition"}),
	}
	reg.MustRegister(m.fetched, m.committed, m.commitErrors, m.batchSeconds, m.lag, m.assigned, m.fetchErrors, m.offsetResets, m.skipped, m.stuckSince)
	return m
}

// OffsetHolder is implemented by handlers that keep output derived from
// handled messages in memory (open rollup windows, say). HeldFrom returns the
// lowest offset whose output is not yet stored; the consumer commits no
// further, so a restart replays those messages and rebuilds the output.
type OffsetHolder interface {
	HeldFrom() (offset int64, held bool)
}

// Idler is implemented by handlers that want to act when their partition
// falls idle, such as closing rollup windows that would otherwise wait for
// event time to move on, or noticing series that stopped. Idle is called
// after every IdleAfter without a message, so repeatedly while the
// partition stays quiet. After Idle returns nil the consumer commits what
// the handler no longer holds.
type Idler interface {
	Idle(ctx context.Context) error
}

// Warmer is implemented by handlers whose output depends on the messages
// before it (moving averages, say). When a partition is assigned with a
// committed offset, Warm is given, in batches and in offset order, the
// messages of up to GroupConfig.WarmUp of message time before that offset,
// before Handle is given any message: they were handled by an earlier owner
// (or before a restart), so Warm only rebuilds state, writing nothing.
// Nothing is committed for them.
type Warmer interface {
	Warm(batch []kafka.Message)
}

// GroupConsumer consumes a topic as a member of a consumer group. Each
// assigned partition runs in its own goroutine with its own Handler, in
// offset order, and its offset is committed only after the Handler finished
// with the messages before it: at-least-once delivery.
type GroupConsumer struct {
	group    *kafka.ConsumerGroup
	kc       Config
	dialer   *kafka.Dialer
	security wireSecurity // of the fetchers' connections
	cfg      GroupConfig
	log      zerolog.Logger
	metrics  consumerMetrics
	partsMu  sync.Mutex
	parts    map[int]*partitionHealth // assigned partitions, for Check
	state    *stateStore              // nil without checkpoints
}

// NewGroupConsumer joins cfg.Group on cfg.Topic. A partition with no
// committed offset starts at the oldest message, so nothing produced before
// the group's first start is skipped. The caller must Close it.
func NewGroupConsumer(kc Config, cfg GroupConfig, log zerolog.Logger, reg prometheus.Registerer) (*GroupConsumer, error) {
	if err := errors.Join(kc.Validate(), cfg.Validate()); err != nil {
		return nil, err
	}
	dialer, err := kc.Dialer()
	if err != nil {
		return nil, err
	}
	security, err := kc.wireSecurity()
	if err != nil {
		return nil, err
	}
	log = log.With().Str("topic", cfg.Topic).Str("group", cfg.Group).Logger()
	var balancers []kafka.GroupBalancer // kafka-go's defaults
	if cfg.SingleOwner {
		balancers = []kafka.GroupBalancer{singleOwner{}}
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		GroupBalancers: balancers,
		ID:             cfg.Group,
		Brokers:        kc.Brokers,
		Dialer:         dialer,
		Topics:         []string{cfg.Topic},
		// Short enough that a dead instance's partitions move within seconds,
		// long enough to ride out a GC pause or a slow InfluxDB write.
		HeartbeatInterval:      time.Second,
		SessionTimeout:         10 * time.Second,
		RebalanceTimeout:       10 * time.Second,
		JoinGroupBackoff:       time.Second,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 10 * time.Second,
		StartOffset:            kafka.FirstOffset,
		ErrorLogger:            kafkaLogger(log),
	})
	if err != nil {
		return nil, fmt.Errorf("join group %q: %w", cfg.Group, err)
	}
	c := &GroupConsumer{group: group, kc: kc, dialer: dialer, security: security, cfg: cfg, log: log, metrics: newConsumerMetrics(reg, cfg),
		parts: make(map[int]*partitionHealth)}
	if cfg.Checkpoints.enabled() {
		if c.state, err = newStateStore(c, reg); err != nil {
			group.Close()
			return nil, err
		}
	}
	return c, nil
}

func kafkaLogger(log zerolog.Logger) kafka.Logger {
	return kafka.LoggerFunc(func(msg string, args ...any) {
		log.Warn().Msgf("kafka: "+msg, args...)
	})
}

// Run consumes until ctx is cancelled, calling newHandler once per partition
// assignment; that Handler is used by one goroutine only and dropped when
// the assignment ends (a rebalance moved the partition, or the stop). On
// cancellation each partition stops fetching, hands its Handler what was
// already fetched and commits it, within DrainTimeout, and Run returns nil.
// Run returns an error when a Handler fails; nothing unhandled is committed.
func (c *GroupConsumer) Run(ctx context.Context, newHandler func(partition int) (Handler, error)) error {
	for {
		gen, err := c.group.Next(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, kafka.ErrGroupClosed):
			return nil
		case err != nil:
			c.log.Warn().Err(err).Msg("joining the group failed; retrying")
			if retry.Sleep(ctx, time.Second) != nil {
				return nil
			}
			continue
		}
		assigned := gen.Assignments[c.cfg.Topic]
		c.log.Info().Int32("generation", gen.ID).Int("partitions", len(assigned)).Msg("partitions assigned")
		if c.cfg.OnAssign != nil {
			ids := make([]int, len(assigned))
			for i, a := range assigned {
				ids[i] = a.ID
			}
			c.cfg.OnAssign(ids)
		}
		c.metrics.assigned.Set(float64(len(assigned)))
		cm := newCommitter(c, gen)
		var wg sync.WaitGroup
		errc := make(chan error, len(assigned))
		for _, a := range assigned {
			wg.Add(1)
			gen.Start(func(genCtx context.Context) {
				defer wg.Done()
				h, err := newHandler(a.ID)
				if err == nil {
					err = c.runPartition(ctx, genCtx, cm, a, h)
				}
				if err != nil {
					errc <- fmt.Errorf("partition %d: %w", a.ID, err)
				}
			})
		}
		wg.Wait()
		cm.close() // commits what the partitions finished before they returned
		close(errc)
		if err := errors.Join(collect(errc)...); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func collect(errc <-chan error) []error {
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errs
}

// partition is the state of one partition assignment.
type partition struct {
	c      *GroupConsumer
	cm     *committer
	id     int
	h      Handler
	log    zerolog.Logger
	marked int64 // last offset handed to the committer (next to read); negative when none
	last   int64 // offset of the last handled message; -1 before the first
	health *partitionHealth
}

// runPartition fetches one partition from its assigned offset and feeds its
// handler in batches. It returns nil when the assignment ends (genCtx) or
// after draining on a stop (ctx); an error only when the handler fails.
func (c *GroupConsumer) runPartition(ctx, genCtx context.Context, cm *committer, a kafka.PartitionAssignment, h Handler) error {
	health, untrack := c.track(a.ID)
	defer untrack()
	p := &partition{c: c, cm: cm, id: a.ID, h: h, marked: a.Offset, last: -1, health: health,
		log: c.log.With().Int("partition", a.ID).Logger()}
	p.log.Debug().Int64("offset", a.Offset).Msg("partition assigned")

	// A revocation is the generation ending while no stop was requested.
	// The first partition to return on a stop also ends the generation;
	// that must not cut the other partitions' drains short, and their
	// commits still count: the group has not rebalanced yet.
	revoked := func() bool { return genCtx.Err() != nil && ctx.Err() == nil }

	// fetchCtx ends with the stop or the assignment; workCtx lets handling
	// and committing outlive a stop by DrainTimeout, but ends at once on a
	// revocation, whose commits the coordinator would refuse anyway.
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer context.AfterFunc(genCtx, stopFetch)()
	defer stopFetch()
	workCtx, stopWork := service.WithDrain(ctx, c.cfg.DrainTimeout)
	defer context.AfterFunc(genCtx, func() {
		if revoked() {
			stopWork()
		}
	})()
	defer stopWork()

	// The fetcher reads the next response while the handler works.
	f := &fetcher{dialer: c.dialer, security: c.security, brokers: c.kc.Brokers, topic: c.cfg.Topic, partition: a.ID,
		maxBytes: fetchMaxBytes, maxWait: fetchMaxWait, backoff: retry.Backoff{Initial: fetchRetryMin, Max: fetchRetryMax}, log: p.log, free: make(chan chunk, 2),
		policy: c.cfg.Fetch, resume: max(a.Offset, 0), growTo: fetchGrowTo, inflateMax: maxInflate, refresh: fetchMaxWait,
		health: health, metrics: c.metrics.partition(a.ID)}
	start, resume := a.Offset, a.Offset // messages before resume rebuild state
	if start < 0 {
		start, resume = kafka.FirstOffset, kafka.FirstOffset
	} else {
		health.setNext(a.Offset)
	}
	// rebuild is given the messages before resume: after a checkpoint, they
	// are replayed from its offset; without one, a Warmer warms up.
	var rebuild func([]kafka.Message)
	var ck *partitionCheckpoints
	if cp, ok := h.(Checkpointer); ok && c.state != nil {
		ck = c.state.partition(a.ID, cp, p.log)
		defer func() { ck.finish(ctx, p.last+1) }()
		if at, ok := ck.restore(fetchCtx, f, a.Offset); ok {
			start, resume, rebuild = at, max(at, a.Offset), cp.Replay
			f.resume = resume
			health.setNext(resume)
			if resume > a.Offset {
				p.last = resume - 1 // what the checkpoint covers was written
				p.commit(resume)
			}
		}
	}
	if warmer, ok := h.(Warmer); ok && rebuild == nil && a.Offset > 0 && c.cfg.WarmUp > 0 {
		start, rebuild = f.warmStart(fetchCtx, a.Offset, c.cfg.WarmUp), warmer.Warm
	}
	fetched, fetchErr, fetchDone := make(chan chunk, 1), make(chan error, 1), make(chan struct{})
	go func() {
		defer close(fetchDone)
		f.run(fetchCtx, start, fetched, fetchErr)
	}()
	defer func() {
		stopFetch()
		<-fetchDone
	}()
	q := &queue{in: fetched, errc: fetchErr, recycle: f.recycle, own: make([]kafka.Message, 0, c.cfg.BatchSize)}
	defer func() {
		if ctx.Err() != nil {
			cm.flush()
		}
	}()

	idler, _ := h.(Idler)
	var batch []kafka.Message
	for {
		// The first message of a batch may wait indefinitely (or until the
		// partition counts as idle); the rest wait at most BatchWait.
		err := p.waitFirst(fetchCtx, q, idler != nil)
		switch {
		case ctx.Err() != nil:
			return nil // stopped between batches: nothing in hand
		case revoked():
			p.log.Debug().Msg("partition revoked")
			return nil
		case errors.Is(err, errIdle):
			err := idler.Idle(workCtx)
			ck.changed(err != nil)
			if err != nil {
				if drainCut(ctx, workCtx) {
					p.log.Warn().Err(err).Int64("from", p.last+1).Msg("stopped while closing the idle partition's windows: not written; not committed, read again at the next start")
					return nil
				}
				return fmt.Errorf("idle: %w", err)
			}
			p.commit(p.last + 1)
			ck.maybeSave(workCtx, p.last+1)
			continue
		case errors.Is(err, errJump):
			// Every message fetched before the jump was handled.
			to, passed := q.takeJump()
			if passed {
				// Past transaction markers: done once handling got there
				// (not while warming up, before resume).
				if to > resume {
					p.last = to - 1
					p.health.setNext(to)
					p.commit(to)
				}
				continue
			}
			resume = min(resume, to) // moving back, the messages are handled again
			p.jump(to, max(to, resume))
			continue
		case err != nil:
			return fmt.Errorf("fetch: %w", err)
		}
		batch = q.take(batch[:0], c.cfg.BatchSize)
		if len(batch) < c.cfg.BatchSize {
			batchCtx, cancel := context.WithTimeout(fetchCtx, c.cfg.BatchWait)
			// Until the batch time is up or a stop; a fetch failure shows
			// on the next wait.
			for len(batch) < c.cfg.BatchSize && q.wait(batchCtx) == nil {
				batch = q.take(batch, c.cfg.BatchSize-len(batch))
			}
			cancel()
		}
		c.metrics.fetched.Add(float64(len(batch)))
		if revoked() {
			return nil // the next owner fetches the batch again
		}
		if batch[0].Offset < resume {
			n, _ := slices.BinarySearchFunc(batch, resume, func(m kafka.Message, o int64) int { return cmp.Compare(m.Offset, o) })
			if rebuild != nil {
				rebuild(batch[:n])
				ck.replayed(n)
			}
			if batch = batch[n:]; len(batch) == 0 {
				q.release()
				continue
			}
		}
		// On a stop, the batch in hand is still handled and committed.
		err = p.handle(workCtx, batch)
		ck.changed(err != nil)
		if err != nil {
			if revoked() {
				return nil
			}
			if drainCut(ctx, workCtx) {
				p.log.Warn().Err(err).Int64("from", batch[0].Offset).Int64("to", batch[len(batch)-1].Offset).
					Str("drain_timeout", c.cfg.DrainTimeout.String()).Msg("stopped before these messages were written: not written; not committed, read again at the next start")
				return nil
			}
			return err
		}
		q.release()
		if ctx.Err() != nil {
			return nil
		}
		ck.maybeSave(workCtx, p.last+1)
	}
}

// drainCut reports that a stop's drain ran out of time (ctx, the stop;
// workCtx, the drain): a handler that failed then could not finish, say
// because its sink is down. That is no failure of the service: what it did
// not finish is not committed, and is read again at the next start.
func drainCut(ctx, workCtx context.Context) bool {
	return ctx.Err() != nil && workCtx.Err() != nil
}

// errIdle reports that a partition had no message for IdleAfter.
var errIdle = errors.New("partition idle")

// Fetching: a response of up to fetchMaxBytes is held in memory whole,
// per partition, while the previous one is handled; an empty fetch waits
// fetchMaxWait at the broker; failed attempts are retried after
// fetchRetryMin doubling to fetchRetryMax.
const (
	fetchMaxBytes = 1 << 20
	fetchMaxWait  = 2 * time.Second
	fetchRetryMin = 100 * time.Millisecond
	fetchRetryMax = 5 * time.Second
	// fetchGrowTo bounds the fetch size tried for a record batch larger
	// than fetchMaxBytes: brokers accept batches up to message.max.bytes,
	// about 1 MiB by default, and 64 MiB covers any sane setting.
	fetchGrowTo = 64 << 20
	// warmProbeBytes bounds the fetch that reads the time of the message
	// before a committed offset; the broker still returns a larger one whole.
	warmProbeBytes = 64 << 10
)

// waitFirst waits for the first message of a batch: indefinitely, or, with
// idleWait, at most IdleAfter before returning errIdle.
func (p *partition) waitFirst(ctx context.Context, q *queue, idleWait bool) error {
	if !idleWait || p.c.cfg.IdleAfter <= 0 {
		return q.wait(ctx)
	}
	idleCtx, cancel := context.WithTimeout(ctx, p.c.cfg.IdleAfter)
	defer cancel()
	err := q.wait(idleCtx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return errIdle
	}
	return err
}

// handle runs the handler on batch and commits the offset after it.
func (p *partition) handle(ctx context.Context, batch []kafka.Message) error {
	if len(batch) == 0 {
		return nil
	}
	start := time.Now()
	if err := p.h.Handle(ctx, batch); err != nil {
		return fmt.Errorf("handle %d messages: %w", len(batch), err)
	}
	p.c.metrics.batchSeconds.Observe(time.Since(start).Seconds())
	p.last = batch[len(batch)-1].Offset
	p.health.setNext(p.last + 1)
	p.commit(p.last + 1)
	return nil
}

// jump follows the fetcher's move to offset to, after every message
// fetched before it was handled: the messages in between count as done
// (skipped: deleted, corrupt, or jumped over by --reset-offset latest),
// and the committed offset follows, backwards too when the offset moved
// back (--reset-offset earliest after the log was recreated or truncated),
// so that a restart does not find the old, out-of-range offset again.
// next is the next offset to handle, after warm-up.
func (p *partition) jump(to, next int64) {
	p.last = to - 1
	p.health.setNext(next)
	if to < p.marked {
		p.marked = to
		p.cm.set(p.id, to)
		return
	}
	p.commit(to)
}

// commit hands next to the committer, held back to what the handler still
// keeps in memory.
func (p *partition) commit(next int64) {
	if holder, ok := p.h.(OffsetHolder); ok {
		if from, held := holder.HeldFrom(); held && from < next {
			next = from
		}
	}
	if next <= p.marked || next <= 0 {
		return
	}
	p.marked = next
	p.cm.mark(p.id, next)
}

// committer commits the offsets the partitions of one generation finished,
// from one goroutine: the coordinator connection is shared, and a commit
// round trip per batch and partition would bound every partition's pace by
// the broker's commit latency. Offsets marked while a commit is in flight
// go out together in the next one. A failed commit loses nothing (the
// messages are delivered again and rewritten identically), so it is counted
// and logged, not fatal, and its offsets are retried with the next commit.
type committer struct {
	c       *GroupConsumer
	gen     *kafka.Generation
	flushMu sync.Mutex // one commit at a time, in order
	mu      sync.Mutex
	pending map[int]int64 // partition → next offset, not yet committed
	wake    chan struct{}
	done    chan struct{}
	stop    chan struct{}
}

func newCommitter(c *GroupConsumer, gen *kafka.Generation) *committer {
	cm := &committer{c: c, gen: gen, pending: make(map[int]int64), wake: make(chan struct{}, 1),
		done: make(chan struct{}), stop: make(chan struct{})}
	go cm.loop()
	return cm
}

// mark records that partition's messages before next are done.
func (cm *committer) mark(partition int, next int64) {
	cm.mu.Lock()
	cm.pending[partition] = max(cm.pending[partition], next)
	cm.mu.Unlock()
	cm.poke()
}

// set records next as partition's offset to commit, even when it is below
// what was marked before.
func (cm *committer) set(partition int, next int64) {
	cm.mu.Lock()
	cm.pending[partition] = next
	cm.mu.Unlock()
	cm.poke()
}

func (cm *committer) poke() {
	select {
	case cm.wake <- struct{}{}:
	default:
	}
}

func (cm *committer) loop() {
	defer close(cm.done)
	for {
		select {
		case <-cm.wake:
			cm.flush()
		case <-cm.stop:
			cm.flush()
			return
		}
	}
}

// flush commits every pending offset in one request. A partition stopping
// calls it too, before it returns: the generation's coordinator connection
// closes as soon as the last partition returned.
func (cm *committer) flush() {
	cm.flushMu.Lock()
	defer cm.flushMu.Unlock()
	cm.mu.Lock()
	offsets := cm.pending
	cm.pending = make(map[int]int64, len(offsets))
	cm.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	err := cm.gen.CommitOffsets(map[string]map[int]int64{cm.c.cfg.Topic: offsets})
	if err == nil {
		cm.c.metrics.committed.Add(float64(len(offsets)))
		return
	}
	cm.c.metrics.commitErrors.Inc()
	cm.c.log.Warn().Err(err).Int("partitions", len(offsets)).Msg("offset commit failed; will retry, or the messages are delivered again")
	cm.mu.Lock()
	for p, next := range offsets {
		if _, newer := cm.pending[p]; !newer { // marked since: later, and after a jump back lower
			cm.pending[p] = next
		}
	}
	cm.mu.Unlock()
}

// close commits what is pending and stops the committer.
func (cm *committer) close() {
	close(cm.stop)
	<-cm.done
}

// Close leaves the group.
func (c *GroupConsumer) Close() error {
	var errs []error
	if err := c.group.Close(); err != nil {
		errs = append(errs, fmt.Errorf("leave group %q: %w", c.cfg.Group, err))
	}
	if c.state != nil {
		if err := c.state.w.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close the state topic's writer: %w", err))
		}
	}
	return errors.Join(errs...)
}
