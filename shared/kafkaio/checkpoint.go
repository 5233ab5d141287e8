package kafkaio

// Checkpoints: a partition's handler state is saved to a compacted Kafka
// topic and restored when the partition is assigned again, after a restart,
// a crash or a rebalance, so that processing continues exactly where it left
// off instead of starting cold.
//
// Design: periodic snapshots with the offset they cover, not a changelog.
// A snapshot is the handler's whole state after the message before offset N
// (N, "next", is recorded with it), taken between batches, after the batch's
// output was written. Restoring it and replaying the messages from N to the
// committed offset C (without output: they were written before) gives the
// state an uninterrupted run had at C. A snapshot beyond C (taken after
// commits that did not happen, or that a handler held back) is just as
// valid: what it covers was written, so the partition resumes at N. A
// changelog would write every series' change as it happens; metric series
// change with every point, so it would rewrite the whole state every few
// seconds anyway, and a restore would have to read it all back.
//
// Layout: snapshot chunks of at most checkpointChunk bytes, keyed
// "<partition>/<slot>/<chunk>", with slot alternating between two
// snapshots: compaction keeps the latest message per key, so a snapshot cut
// short by a crash never overwrites the last complete one. The state topic
// has as many partitions as the input topic (input partition p goes to
// state partition p modulo their number); a restore reads its state
// partition backwards from the end until it finds a complete snapshot.
// Every chunk carries the snapshot's identity, and the CRC of the whole
// state, so chunks of different snapshots are never mixed.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/stream"
)

// Checkpointer is implemented by handlers whose state can be saved and
// restored (see the package's checkpoint design above).
type Checkpointer interface {
	// Checkpoint appends the handler's whole state, as it is after the last
	// message it handled or replayed, to dst.
	Checkpoint(dst []byte) []byte
	// Restore replaces the handler's state with one Checkpoint returned,
	// taken at wall time taken. An error (wrapping stream.ErrIncompatible
	// or stream.ErrCorrupt) leaves the handler cold.
	Restore(state []byte, taken time.Time) error
	// Replay feeds messages handled before, after the restored checkpoint:
	// it updates the state exactly as Handle would, and writes, publishes
	// and counts nothing.
	Replay(batch []kafka.Message)
}

// CheckpointConfig says where and how often partition state is saved.
type CheckpointConfig struct {
	// Topic is the compacted topic of the checkpoints; empty: no
	// checkpoints (a partition then warms up by GroupConfig.WarmUp).
	Topic string
	// Interval is the time between two checkpoints of a busy partition. A
	// partition is also checkpointed when it is revoked or stopped.
	Interval time.Duration
}

func (c CheckpointConfig) enabled() bool { return c.Topic != "" }

func (c CheckpointConfig) validate() []error {
	if c.Topic != "" && c.Interval <= 0 {
		return []error{fmt.Errorf("--checkpoint-interval %s: want > 0", c.Interval)}
	}
	return nil
}

// Topics returns the spec of the state topic to create, beside an input
// topic of spec input: none without checkpoints.
func (c CheckpointConfig) Topics(input TopicSpec) []TopicSpec {
	if !c.enabled() {
		return nil
	}
	return []TopicSpec{StateTopicSpec(c.Topic, input)}
}

// StateTopicSpec is the spec of a compacted checkpoint topic, with as many
// partitions as the input topic. Segments roll every 10 minutes so that
// compaction keeps what a restore reads small.
func StateTopicSpec(name string, input TopicSpec) TopicSpec {
	return TopicSpec{Name: name, Partitions: input.Partitions, ReplicationFactor: input.ReplicationFactor,
		Configs: map[string]string{
			"cleanup.policy":            "compact",
			"segment.ms":                strconv.Itoa(int((10 * time.Minute).Milliseconds())),
			"min.cleanable.dirty.ratio": "0.1",
			"max.message.bytes":         strconv.Itoa(2 << 20),
		}}
}

