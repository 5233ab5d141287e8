// Package client is the Go API for writing your own metricpipe producer:
// build a Producer from a Config, Send points (asynchronously, batched,
// keyed by series so each series stays in one partition and in order),
// Flush to wait for Kafka's acknowledgements, Close when done.
//
//	p, err := client.New(client.Config{Kafka: kafkaio.Config{Brokers: []string{"kafka:9092"}}})
//	...
//	err = p.Send(ctx, point.Point{Measurement: "temperature",
//		Tags: []point.Tag{{Key: "room", Value: "lab"}},
//		Fields: []point.Field{{Key: "celsius", Value: 21.5}}, Time: time.Now().UnixNano()})
//	...
//	err = p.Close(ctx) // flushes
//
// Delivery is at least once: a point is acknowledged when every in-sync
// replica has it (acks=all); failures after kafka-go's retries reach the
// error handler (WithErrorHandler) and count in Stats.
package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
)

// ErrBufferFull is returned by Send when the buffer is full and the
// Producer was configured to drop rather than wait.
var ErrBufferFull = errors.New("producer buffer full: point dropped")

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("producer closed")

// Config configures a Producer. Zero values take the defaults noted.
type Config struct {
	Kafka  kafkaio.Config
	Topic  string        // default "metrics"
	Format point.Format  // wire format; default line protocol
	Batch  int           // messages per produce request at most; default kafkaio's (1000)
	Linger time.Duration // how long a batch waits to fill; default kafkaio's (10ms)
	// Buffer bounds the points sent but not yet acknowledged; default
	// 100,000 (about 10 MB of typical points, a third of the Java client's
	// 32 MB buffer.memory): enough that a broker round trip does not stall
	// Send at full speed.
	Buffer int
	// DropWhenFull makes Send drop the point and return ErrBufferFull when
	// the buffer is full, instead of waiting for room (the default).
	DropWhenFull bool
}

func (c Config) withDefaults() Config {
	if c.Topic == "" {
		c.Topic = kafkaio.DefaultTopic
	}
	if c.Format == 0 {
		c.Format = point.FormatLine
	}
	if c.Buffer == 0 {
		c.Buffer = 100_000
	}
	return c
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	c = c.withDefaults()
	errs := []error{c.Kafka.Validate()}
	if c.Format != point.FormatLine && c.Format != point.FormatJSON {
		errs = append(errs, fmt.Errorf("format %d: want line protocol or JSON", c.Format))
	}
	errs = append(errs, kafkaio.WriterOptions{BatchSize: c.Batch, Linger: c.Linger}.Validate())
	if c.Buffer < 1 {
		errs = append(errs, fmt.Errorf("buffer %d: want ≥ 1", c.Buffer))
	}
	return errors.Join(errs...)
}

// Option adjusts a Producer.
type Option func(*Producer)

// WithLatencyObserver sets a function called, from a kafka-go goroutine,
// with the time from Send to Kafka's acknowledgement of each batch's first
// point (for a produce-latency histogram).
func WithLatencyObserver(f func(time.Duration)) Option {
	return func(p *Producer) { p.observe = f }
}

// WithErrorHandler sets the function called, from a kafka-go goroutine, for
// each batch that could not be delivered: err says why, points how many
// were lost. It must not block for long.
func WithErrorHandler(f func(err error, points int)) Option {
	return func(p *Producer) { p.onError = f }
}

// Stats are a Producer's counters since New.
type Stats struct {
	Sent, Acked, Failed, Dropped int64 // points
	BytesAcked                   int64 // message bytes (keys and values) acknowledged
	Batches                      int64 // produce batches acknowledged
	Buffered                     int   // points sent but not yet acknowledged or failed
}

