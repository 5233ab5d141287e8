package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/retry"
)

// fetcher reads one partition from its leader, one fetch response at a
// time, and hands on each response's messages as one slice, decoded in
// place (records.go). kafka.Reader passes messages on one by one through a
// channel, copying each one's key, value and headers; that costs more per
// message than the analyzer's whole analysis of a point.
type fetcher struct {
	dialer    *kafka.Dialer // looks up the partition's leader
	security  wireSecurity
	brokers   []string
	topic     string
	partition int
	maxBytes  int           // of one fetch response, which is held in memory whole
	maxWait   time.Duration // the broker holds an empty fetch this long
	backoff   retry.Backoff // between failed attempts
	log       zerolog.Logger
	// free returns chunks whose messages were all handled, for reuse: a
	// response holds thousands of messages, and its buffer a megabyte.
	// New ones are made as long as the last response, so they do not grow
	// message by message.
	free     chan chunk
	lastSize int

	policy FetchPolicy
	// resume is the offset from which messages are new to the group: those
	// before it were handled by an earlier owner, and are not lost when
	// they are skipped.
	resume int64
	// growTo is the largest fetch size tried for a record batch larger
	// than maxBytes, before it counts as corrupt.
	growTo int
	// inflateMax bounds the decompressed bytes of one response.
	inflateMax int
	// refresh is how often the partition end is read again, for the lag,
	// while a response waits for the handler.
	refresh time.Duration
	health  *partitionHealth
	metrics partitionMetrics

	// Kept by run.
	hot          zerolog.Logger // sampled: for what repeats while a fault lasts
	dec          decompressor
	aborted      []abortedTxn // the last response's, reused
	active       []int64      // the decoder's, reused
	size         int          // of the next fetch: maxBytes, or more for a large batch
	corruptAt    int64        // the offset of the last undecodable fetch
	corruptTries int          // how many times in a row it failed there
}

// chunk is one fetch response's messages, the buffer they alias and their
// headers: valid until recycled. A chunk with jump set holds no messages:
// it tells the partition that the fetch offset moved to to, skipping the
// offsets in between or, moving back, delivering some again. With passed
// also set, the fetch went past offsets that hold nothing to deliver
// (transaction markers, aborted transactions' records): nothing was lost.
type chunk struct {
	msgs    []kafka.Message
	resp    []byte
	headers []kafka.Header
	jump    bool
	passed  bool
	to      int64
}

// fetchReadTimeout bounds reading one fetch response after the broker's
// wait: a leader that stops answering mid-response is redialled.
const fetchReadTimeout = 30 * time.Second

// corruptRetries is how many times a batch that cannot be decoded is
// fetched again before --on-corrupt-batch applies: a damaged response (a
// bad proxy, a broker's disk error it recovers from) reads well the next
// time, a damaged log never does.
const corruptRetries = 3