// Checkpoint chunks: well under the broker's default message size limit
// (1 MiB), with room for headers.
const (
	checkpointChunk   = 512 << 10
	checkpointMagic   = "MPCK"
	checkpointVersion = 1
	// checkpointScanFirst is how many messages at the end of a state
	// partition a restore reads first; it reads four times further back
	// each time that holds no complete snapshot.
	checkpointScanFirst = 64
	// checkpointLoadTimeout bounds the attempts to read a checkpoint at
	// assignment: past it the partition goes on without one, warm-up first.
	checkpointLoadTimeout = 30 * time.Second
	// checkpointFinalTimeout bounds the checkpoint written when a partition
	// is revoked: the group's rebalance waits for it.
	checkpointFinalTimeout = 5 * time.Second
)

// snapshot is one checkpoint of one input partition.
type snapshot struct {
	partition int
	seq       uint64 // per partition, increasing
	next      int64  // the state covers the messages before this offset
	taken     time.Time
	state     []byte
}

// chunkHeader precedes each chunk's bytes.
type chunkHeader struct {
	partition    int
	seq          uint64
	next         int64
	taken        int64 // Unix ns
	index, count int
	total        int    // bytes of the whole state
	crc          uint32 // Castagnoli, of the whole state
}

func (h chunkHeader) append(b []byte) []byte {
	b = append(b, checkpointMagic...)
	b = append(b, checkpointVersion)
	b = binary.AppendUvarint(b, uint64(h.partition))
	b = binary.AppendUvarint(b, h.seq)
	b = binary.AppendVarint(b, h.next)
	b = binary.AppendVarint(b, h.taken)
	b = binary.AppendUvarint(b, uint64(h.index))
	b = binary.AppendUvarint(b, uint64(h.count))
	b = binary.AppendUvarint(b, uint64(h.total))
	return binary.LittleEndian.AppendUint32(b, h.crc)
}

var errNotCheckpoint = errors.New("not a checkpoint chunk")

// parseChunk reads a chunk message's value; the bytes returned alias v.
func parseChunk(v []byte) (chunkHeader, []byte, error) {
	var h chunkHeader
	if !bytes.HasPrefix(v, []byte(checkpointMagic)) || len(v) < len(checkpointMagic)+1 {
		return h, nil, errNotCheckpoint
	}
	if ver := v[len(checkpointMagic)]; ver != checkpointVersion {
		return h, nil, fmt.Errorf("%w: chunk format version %d, this build reads %d", errIncompatibleChunk, ver, checkpointVersion)
	}
	b := v[len(checkpointMagic)+1:]
	var vals [7]uint64
	for i := range vals {
		var n int
		if i == 2 || i == 3 {
			var s int64
			s, n = binary.Varint(b)
			vals[i] = uint64(s)
		} else {
			vals[i], n = binary.Uvarint(b)
		}
		if n <= 0 {
			return h, nil, errNotCheckpoint
		}
		b = b[n:]
	}
	if len(b) < 4 || vals[0] > 1<<31 || vals[4] >= vals[5] || vals[5] > 1<<20 || vals[6] > 1<<40 {
		return h, nil, errNotCheckpoint
	}
	h = chunkHeader{partition: int(vals[0]), seq: vals[1], next: int64(vals[2]), taken: int64(vals[3]),
		index: int(vals[4]), count: int(vals[5]), total: int(vals[6]), crc: binary.LittleEndian.Uint32(b)}
	return h, b[4:], nil
}

var (
	errIncompatibleChunk = errors.New("incompatible checkpoint chunk")
	errCorruptChunk      = errors.New("corrupt checkpoint")
)

func chunkKey(partition int, seq uint64, index int) []byte {
	return fmt.Appendf(nil, "%d/%d/%d", partition, seq%2, index)
}

// chunkPartition reads the input partition from a chunk key.
func chunkPartition(key []byte) (int, bool) {
	s, _, ok := strings.Cut(string(key), "/")
	if !ok {
		return 0, false
	}
	p, err := strconv.Atoi(s)
	return p, err == nil && p >= 0
}