// Producer sends points to Kafka. It is safe for concurrent use.
type Producer struct {
	w       *kafka.Writer
	format  point.Format
	drop    bool
	onError func(error, int)
	observe func(time.Duration)
	headers []kafka.Header // shared, read-only

	// Send hands encoded messages to the queue; one goroutine passes them
	// to kafka-go many at a time. Encoding in the caller while kafka-go
	// batches in the background overlaps the two, and kafka-go's cost per
	// WriteMessages call is paid per slice, not per point.
	qmu      sync.Mutex
	queue    []kafka.Message
	spare    []kafka.Message // the previous queue, reused
	slab     []byte          // queued messages' bytes are carved from it, not allocated one by one
	closed   bool            // under qmu: no message enters the queue after Close
	wake     chan struct{}   // the queue got its first message
	full     chan struct{}   // the queue reached gatherSize
	stop     chan struct{}
	loopDone chan struct{}
	maxBytes int64 // kafka-go refuses a bigger message; Send reports it at once

	// buffered counts the points sent and not yet acknowledged or failed,
	// up to capacity; room is signalled when it falls while Send waits.
	buffered atomic.Int64
	capacity int64
	room     chan struct{}
	mu       sync.Mutex
	idle     *sync.Cond // signalled when the buffer empties

	sent, acked, failed, dropped atomic.Int64
	bytesAcked, batches          atomic.Int64
}

// New returns a Producer for cfg. It does not contact Kafka until the first
// batch is sent; the topic must exist (the producer service creates it).
func New(cfg Config, opts ...Option) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Producer{
		format:   cfg.Format,
		drop:     cfg.DropWhenFull,
		capacity: int64(cfg.Buffer),
		room:     make(chan struct{}, 1),
		onError:  func(error, int) {},
		observe:  func(time.Duration) {},
		headers:  []kafka.Header{{Key: kafkaio.HeaderContentType, Value: []byte(cfg.Format.ContentType())}},
		wake:     make(chan struct{}, 1),
		full:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	p.idle = sync.NewCond(&p.mu)
	for _, o := range opts {
		o(p)
	}
	w, err := kafkaio.NewWriter(cfg.Kafka, cfg.Topic, kafkaio.WriterOptions{
		BatchSize: cfg.Batch, Linger: cfg.Linger, Async: true, Completion: p.completed, Patient: true,
	})
	if err != nil {
		return nil, err
	}
	p.w = w
	p.maxBytes = w.BatchBytes
	go p.loop()
	return p, nil
}

// Send validates pt, encodes it and queues it for the next batch. It blocks
// only while the buffer is full (until ctx ends), or returns ErrBufferFull
// when configured to drop. A nil error means queued, not acknowledged: see
// Flush, or SendBatch. pt is not retained.
func (p *Producer) Send(ctx context.Context, pt point.Point) error {
	var scratch [256]byte // most points fit: no allocation
	msg, keyLen, err := p.encode(scratch[:0], pt)
	if err != nil {
		return err
	}
	return p.enqueue(ctx, msg, keyLen, time.Now(), nil)
}

// SendBatch sends pts and waits until Kafka acknowledged all of them (or
// ctx ends): for callers that must not report success before, such as the
// HTTP write endpoint. Invalid points are rejected before any is sent.
// Full-buffer handling is as for Send; on ErrBufferFull or ctx's end some
// points may have been sent.
func (p *Producer) SendBatch(ctx context.Context, pts []point.Point) error {
	type span struct{ from, to, keyLen int } // of a point's message in buf
	spans := make([]span, len(pts))
	var buf []byte
	for i := range pts {
		from := len(buf)
		var err error
		if buf, spans[i].keyLen, err = p.encode(buf, pts[i]); err != nil {
			return fmt.Errorf("point %d: %w", i+1, err)
		}
		spans[i].from, spans[i].to = from, len(buf)
	}
	w := &batchWait{done: make(chan struct{})}
	w.pending.Store(int64(len(pts)) + 1) // +1 until every point was queued
	now := time.Now()
	for _, sp := range spans {
		if err := p.enqueue(ctx, buf[sp.from:sp.to], sp.keyLen, now, w); err != nil {
			w.finish(err)
			return err
		}
	}
	w.finish(nil)
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return fmt.Errorf("wait for acknowledgement: %w", ctx.Err())
	}
}