// run fetches from offset (kafka.FirstOffset: the oldest message) and sends
// the messages of every non-empty response to out, in offset order, until
// ctx ends; then it closes out. Every failure is retried with backoff,
// counted by code and logged (sampled), except those retrying cannot cure,
// such as a denied authorisation, which are sent to errc. An offset out of
// range, and a batch that cannot be decoded, follow f.policy and are sent
// to out as a jump when the offset moves.
func (f *fetcher) run(ctx context.Context, offset int64, out chan<- chunk, errc chan<- error) {
	defer close(out)
	defer f.dec.close()
	f.hot = f.log.Sample(&zerolog.BurstSampler{Burst: 3, Period: 30 * time.Second})
	f.size = f.maxBytes
	var conn *wireConn
	closeConn := func() {}
	drop := func() {
		closeConn()
		conn, closeConn = nil, func() {}
	}
	defer func() { closeConn() }()
	for attempt := 0; ctx.Err() == nil; {
		if attempt > 0 && retry.Sleep(ctx, f.backoff.Delay(attempt-1)) != nil {
			return
		}
		if conn == nil {
			var err error
			if conn, offset, err = f.connect(ctx, offset); err != nil {
				code := "network"
				var kerr kafka.Error
				if errors.As(err, &kerr) { // from the metadata, or SASL
					if brokerAction(kerr) == actionFatal {
						select {
						case errc <- fmt.Errorf("connect: %w", err):
						default:
						}
						return
					}
					code = strconv.Itoa(int(kerr))
				}
				attempt++
				f.metrics.errors.WithLabelValues(code).Inc()
				f.hot.Warn().Err(err).Int("attempt", attempt).Msg("connecting to the partition leader failed; retrying")
				continue
			}
			// A stop closes the connection, which ends a fetch in progress.
			c := conn
			stop := context.AfterFunc(ctx, func() { c.Close() })
			closeConn = func() { stop(); c.Close() }
		}
		c, next, err := f.fetch(conn, offset)
		if err == nil || next > offset {
			f.fine(offset) // before the messages go: they show it
		}
		// Records handed on end at delivered; the fetch may have gone past
		// them over transaction markers and aborted transactions' records.
		delivered := offset
		if len(c.msgs) > 0 {
			delivered = c.msgs[len(c.msgs)-1].Offset + 1
		}
		offset = next
		if len(c.msgs) > 0 {
			sent, lost := f.send(ctx, conn, out, c)
			if !sent {
				return
			}
			if lost != nil {
				drop()
			}
		}
		// Tell the partition, so that it commits past them: a topic that
		// ends with a marker would otherwise show a lag of 1 for ever.
		if next > delivered && !f.pass(ctx, out, next) {
			return
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			attempt = 0
			continue
		}
		var kerr kafka.Error
		var corrupt *corruptBatchError
		action, code := actionRetry, "network"
		switch {
		case errors.As(err, &kerr):
			action, code = brokerAction(kerr), strconv.Itoa(int(kerr))
		case errors.As(err, &corrupt):
			action, code = actionCorrupt, "corrupt"
			if errors.Is(err, errIncomplete) && f.size < f.growTo {
				// The first batch is larger than the fetch: fetch it whole,
				// as Kafka's consumers did before brokers returned such a
				// batch regardless (KIP-74).
				f.size = min(2*f.size, f.growTo)
				f.log.Debug().Int64("offset", offset).Int("max_bytes", f.size).Msg("record batch larger than the fetch; fetching more")
				continue
			}
		}
		if action == actionFatal {
			select {
			case errc <- fmt.Errorf("fetch at offset %d: %w", offset, err):
			default:
			}
			return
		}
		f.metrics.errors.WithLabelValues(code).Inc()
		switch action {
		case actionRefetch:
			attempt = 0
		case actionOutOfRange:
			to, err := f.outOfRange(conn, offset)
			switch {
			case err != nil:
				attempt++
				f.hot.Warn().Err(err).Int64("offset", offset).Int("attempt", attempt).Msg("offset out of range, and finding the log's bounds failed; retrying")
				drop()
			case to == offset: // a new leader listed the log before it caught up
				attempt++
				f.hot.Warn().Int64("offset", offset).Int("attempt", attempt).Msg("offset out of range, but within the log's bounds; retrying")
				drop()
			case !f.jump(ctx, out, to):
				return
			default:
				offset, attempt = to, 0
			}
		case actionCorrupt:
			to := offset + 1 // a broker's CORRUPT_MESSAGE names no batch
			if corrupt != nil {
				to = corrupt.next
			}
			if !f.corrupted(offset, err) {
				attempt++
				drop() // a damaged connection reads well after a redial
				continue
			}
			f.skipCorrupt(offset, to, err)
			if !f.jump(ctx, out, to) {
				return
			}
			offset, attempt = to, 0
		default:
			attempt++
			f.hot.Warn().Err(err).Int64("offset", offset).Int("attempt", attempt).Msg("fetch failed; reconnecting")
			drop()
		}
	}
}

