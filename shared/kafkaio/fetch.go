package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/retry"
)

// fetcher reads one partition from its leader, one fetch response at a
// time, and hands on each response's messages as one slice. kafka.Reader
// passes messages on one by one through a channel, resetting the socket
// deadline and its statistics for each; that costs more per message than
// the analyzer's whole analysis of a point.
type fetcher struct {
	dialer    *kafka.Dialer
	brokers   []string
	topic     string
	partition int
	maxBytes  int           // of one fetch response, which is held in memory whole
	maxWait   time.Duration // the broker holds an empty fetch this long
	backoff   retry.Backoff // between failed attempts
	log       zerolog.Logger
	// free returns slices whose messages were all taken, for reuse: a
	// response holds thousands of messages. New ones are made as long as
	// the last response, so they do not grow message by message.
	free     chan []kafka.Message
	lastSize int
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
func (f *fetcher) run(ctx context.Context, offset int64, out chan<- []kafka.Message, errc chan<- error) {
	defer close(out)
	var conn *kafka.Conn
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
		msgs, err := f.fetch(conn)
		if len(msgs) > 0 {
			offset = msgs[len(msgs)-1].Offset + 1
			select {
			case out <- msgs:
			case <-ctx.Done():
				return
			}
		}
		switch {
		case ctx.Err() != nil:
			return
		case err == nil, errors.Is(err, kafka.RequestTimedOut):
			attempt = 0
			offset, _ = conn.Offset() // past compacted records too
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

// connect dials the partition's leader through the first broker that
// answers and positions the connection at offset, moved to the oldest
// message the broker holds when offset is before it (or FirstOffset).
func (f *fetcher) connect(ctx context.Context, offset int64) (*kafka.Conn, int64, error) {
	var errs []error
	for _, broker := range f.brokers {
		conn, err := f.dialer.DialLeader(ctx, "tcp", broker, f.topic, f.partition)
		if err != nil {
			errs = append(errs, fmt.Errorf("via %s: %w", broker, err))
			continue
		}
		first, _, err := conn.ReadOffsets()
		if err != nil {
			conn.Close()
			errs = append(errs, fmt.Errorf("read offsets via %s: %w", broker, err))
			continue
		}
		if offset < first {
			if offset != kafka.FirstOffset {
				f.log.Warn().Int64("offset", offset).Int64("oldest", first).Int64("lost", first-offset).
					Msg("messages were deleted before they were consumed; continuing from the oldest")
			}
			offset = first
		}
		if _, err := conn.Seek(offset, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
			conn.Close()
			return nil, offset, fmt.Errorf("seek to %d: %w", offset, err)
		}
		return conn, offset, nil
	}
	return nil, offset, fmt.Errorf("partition %d of %s: %w", f.partition, f.topic, errors.Join(errs...))
}

// fetch reads one fetch response whole: at most maxBytes, or nothing after
// maxWait.
func (f *fetcher) fetch(conn *kafka.Conn) ([]kafka.Message, error) {
	if err := conn.SetReadDeadline(time.Now().Add(f.maxWait + fetchReadTimeout)); err != nil {
		return nil, err
	}
	batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: f.maxBytes, MaxWait: f.maxWait})
	var msgs []kafka.Message
	for {
		m, err := batch.ReadMessage()
		if err != nil {
			break
		}
		if msgs == nil {
			msgs = f.reuse()
		}
		msgs = append(msgs, m)
	}
	err := batch.Close()
	if errors.Is(err, io.EOF) {
		err = nil
	}
	f.lastSize = max(f.lastSize, len(msgs))
	return msgs, err
}

func (f *fetcher) reuse() []kafka.Message {
	select {
	case msgs := <-f.free:
		return msgs[:0]
	default:
		return make([]kafka.Message, 0, max(256, f.lastSize))
	}
}

// recycle hands back a slice whose messages were all taken.
func (f *fetcher) recycle(msgs []kafka.Message) {
	clear(msgs[:cap(msgs)]) // drops the payloads
	select {
	case f.free <- msgs:
	default:
	}
}