// batchWait counts a SendBatch's messages still unacknowledged; it
// travels with each of them as kafka.Message.WriterData. A message's Time
// is when it was sent, for the produce latency.
type batchWait struct {
	pending atomic.Int64
	mu      sync.Mutex
	err     error
	done    chan struct{}
}

func (w *batchWait) finish(err error) {
	if err != nil {
		w.mu.Lock()
		w.err = errors.Join(w.err, err)
		w.mu.Unlock()
	}
	if w.pending.Add(-1) == 0 {
		close(w.done)
	}
}

// encode validates pt and appends its message to dst: key and value, the
// key its first keyLen bytes. In line protocol the key is the line's
// beginning; in JSON it precedes the value.
func (p *Producer) encode(dst []byte, pt point.Point) (out []byte, keyLen int, err error) {
	if err := pt.ValidateAnyOrder(); err != nil { // the encoders sort the tags
		return dst, 0, fmt.Errorf("invalid point: %w", err)
	}
	start := len(dst)
	if p.format == point.FormatJSON {
		dst = point.AppendSeriesKey(dst, &pt)
		keyLen = len(dst) - start
		dst = point.AppendJSON(dst, &pt)
	} else {
		dst, keyLen = point.AppendLineKeyed(dst, &pt)
		keyLen -= start
	}
	if size := len(dst) - start; p.maxBytes > 0 && int64(size) > p.maxBytes {
		return dst[:start], 0, fmt.Errorf("point of %d bytes: more than a produce request's %d", size, p.maxBytes)
	}
	return dst, keyLen, nil
}

// slabSize is the memory queued messages are carved from, a piece at a
// time; a slab is freed once all its messages were acknowledged.
const slabSize = 64 << 10