// send hands c to out, and reads the partition end again every f.refresh
// while the handler is busy, so that the lag keeps counting what arrives.
// It returns false on a stop, and the connection's failure, if it failed.
func (f *fetcher) send(ctx context.Context, conn *wireConn, out chan<- chunk, c chunk) (bool, error) {
	select {
	case out <- c:
		return true, nil
	case <-ctx.Done():
		return false, nil
	default:
	}
	tick := time.NewTicker(f.refresh)
	defer tick.Stop()
	var lost error
	for {
		select {
		case out <- c:
			return true, lost
		case <-ctx.Done():
			return false, nil
		case <-tick.C:
			if lost != nil {
				continue
			}
			if lost = conn.conn.SetDeadline(time.Now().Add(fetchReadTimeout)); lost == nil {
				var end int64
				if end, lost = conn.listOffset(f.topic, f.partition, kafka.LastOffset, f.policy.readCommitted()); lost == nil {
					f.health.setEnd(end)
				}
			}
		}
	}
}

// pass tells the partition that the fetch went past offsets with nothing
// to deliver, up to to; false on a stop.
func (f *fetcher) pass(ctx context.Context, out chan<- chunk, to int64) bool {
	select {
	case out <- chunk{jump: true, passed: true, to: to}:
		return true
	case <-ctx.Done():
		return false
	}
}

// jump tells the partition the fetch offset moved to to; false on a stop.
func (f *fetcher) jump(ctx context.Context, out chan<- chunk, to int64) bool {
	f.resume = min(f.resume, to) // moving back, what follows is handled again
	select {
	case out <- chunk{jump: true, to: to}:
		return true
	case <-ctx.Done():
		return false
	}
}

// fine notes a fetch at offset that succeeded or moved on: a stuck
// partition recovered.
func (f *fetcher) fine(offset int64) {
	f.size, f.corruptTries = f.maxBytes, 0
	if f.health.clearStuck() {
		f.log.Info().Int64("offset", offset).Msg("partition no longer stuck: the batch reads well")
	}
}

// corrupted notes an undecodable fetch at offset, and reports whether
// the partition moves past it: after corruptRetries in a row, under
// --on-corrupt-batch skip. Under stop, the partition is reported stuck
// and the batch retried at the backoff's slowest.
func (f *fetcher) corrupted(offset int64, err error) bool {
	if f.corruptAt != offset {
		f.corruptAt, f.corruptTries = offset, 0
	}
	if f.corruptTries++; f.corruptTries <= corruptRetries {
		f.hot.Warn().Err(err).Int64("offset", offset).Int("attempt", f.corruptTries).Msg("record batch cannot be decoded; fetching it again")
		return false
	}
	if !f.policy.skipCorrupt() {
		if f.health.setStuck(time.Now(), offset, err) {
			f.log.Error().Err(err).Int64("offset", offset).Msg("partition stuck at a record batch that cannot be decoded (--on-corrupt-batch stop); retrying it slowly")
		} else {
			f.hot.Error().Err(err).Int64("offset", offset).Msg("partition still stuck at a record batch that cannot be decoded")
		}
		return false
	}
	f.corruptTries = 0
	return true
}

// skipCorrupt counts and logs the move past an undecodable batch.
func (f *fetcher) skipCorrupt(from, to int64, err error) {
	lost := f.lost(from, to)
	f.metrics.resets.WithLabelValues("corrupt").Inc()
	f.metrics.skipped.WithLabelValues("corrupt").Add(float64(lost))
	f.log.Error().Err(err).Int64("from", from).Int64("to", to).Int64("lost", lost).
		Msg("skipping a record batch that cannot be decoded (--on-corrupt-batch skip)")
}

// lost returns how many of the offsets from..to-1 the group never handled:
// those before resume, an earlier owner did.
func (f *fetcher) lost(from, to int64) int64 { return max(0, to-max(from, f.resume)) }

