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