type checkpointMetrics struct {
	saved, saveErrors, restored prometheus.Counter
	discarded                   *prometheus.CounterVec
	replayed                    prometheus.Counter
	saveSeconds, restoreSeconds prometheus.Histogram
	bytes                       prometheus.Gauge
}

func newCheckpointMetrics(reg prometheus.Registerer, labels prometheus.Labels) checkpointMetrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_checkpoint" + name, Help: help, ConstLabels: labels})
	}
	buckets := prometheus.ExponentialBuckets(0.001, 2, 16)
	m := checkpointMetrics{
		saved:      counter("s_saved_total", "Partition checkpoints written to the state topic."),
		saveErrors: counter("_save_errors_total", "Partition checkpoints that could not be written (the next one is tried at the next interval)."),
		restored:   counter("s_restored_total", "Partitions whose state was restored from a checkpoint when assigned."),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metricpipe_checkpoints_discarded_total", ConstLabels: labels,
			Help: "Checkpoints found but not used, by reason: incompatible (another format version or configuration), corrupt, offset (outside the partition's log), unreadable (the state topic could not be read)."}, []string{"reason"}),
		replayed: counter("_replayed_messages_total", "Messages replayed, without output, to rebuild a partition's state when it was assigned: from a restored checkpoint to the committed offset, or over --state-replay without one."),
		saveSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "metricpipe_checkpoint_save_seconds", ConstLabels: labels,
			Help: "Time to write one partition checkpoint to Kafka (taking it is not included).", Buckets: buckets}),
		restoreSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "metricpipe_checkpoint_restore_seconds", ConstLabels: labels,
			Help: "Time to read and restore one partition's checkpoint, replay not included.", Buckets: buckets}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "metricpipe_checkpoint_bytes", ConstLabels: labels,
			Help: "Size of the last checkpoint written."}),
	}
	reg.MustRegister(m.saved, m.saveErrors, m.restored, m.discarded, m.replayed, m.saveSeconds, m.restoreSeconds, m.bytes)
	return m
}

// stateStore writes and reads the checkpoints of one group's partitions.
// Safe for concurrent use.
type stateStore struct {
	topic   string
	w       *kafka.Writer
	c       *GroupConsumer
	metrics checkpointMetrics
}

func newStateStore(c *GroupConsumer, reg prometheus.Registerer) (*stateStore, error) {
	w, err := NewWriter(c.kc, c.cfg.Checkpoints.Topic, WriterOptions{BatchSize: 64, BatchBytes: 1 << 20, Linger: time.Millisecond})
	if err != nil {
		return nil, err
	}
	w.Balancer = kafka.BalancerFunc(func(m kafka.Message, partitions ...int) int {
		p, _ := chunkPartition(m.Key)
		return partitions[p%len(partitions)]
	})
	labels := prometheus.Labels{"topic": c.cfg.Topic, "group": c.cfg.Group}
	return &stateStore{topic: c.cfg.Checkpoints.Topic, w: w, c: c, metrics: newCheckpointMetrics(reg, labels)}, nil
}

// save writes snapshot s, chunk by chunk, and returns once Kafka took every
// chunk. stale is how many chunks the slot's previous snapshot had: those
// beyond s's get tombstones, so compaction removes them.
func (st *stateStore) save(ctx context.Context, s snapshot, stale int) (chunks int, err error) {
	start := time.Now()
	count := max(1, (len(s.state)+checkpointChunk-1)/checkpointChunk)
	h := chunkHeader{partition: s.partition, seq: s.seq, next: s.next, taken: s.taken.UnixNano(), count: count,
		total: len(s.state), crc: crc32.Checksum(s.state, castagnoli)}
	msgs := make([]kafka.Message, 0, max(count, stale))
	for i := range count {
		h.index = i
		part := s.state[min(i*checkpointChunk, len(s.state)):min((i+1)*checkpointChunk, len(s.state))]
		msgs = append(msgs, kafka.Message{Key: chunkKey(s.partition, s.seq, i), Value: append(h.append(nil), part...)})
	}
	for i := count; i < stale; i++ {
		msgs = append(msgs, kafka.Message{Key: chunkKey(s.partition, s.seq, i)})
	}
	if err := st.w.WriteMessages(ctx, msgs...); err != nil {
		st.metrics.saveErrors.Inc()
		return 0, fmt.Errorf("write checkpoint of partition %d at offset %d to %s: %w", s.partition, s.next, st.topic, err)
	}
	st.metrics.saved.Inc()
	st.metrics.bytes.Set(float64(len(s.state)))
	st.metrics.saveSeconds.Observe(time.Since(start).Seconds())
	return count, nil
}