// outOfRange returns where to go on from offset, which the leader called
// out of range: the log start when the offset is before it (retention
// deleted what was there); the log start or end per --reset-offset when
// it is beyond the end (the topic was recreated, or an unclean leader
// election truncated it). Either move is counted and logged, once. When
// the offset lies within the log's bounds after all, it returns it.
func (f *fetcher) outOfRange(conn *wireConn, offset int64) (int64, error) {
	if err := conn.conn.SetDeadline(time.Now().Add(fetchReadTimeout)); err != nil {
		return 0, err
	}
	first, err := conn.listOffset(f.topic, f.partition, kafka.FirstOffset, false)
	if err != nil {
		return 0, fmt.Errorf("oldest offset: %w", err)
	}
	end, err := conn.listOffset(f.topic, f.partition, kafka.LastOffset, false)
	if err != nil {
		return 0, fmt.Errorf("newest offset: %w", err)
	}
	switch {
	case offset < first:
		lost := f.lost(offset, first)
		f.metrics.resets.WithLabelValues("below_start").Inc()
		f.metrics.skipped.WithLabelValues("retention").Add(float64(lost))
		f.log.Warn().Int64("from", offset).Int64("to", first).Int64("lost", lost).
			Msg("messages were deleted before they were consumed; continuing from the oldest")
		return first, nil
	case offset > end:
		to, lost := first, int64(0)
		if f.policy.resetLatest() {
			if f.policy.readCommitted() {
				if end, err = conn.listOffset(f.topic, f.partition, kafka.LastOffset, true); err != nil {
					return 0, fmt.Errorf("last stable offset: %w", err)
				}
			}
			to, lost = end, end-first
		}
		policy := ResetEarliest
		if f.policy.resetLatest() {
			policy = ResetLatest
		}
		f.metrics.resets.WithLabelValues("beyond_end").Inc()
		f.metrics.skipped.WithLabelValues("reset_" + policy).Add(float64(lost))
		f.log.Error().Int64("from", offset).Int64("to", to).Int64("oldest", first).Int64("end", end).Int64("lost", lost).Str("reset_offset", policy).
			Msg("offset beyond the log end (topic recreated, or truncated by an unclean leader election); continuing from --reset-offset")
		return to, nil
	}
	return offset, nil
}

// connect dials the partition's leader, found through the first broker
// that answers, and returns offset, resolved to the oldest message the
// broker holds when it is kafka.FirstOffset.
func (f *fetcher) connect(ctx context.Context, offset int64) (*wireConn, int64, error) {
	var errs []error
	for _, broker := range f.brokers {
		leader, err := f.dialer.LookupLeader(ctx, "tcp", broker, f.topic, f.partition)
		if err != nil {
			errs = append(errs, fmt.Errorf("leader via %s: %w", broker, err))
			continue
		}
		addr := net.JoinHostPort(leader.Host, strconv.Itoa(leader.Port))
		conn, err := dialWire(ctx, addr, f.security)
		if err != nil {
			errs = append(errs, fmt.Errorf("leader %s: %w", addr, err))
			continue
		}
		if offset == kafka.FirstOffset {
			first, err := f.oldest(conn)
			if err != nil {
				conn.Close()
				errs = append(errs, fmt.Errorf("oldest offset from %s: %w", addr, err))
				continue
			}
			offset = first
			f.health.initNext(first)
		}
		return conn, offset, nil
	}
	return nil, offset, fmt.Errorf("partition %d of %s: %w", f.partition, f.topic, errors.Join(errs...))
}

// warmStart returns the first offset whose message time is at most warmUp
// before that of the message before committed, for a Warmer to replay up to
// committed. It is best effort: on failure it warns and returns committed,
// so the partition starts cold rather than not at all.
func (f *fetcher) warmStart(ctx context.Context, committed int64, warmUp time.Duration) int64 {
	start, err := f.offsetBefore(ctx, committed, warmUp)
	switch {
	case err != nil && ctx.Err() == nil:
		f.log.Warn().Err(err).Int64("offset", committed).Msg("finding where to warm up from failed; starting cold")
	case err == nil && start < committed:
		f.log.Info().Int64("from", start).Int64("offset", committed).Dur("warm_up", warmUp).Msg("replaying the messages before the committed offset to warm up")
		return start
	}
	return committed
}

