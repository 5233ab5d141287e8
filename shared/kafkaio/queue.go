package kafkaio

import (
	"context"
	"errors"

	"github.com/segmentio/kafka-go"
)

// errJump reports that the fetcher moved the fetch offset (see chunk).
var errJump = errors.New("fetch offset moved")

// queue holds a partition's fetched messages not yet in a batch.
type queue struct {
	in      <-chan chunk
	errc    <-chan error
	recycle func(chunk)     // takes back a chunk no batch refers to any more
	chunk   chunk           // the last received
	pending []kafka.Message // its messages not yet taken
	taken   []chunk         // chunks all taken, still referred to by the batch
	own     []kafka.Message // backing store of batches that span chunks
	err     error           // the fetcher's failure, returned by every later wait
	jumped  bool            // the fetcher moved the offset, to jumpTo
	jumpTo  int64
	passed  bool // the move went past offsets with nothing to deliver
}

// wait returns nil once messages are pending, or the fetcher's error, or
// errJump until takeJump, or ctx's.
func (q *queue) wait(ctx context.Context) error {
	if len(q.pending) > 0 || q.err != nil {
		return q.err
	}
	if q.jumped {
		return errJump
	}
	select {
	case c, ok := <-q.in:
		if ok && c.jump {
			q.jumped, q.jumpTo, q.passed = true, c.to, c.passed
			return errJump
		}
		if ok {
			q.chunk, q.pending = c, c.msgs
			return nil
		}
		select { // the fetcher ended: a failure, or the stop
		case q.err = <-q.errc:
		default:
			q.err = errors.New("fetcher stopped")
		}
	case q.err = <-q.errc:
	case <-ctx.Done():
		return ctx.Err()
	}
	return q.err
}

// take appends up to n pending messages to batch. A batch taken from one
// chunk is a window of it rather than a copy (a message is 152 bytes;
// copying every one took a twentieth of the consumer's CPU); only a batch
// spanning chunks is copied. The chunks are recycled by release.
func (q *queue) take(batch []kafka.Message, n int) []kafka.Message {
	n = min(n, len(q.pending))
	if len(batch) == 0 {
		batch = q.pending[:n:n]
	} else {
		if cap(q.own) == 0 || &batch[0] != &q.own[:1][0] {
			batch = append(q.own[:0], batch...)
		}
		batch = append(batch, q.pending[:n]...)
		q.own = batch[:0]
	}
	q.pending = q.pending[n:]
	if len(q.pending) == 0 && q.chunk.msgs != nil {
		q.taken = append(q.taken, q.chunk)
		q.chunk = chunk{}
	}
	return batch
}

// takeJump returns the offset the fetcher moved to, whether it only
// passed offsets with nothing to deliver, and clears errJump.
func (q *queue) takeJump() (to int64, passed bool) {
	q.jumped = false
	return q.jumpTo, q.passed
}

// release recycles the chunks taken so far: the batch taken from them was
// handled.
func (q *queue) release() {
	for _, c := range q.taken {
		q.recycle(c)
	}
	clear(q.taken)
	q.taken = q.taken[:0]
}