// load returns the latest complete snapshot of input partition p, or
// found false, and the highest snapshot sequence number seen for p (so that
// the next snapshot gets a higher one) with the chunk counts of its two
// slots. Retries failures until ctx ends.
func (st *stateStore) load(ctx context.Context, p int, log zerolog.Logger) (s snapshot, found bool, seen scanResult, err error) {
	backoff := retry.Backoff{Initial: 200 * time.Millisecond, Max: 5 * time.Second}
	err = retry.Do(ctx, backoff, func(ctx context.Context) error {
		var err error
		seen, err = st.scan(ctx, p)
		return err
	}, func(attempt int, delay time.Duration, err error) {
		log.Warn().Err(err).Int("attempt", attempt).Stringer("retry_in", delay).Str("state_topic", st.topic).Msg("reading the partition's checkpoint failed; retrying")
	})
	if err != nil {
		return snapshot{}, false, seen, err
	}
	s, found = seen.best()
	return s, found, seen, nil
}

// scanResult is what a restore found in its state partition.
type scanResult struct {
	snaps     map[uint64]*assembly
	maxSeq    uint64
	slotCount [2]int    // chunk count of the latest snapshot seen in each slot
	slotSeq   [2]uint64 // and its sequence number
	bad       []error
}

// assembly gathers the chunks of one snapshot.
type assembly struct {
	h       chunkHeader
	chunks  [][]byte
	have    int
	corrupt bool // complete, but its bytes fail their checksum
}

func (r *scanResult) add(h chunkHeader, b []byte) {
	r.maxSeq = max(r.maxSeq, h.seq)
	if slot := h.seq % 2; h.seq >= r.slotSeq[slot] {
		r.slotSeq[slot], r.slotCount[slot] = h.seq, max(r.slotCount[slot], h.count)
	}
	if r.snaps == nil {
		r.snaps = make(map[uint64]*assembly)
	}
	a := r.snaps[h.seq]
	if a == nil {
		a = &assembly{h: h, chunks: make([][]byte, h.count)}
		r.snaps[h.seq] = a
	}
	if a.h.count != h.count || a.h.total != h.total || a.h.crc != h.crc || a.h.next != h.next || a.chunks[h.index] != nil {
		return // another writer's, or a duplicate: the first one wins
	}
	a.chunks[h.index] = bytes.Clone(b)
	a.have++
}

// best assembles the complete snapshot that covers the most messages, the
// latest written among equals; one whose bytes fail their CRC is skipped.
func (r *scanResult) best() (snapshot, bool) {
	var best *assembly
	for _, a := range r.snaps {
		if a.have < a.h.count || a.corrupt {
			continue
		}
		if best == nil || a.h.next > best.h.next || (a.h.next == best.h.next && a.h.seq > best.h.seq) {
			state := bytes.Join(a.chunks, nil)
			if len(state) != a.h.total || crc32.Checksum(state, castagnoli) != a.h.crc {
				a.corrupt = true
				r.bad = append(r.bad, fmt.Errorf("%w: snapshot %d at offset %d: its bytes do not match their checksum", errCorruptChunk, a.h.seq, a.h.next))
				continue
			}
			best = a
		}
	}
	if best == nil {
		return snapshot{}, false
	}
	return snapshot{partition: best.h.partition, seq: best.h.seq, next: best.h.next, taken: time.Unix(0, best.h.taken),
		state: bytes.Join(best.chunks, nil)}, true
}