// enqueue queues msg (key and value, the key its first keyLen bytes),
// copied into the slab.
func (p *Producer) enqueue(ctx context.Context, msg []byte, keyLen int, sent time.Time, w *batchWait) error {
	if err := p.acquire(ctx); err != nil {
		return err
	}
	p.qmu.Lock()
	if p.closed {
		p.qmu.Unlock()
		p.release(1)
		return ErrClosed
	}
	if cap(p.slab)-len(p.slab) < len(msg) {
		p.slab = make([]byte, 0, max(slabSize, len(msg)))
	}
	from := len(p.slab)
	p.slab = append(p.slab, msg...)
	b := p.slab[from:len(p.slab):len(p.slab)]
	m := kafka.Message{Key: b[:keyLen:keyLen], Value: b, Headers: p.headers, Time: sent}
	if p.format == point.FormatJSON {
		m.Value = b[keyLen:]
	}
	if w != nil {
		m.WriterData = w
	}
	p.queue = append(p.queue, m)
	n := len(p.queue)
	p.qmu.Unlock()
	p.sent.Add(1)
	switch n {
	case 1:
		signal(p.wake)
	case gatherSize:
		signal(p.full)
	}
	return nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// The queue is handed over once it holds gatherSize messages, or gatherWait
// after its first one: kafka-go's cost per WriteMessages call (a metadata
// lookup, a map of partitions, locks) is then paid per few thousand points,
// not per point, for at most a millisecond's delay (kafka-go lingers 10 ms
// for its batches anyway). 4,096 rather than 512 raised throughput 10%.
const (
	gatherSize = 4096
	gatherWait = time.Millisecond
)

// loop hands the queue to kafka-go until Close, then once more.
func (p *Producer) loop() {
	defer close(p.loopDone)
	gather := time.NewTimer(gatherWait)
	gather.Stop()
	for {
		if p.queued() == 0 {
			select {
			case <-p.wake:
			case <-p.stop:
				p.drain()
				return
			}
		}
		select { // a signal from a queue handed over since is stale
		case <-p.full:
		default:
		}
		if p.queued() < gatherSize {
			gather.Reset(gatherWait)
			select {
			case <-p.full:
			case <-gather.C:
			case <-p.stop:
				p.drain()
				return
			}
			gather.Stop()
		}
		p.handOver()
	}
}

func (p *Producer) queued() int {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	return len(p.queue)
}

// drain hands the queue over until it is empty.
func (p *Producer) drain() {
	for p.handOver() {
	}
}

// handOver passes what is queued to kafka-go in one call and reports
// whether there was anything. kafka-go copies the messages, so the slice is
// reused.
func (p *Producer) handOver() bool {
	p.qmu.Lock()
	batch := p.queue
	p.queue = p.spare[:0]
	p.qmu.Unlock()
	if len(batch) == 0 {
		p.spare = batch
		return false
	}
	// Async: this only queues; it fails only for a closed writer or an
	// oversized message, which encode already refused.
	if err := p.w.WriteMessages(context.Background(), batch...); err != nil {
		p.completed(batch, fmt.Errorf("queue points: %w", err))
	}
	clear(batch) // drop references to the points' memory
	p.spare = batch
	return true
}

// acquire takes room in the buffer for one point, waiting for it unless
// the Producer drops.
func (p *Producer) acquire(ctx context.Context) error {
	for {
		if p.buffered.Add(1) <= p.capacity {
			if p.buffered.Load() < p.capacity {
				signal(p.room) // room for other waiters too
			}
			return nil
		}
		p.buffered.Add(-1)
		if p.drop {
			p.dropped.Add(1)
			return ErrBufferFull
		}
		select {
		case <-p.room:
		case <-ctx.Done():
			return fmt.Errorf("wait for buffer room: %w", ctx.Err())
		}
	}
}

func (p *Producer) release(n int) {
	if p.buffered.Add(int64(-n)) == 0 {
		p.mu.Lock()
		p.idle.Broadcast()
		p.mu.Unlock()
	}
	signal(p.room)
}

// completed is kafka-go's callback for each finished batch.
func (p *Producer) completed(msgs []kafka.Message, err error) {
	if err != nil {
		err = fmt.Errorf("deliver %d points: %w", len(msgs), err)
		p.failed.Add(int64(len(msgs)))
		p.onError(err, len(msgs))
	} else {
		p.acked.Add(int64(len(msgs)))
		var n int
		for i := range msgs {
			n += len(msgs[i].Key) + len(msgs[i].Value)
		}
		p.bytesAcked.Add(int64(n))
		p.batches.Add(1)
		if len(msgs) > 0 {
			p.observe(time.Since(msgs[0].Time))
		}
	}
	for i := range msgs {
		if w, ok := msgs[i].WriterData.(*batchWait); ok {
			w.finish(err)
		}
	}
	p.release(len(msgs))
}

// Flush waits until every point sent before the call was acknowledged or
// reported failed, or ctx ends. It returns an error if any point failed
// since New.
func (p *Producer) Flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.idle.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	for p.buffered.Load() > 0 && ctx.Err() == nil {
		p.idle.Wait()
	}
	p.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("flush: %d points still in flight: %w", p.buffered.Load(), err)
	}
	if n := p.failed.Load(); n > 0 {
		return fmt.Errorf("flush: %d points failed since the start", n)
	}
	return nil
}

// Close flushes (within ctx) and releases the connections. Send fails with
// ErrClosed afterwards.
func (p *Producer) Close(ctx context.Context) error {
	p.qmu.Lock()
	closing := !p.closed
	p.closed = true
	p.qmu.Unlock()
	if closing {
		close(p.stop)
	}
	<-p.loopDone
	ferr := p.Flush(ctx)
	return errors.Join(ferr, p.w.Close())
}

// Stats returns the counters.
func (p *Producer) Stats() Stats {
	return Stats{Sent: p.sent.Load(), Acked: p.acked.Load(), Failed: p.failed.Load(), Dropped: p.dropped.Load(),
		BytesAcked: p.bytesAcked.Load(), Batches: p.batches.Load(), Buffered: int(p.buffered.Load())}
}
