package main

import "sync/atomic"

// byteBudget bounds the bytes that write requests in flight hold together.
// A request takes its share before it reads its body and gives it back when
// answered; one that cannot have it is refused rather than queued, so that
// memory never depends on how many clients write at once. It is safe for
// concurrent use.
type byteBudget struct {
	limit int64
	used  atomic.Int64
}

func newByteBudget(limit int64) *byteBudget { return &byteBudget{limit: limit} }

// tryAcquire takes n bytes and reports true, or reports false and takes
// nothing when fewer than n are free. It never blocks.
func (b *byteBudget) tryAcquire(n int64) bool {
	if n < 0 {
		return false
	}
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		// A compare-and-swap rather than Add then undo: two requests
		// racing for the last bytes must not both be refused.
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// release gives back n bytes taken by tryAcquire.
func (b *byteBudget) release(n int64) { b.used.Add(-n) }

// inUse returns the bytes taken.
func (b *byteBudget) inUse() int64 { return b.used.Load() }

// readPlan is how a request reads its body within its share of the budget.
type readPlan struct {
	reserve     int64 // taken from the budget
	buf, bufMax int   // the text buffer's first and largest size
	maxCost     int   // the most one chunk may cost (see chunkCost)
}

// requestReserve is the share of the budget a request of unknown decoded
// size takes: 1 MiB of text buffer (the longest line), as much again while
// the buffer grows, and some 6 MiB for decoding a chunk and encoding it for
// Kafka: 22,000 points of "a v=1", or 4,000 Telegraf lines of a dozen
// fields.
const requestReserve = 8 << 20

// requestOverhead is what a request holds besides its chunk: the gzip
// reader's window and tables, net/http's buffers.
const requestOverhead = 64 << 10

// plan sizes a request's share of the budget. A plain body of known length
// takes what its worst case needs when that is less than requestReserve:
// one chunk of its length.
func (h *writeHandler) plan(contentLength int64, gzipped bool) readPlan {
	reserve := min(requestReserve, h.cfg.MaxInflightBytes)
	bufMax := int(min(reserve/8, int64(h.cfg.MaxBodyBytes)+1))
	p := readPlan{reserve: reserve, buf: min(64<<10, bufMax), bufMax: bufMax, maxCost: int(reserve) - requestOverhead - 2*bufMax}
	if gzipped || contentLength < 0 {
		return p
	}
	// +1: the read that fills the buffer sees the end of the body too.
	n := int(contentLength) + 1
	if n > bufMax {
		return p
	}
	// A byte is a newline or an '=' or neither: no chunk of n bytes costs
	// more than this.
	worst := (costPerByte + costPerLine) * n
	if small := int64(requestOverhead + n + worst); small < reserve {
		return readPlan{reserve: small, buf: n, bufMax: n, maxCost: worst}
	}
	p.buf = n // no growth: counted twice anyway
	return p
}