// unreportedHealth is the health of a partition read for its checkpoints:
// a fetcher keeps one, but it is no assigned partition's, so its gauges are
// registered nowhere.
func unreportedHealth(id int) *partitionHealth {
	return newPartitionHealth(id, prometheus.NewGauge(prometheus.GaugeOpts{Name: "state_lag"}), prometheus.NewGauge(prometheus.GaugeOpts{Name: "state_stuck"}))
}

// scan reads input partition p's state partition backwards from its end
// until a complete snapshot of p is found or the log start is reached.
func (st *stateStore) scan(ctx context.Context, p int) (scanResult, error) {
	var r scanResult
	parts, err := st.c.dialer.LookupPartitions(ctx, "tcp", st.c.kc.Brokers[0], st.topic)
	if err != nil || len(parts) == 0 {
		// Any broker will do: the first may be the one that is down.
		for _, b := range st.c.kc.Brokers[1:] {
			if parts, err = st.c.dialer.LookupPartitions(ctx, "tcp", b, st.topic); err == nil && len(parts) > 0 {
				break
			}
		}
	}
	if err != nil {
		return r, fmt.Errorf("partitions of %s: %w", st.topic, err)
	}
	if len(parts) == 0 {
		return r, fmt.Errorf("state topic %s has no partitions", st.topic)
	}
	f := &fetcher{dialer: st.c.dialer, security: st.c.security, brokers: st.c.kc.Brokers, topic: st.topic, partition: p % len(parts),
		maxBytes: 4 << 20, log: st.c.log, free: make(chan chunk, 1), growTo: fetchGrowTo, inflateMax: maxInflate,
		health: unreportedHealth(p)}
	defer f.dec.close()
	conn, first, err := f.connect(ctx, kafka.FirstOffset)
	if err != nil {
		return r, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := conn.conn.SetDeadline(time.Now().Add(fetchReadTimeout)); err != nil {
		return r, err
	}
	end, err := conn.listOffset(f.topic, f.partition, kafka.LastOffset, false)
	if err != nil {
		return r, fmt.Errorf("end of %s[%d]: %w", f.topic, f.partition, err)
	}
	to := end
	for window := int64(checkpointScanFirst); to > first; window *= 4 {
		from := max(first, end-window)
		for off := from; off < to; {
			c, next, err := f.fetch(conn, off)
			if err != nil {
				return r, fmt.Errorf("read %s[%d] at %d: %w", f.topic, f.partition, off, err)
			}
			if next <= off {
				break // nothing more below to: compacted away
			}
			for i := range c.msgs {
				m := &c.msgs[i]
				if m.Offset >= to {
					break
				}
				if q, ok := chunkPartition(m.Key); !ok || q != p || m.Value == nil {
					continue
				}
				h, b, err := parseChunk(m.Value)
				switch {
				case errors.Is(err, errIncompatibleChunk):
					if len(r.bad) == 0 || r.bad[len(r.bad)-1].Error() != err.Error() {
						r.bad = append(r.bad, err) // once, not once per chunk
					}
					continue
				case err != nil || h.partition != p:
					continue
				}
				r.add(h, b)
			}
			f.recycle(c)
			off = next
		}
		if _, ok := r.best(); ok {
			return r, nil
		}
		to = from
	}
	return r, nil
}

// partitionCheckpoints saves and restores one partition assignment's state.
// Used by the partition's goroutine; a save runs in the background, one at
// a time, while the partition goes on.
type partitionCheckpoints struct {
	st        *stateStore
	cp        Checkpointer
	id        int
	interval  time.Duration
	log       zerolog.Logger
	seq       uint64 // of the last snapshot taken or found
	slotCount [2]int // chunks of each slot's last snapshot: see save
	taken     time.Time
	// dirty: the state changed since the last snapshot taken. tainted: a
	// Handle or Idle failed part way, so the state may hold messages whose
	// output was not written: it must never be saved.
	dirty, tainted bool
	inflight       chan struct{} // closed when the background save ends; nil when none
	// Written by the background save, read once inflight is closed.
	spare      []byte // the buffer of the last snapshot, once saved
	saveFailed bool
}

func (st *stateStore) partition(id int, cp Checkpointer, log zerolog.Logger) *partitionCheckpoints {
	// The first checkpoint of a partition that has none is taken at once.
	return &partitionCheckpoints{st: st, cp: cp, id: id, interval: st.c.cfg.Checkpoints.Interval, log: log}
}

// restore loads the partition's latest checkpoint and hands it to the
// handler. It returns the offset the state covers up to, and false when
// the partition must go on without a checkpoint: none was written yet, it
// cannot be used (counted, logged), or the state topic could not be read
// in time.
func (pc *partitionCheckpoints) restore(ctx context.Context, f *fetcher, committed int64) (int64, bool) {
	start := time.Now()
	loadCtx, cancel := context.WithTimeout(ctx, checkpointLoadTimeout)
	defer cancel()
	s, found, seen, err := pc.st.load(loadCtx, pc.id, pc.log)
	pc.seq, pc.slotCount = seen.maxSeq, seen.slotCount
	for _, bad := range seen.bad {
		pc.discard(reasonOf(bad), bad)
	}
	switch {
	case ctx.Err() != nil:
		return 0, false
	case err != nil:
		pc.discard("unreadable", err)
		return 0, false
	case !found:
		pc.log.Info().Str("state_topic", pc.st.topic).Msg("no checkpoint of the partition yet")
		return 0, false
	}
	err = pc.usable(loadCtx, f, s.next, committed)
	for errors.Is(err, errBounds) && loadCtx.Err() == nil {
		// A leader moving or a broker down: the checkpoint may well be
		// good, and starting cold would lose the state it holds.
		pc.log.Warn().Err(err).Msg("the partition's bounds could not be read to check its checkpoint; retrying")
		if retry.Sleep(loadCtx, time.Second) != nil {
			break
		}
		err = pc.usable(loadCtx, f, s.next, committed)
	}
	switch {
	case ctx.Err() != nil:
		return 0, false
	case err != nil:
		pc.discard("offset", err)
		return 0, false
	}
	if err := pc.cp.Restore(s.state, s.taken); err != nil {
		pc.discard(reasonOf(err), err)
		return 0, false
	}
	d := time.Since(start)
	pc.st.metrics.restored.Inc()
	pc.st.metrics.restoreSeconds.Observe(d.Seconds())
	pc.log.Info().Int64("offset", s.next).Int64("committed", committed).Int("bytes", len(s.state)).
		Time("taken", s.taken).Stringer("took", d).Msg("state restored from checkpoint")
	pc.taken, pc.spare = time.Now(), s.state
	return s.next, true
}

// usable checks that a snapshot covering the messages before next fits the
// partition's log: a snapshot from before the log was recreated lies beyond
// its end, and one before the committed offset needs the messages in
// between, which retention may have deleted.
func (pc *partitionCheckpoints) usable(ctx context.Context, f *fetcher, next, committed int64) error {
	conn, first, err := f.connect(ctx, kafka.FirstOffset)
	if err != nil {
		return fmt.Errorf("%w: start of the partition: %w", errBounds, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := conn.conn.SetDeadline(time.Now().Add(fetchReadTimeout)); err != nil {
		return fmt.Errorf("%w: %w", errBounds, err)
	}
	end, err := conn.listOffset(f.topic, f.partition, kafka.LastOffset, false)
	switch {
	case err != nil:
		return fmt.Errorf("%w: end of the partition: %w", errBounds, err)
	case next > end:
		return fmt.Errorf("the checkpoint covers up to offset %d, beyond the partition's end %d (was the topic recreated?)", next, end)
	case next < committed && next < first:
		return fmt.Errorf("the checkpoint covers up to offset %d, but retention deleted the messages up to %d, so the committed offset %d cannot be caught up with", next, first, committed)
	}
	return nil
}

// errBounds marks a failure to read a partition's bounds, which a retry
// may cure, as opposed to bounds that rule the checkpoint out.
var errBounds = errors.New("partition bounds unknown")

func reasonOf(err error) string {
	switch {
	case errors.Is(err, stream.ErrIncompatible), errors.Is(err, errIncompatibleChunk):
		return "incompatible"
	case errors.Is(err, stream.ErrCorrupt), errors.Is(err, errCorruptChunk):
		return "corrupt"
	}
	return "corrupt"
}

func (pc *partitionCheckpoints) discard(reason string, err error) {
	pc.st.metrics.discarded.WithLabelValues(reason).Inc()
	pc.log.Warn().Err(err).Str("reason", reason).Str("state_topic", pc.st.topic).Msg("checkpoint discarded; the partition starts without it")
}

// The methods below are called for every partition; they do nothing on a
// nil *partitionCheckpoints (no checkpoints).

// changed records that the handler's state moved on; failed, that it may
// now hold what was not written.
func (pc *partitionCheckpoints) changed(failed bool) {
	if pc == nil {
		return
	}
	pc.dirty = true
	pc.tainted = pc.tainted || failed
}

// maybeSave takes a snapshot of the state covering the messages before
// next, and saves it in the background, once Interval passed since the last
// one and the last save is done.
func (pc *partitionCheckpoints) maybeSave(ctx context.Context, next int64) {
	if pc == nil || !pc.dirty || pc.tainted || next <= 0 || time.Since(pc.taken) < pc.interval || pc.busy() {
		return
	}
	s, stale := pc.take(next)
	done := make(chan struct{})
	pc.inflight = done
	go func() {
		defer close(done)
		pc.save(ctx, s, stale)
	}()
}

// replayed counts n messages replayed after a restored checkpoint.
func (pc *partitionCheckpoints) replayed(n int) {
	if pc != nil {
		pc.st.metrics.replayed.Add(float64(n))
	}
}

func (pc *partitionCheckpoints) busy() bool {
	if pc.inflight == nil {
		return false
	}
	select {
	case <-pc.inflight:
		pc.collect()
		return false
	default:
		return true
	}
}

// collect takes in the outcome of the background save, which has ended.
func (pc *partitionCheckpoints) collect() {
	pc.inflight = nil
	if pc.saveFailed {
		pc.dirty, pc.saveFailed = true, false
	}
}

func (pc *partitionCheckpoints) take(next int64) (snapshot, int) {
	pc.seq++
	pc.taken = time.Now()
	pc.dirty = false
	s := snapshot{partition: pc.id, seq: pc.seq, next: next, taken: pc.taken, state: pc.cp.Checkpoint(pc.spare[:0])}
	pc.spare = nil // the save owns it
	return s, pc.slotCount[s.seq%2]
}

func (pc *partitionCheckpoints) save(ctx context.Context, s snapshot, stale int) {
	n, err := pc.st.save(ctx, s, stale)
	if err != nil {
		if ctx.Err() == nil {
			pc.log.Warn().Err(err).Msg("checkpoint not written; the next one is tried at the next interval")
		}
		pc.saveFailed = true
		return
	}
	pc.slotCount[s.seq%2] = n
	pc.spare = s.state
	pc.log.Debug().Int64("offset", s.next).Int("bytes", len(s.state)).Msg("checkpoint written")
}

// finish waits for the save in flight, then saves the state covering the
// messages before next, when it changed and can be trusted: a partition
// revoked or stopped leaves its next owner a checkpoint at the exact
// position, so that a rebalance costs a restore, not a replay.
func (pc *partitionCheckpoints) finish(ctx context.Context, next int64) {
	if pc.inflight != nil {
		<-pc.inflight
		pc.collect()
	}
	if !pc.dirty || pc.tainted || next <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkpointFinalTimeout)
	defer cancel()
	s, stale := pc.take(next)
	pc.save(ctx, s, stale)
	pc.collect()
}