func (f *fetcher) offsetBefore(ctx context.Context, committed int64, warmUp time.Duration) (int64, error) {
	conn, oldest, err := f.connect(ctx, kafka.FirstOffset)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if oldest >= committed {
		return committed, nil // retention deleted what came before
	}
	probe := *f
	probe.maxBytes, probe.size, probe.maxWait, probe.dec = warmProbeBytes, warmProbeBytes, 0, decompressor{}
	defer probe.dec.close()
	c, _, err := probe.fetch(conn, committed-1)
	if err != nil {
		return 0, fmt.Errorf("fetch at offset %d: %w", committed-1, err)
	}
	if len(c.msgs) == 0 {
		return committed, nil
	}
	at := c.msgs[0].Time.Add(-warmUp)
	f.recycle(c)
	if err := conn.conn.SetDeadline(time.Now().Add(fetchReadTimeout)); err != nil {
		return 0, err
	}
	start, err := conn.listOffset(f.topic, f.partition, at.UnixMilli(), false)
	switch {
	case err != nil:
		return 0, fmt.Errorf("offset at %s: %w", at.Format(time.RFC3339Nano), err)
	case start < 0 || start > committed: // no message that recent: timestamps not in order
		return committed, nil
	}
	return start, nil
}

func (f *fetcher) oldest(conn *wireConn) (int64, error) {
	if err := conn.conn.SetDeadline(time.Now().Add(fetchReadTimeout)); err != nil {
		return 0, err
	}
	return conn.listOffset(f.topic, f.partition, kafka.FirstOffset, false)
}

// fetch reads one fetch response from offset: at most f.size bytes, or
// nothing after maxWait. It returns the offset to fetch next, and sets the
// partition end from the response.
func (f *fetcher) fetch(conn *wireConn, offset int64) (chunk, int64, error) {
	if err := conn.conn.SetDeadline(time.Now().Add(f.maxWait + fetchReadTimeout)); err != nil {
		return chunk{}, offset, err
	}
	c, stale := f.reuse()
	readCommitted := f.policy.readCommitted()
	res, err := conn.fetch(c.resp, f.aborted, fetchArgs{topic: f.topic, partition: f.partition, offset: offset,
		maxWait: f.maxWait, maxBytes: max(f.size, f.maxBytes), readCommitted: readCommitted})
	c.resp, f.aborted = res.resp, res.aborted
	if err == nil {
		end := res.highWaterMark
		if readCommitted && res.lastStable >= 0 {
			end = res.lastStable // what a read_committed fetch can reach
		}
		f.health.setEnd(end)
	}
	if err != nil || len(res.records) == 0 {
		f.recycle(c)
		return chunk{}, offset, err
	}
	rs := recordSet{topic: f.topic, partition: f.partition, highWaterMark: res.highWaterMark, from: offset,
		msgs: c.msgs, headers: c.headers[:0], readCommitted: readCommitted, aborted: res.aborted, active: f.active[:0],
		inflateMax: f.inflateMax, dec: &f.dec}
	next, err := rs.decode(res.records)
	f.active = rs.active
	if n := len(rs.msgs); n < stale && cap(rs.msgs) == cap(c.msgs) {
		clear(rs.msgs[n:stale]) // what the slice's last use left behind would pin an old response
	}
	c.msgs, c.headers = rs.msgs, rs.headers
	if len(c.msgs) == 0 {
		f.recycle(c)
		return chunk{}, next, err
	}
	f.lastSize = max(f.lastSize, len(c.msgs))
	return c, next, err
}

// reuse returns a recycled chunk emptied, or a new one, and how many
// messages of its last use its slice still holds.
func (f *fetcher) reuse() (chunk, int) {
	select {
	case c := <-f.free:
		stale := len(c.msgs)
		c.msgs = c.msgs[:0]
		return c, stale
	default:
		return chunk{msgs: make([]kafka.Message, 0, max(256, f.lastSize))}, 0
	}
}

// recycle hands back a chunk no message of which is in use any more. Its
// messages are overwritten by the next response rather than cleared now:
// clearing pointers cost as much as decoding the messages. A buffer grown
// for an unusually large batch is let go.
func (f *fetcher) recycle(c chunk) {
	if c.jump {
		return
	}
	if cap(c.resp) > 2*f.maxBytes+(64<<10) {
		c.resp = nil
	}
	select {
	case f.free <- c:
	default:
	}
}
