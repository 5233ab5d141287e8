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
}

// chunk is one fetch response's messages, the buffer they alias and their
// headers: valid until recycled.
type chunk struct {
	msgs    []kafka.Message
	resp    []byte
	headers []kafka.Header
}

// fetchReadTimeout bounds reading one fetch response after the broker's
// wait: a leader that stops answering mid-response is redialled.
const fetchReadTimeout = 30 * time.Second

// run fetches from offset (kafka.FirstOffset: the oldest message) and sends
// the messages of every non-empty response to out, in offset order, until
// ctx ends; then it closes out. Connection failures and leader changes are
// retried with backoff, logged, by redialling. An offset the broker no
// longer holds (deleted by retention) skips to the oldest one it holds, with
// a warning naming the messages lost, as kafka.Reader does. A Kafka error
// retrying cannot cure, such as a denied authorisation, is sent to errc.
func (f *fetcher) run(ctx context.Context, offset int64, out chan<- chunk, errc chan<- error) {
	defer close(out)
	var conn *wireConn
	closeConn := func() {}
	defer func() { closeConn() }()
	for attempt := 0; ctx.Err() == nil; {
		if attempt > 0 && retry.Sleep(ctx, f.backoff.Delay(attempt-1)) != nil {
			return
		}
		if conn == nil {
			var err error
			if conn, offset, err = f.connect(ctx, offset); err != nil {
				attempt++
				f.log.Warn().Err(err).Int("attempt", attempt).Msg("connecting to the partition leader failed; retrying")
				continue
			}
			// A stop closes the connection, which ends a fetch in progress.
			c := conn
			stop := context.AfterFunc(ctx, func() { c.Close() })
			closeConn = func() { stop(); c.Close() }
		}
		c, next, err := f.fetch(conn, offset)
		offset = next
		if len(c.msgs) > 0 {
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
		switch {
		case ctx.Err() != nil:
			return
		case err == nil, errors.Is(err, kafka.RequestTimedOut):
			attempt = 0
		case errors.Is(err, kafka.OffsetOutOfRange):
			attempt++
			f.log.Warn().Err(err).Int64("offset", offset).Int("attempt", attempt).Msg("offset out of range; retrying")
			closeConn()
			conn = nil // connect moves an offset before the oldest on
		default:
			var kerr kafka.Error
			if errors.As(err, &kerr) && !kerr.Temporary() && !errors.Is(err, kafka.NotLeaderForPartition) &&
				!errors.Is(err, kafka.UnknownTopicOrPartition) {
				select {
				case errc <- fmt.Errorf("fetch at offset %d: %w", offset, err):
				default:
				}
				return
			}
			attempt++
			f.log.Warn().Err(err).Int64("offset", offset).Int("attempt", attempt).Msg("fetch failed; reconnecting")
			closeConn()
			conn = nil
		}
	}
}

// connect dials the partition's leader, found through the first broker
// that answers, and returns offset moved to the oldest message the broker
// holds when it is before that (or FirstOffset).
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
		first, err := f.oldest(conn)
		if err != nil {
			conn.Close()
			errs = append(errs, fmt.Errorf("oldest offset from %s: %w", addr, err))
			continue
		}
		if offset < first {
			if offset != kafka.FirstOffset {
				f.log.Warn().Int64("offset", offset).Int64("oldest", first).Int64("lost", first-offset).
					Msg("messages were deleted before they were consumed; continuing from the oldest")
			}
			offset = first
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
	probe.maxBytes, probe.maxWait = warmProbeBytes, 0
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
	start, err := conn.listOffset(f.topic, f.partition, at.UnixMilli())
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
	return conn.listOffset(f.topic, f.partition, kafka.FirstOffset)
}

// fetch reads one fetch response from offset: at most maxBytes, or nothing
// after maxWait. It returns the offset to fetch next.
func (f *fetcher) fetch(conn *wireConn, offset int64) (chunk, int64, error) {
	if err := conn.conn.SetDeadline(time.Now().Add(f.maxWait + fetchReadTimeout)); err != nil {
		return chunk{}, offset, err
	}
	c, stale := f.reuse()
	res, err := conn.fetch(c.resp, f.topic, f.partition, offset, f.maxWait, f.maxBytes)
	c.resp = res.resp
	if err != nil || len(res.records) == 0 {
		f.recycle(c)
		return chunk{}, offset, err
	}
	rs := recordSet{topic: f.topic, partition: f.partition, highWaterMark: res.highWaterMark, from: offset,
		msgs: c.msgs, headers: c.headers[:0]}
	next, err := rs.decode(res.records)
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
// clearing pointers cost as much as decoding the messages.
func (f *fetcher) recycle(c chunk) {
	select {
	case f.free <- c:
	default:
	}
}
