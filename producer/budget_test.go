package main

import (
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestByteBudget(t *testing.T) {
	// ops: "+n" acquires n (wanting ok or refused: "+n!"), "-n" releases n.
	f := func(limit int64, ops string, wantInUse int64) {
		t.Helper()
		b := newByteBudget(limit)
		for _, op := range strings.Fields(ops) {
			refused := strings.HasSuffix(op, "!")
			n, err := strconv.ParseInt(strings.TrimSuffix(op[1:], "!"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			switch op[0] {
			case '+':
				if ok := b.tryAcquire(n); ok == refused {
					t.Fatalf("limit %d, %q: %s got %v", limit, ops, op, ok)
				}
			case '-':
				b.release(n)
			}
		}
		if got := b.inUse(); got != wantInUse {
			t.Fatalf("limit %d, %q: in use %d, want %d", limit, ops, got, wantInUse)
		}
	}
	f(10, "", 0)
	f(10, "+10", 10)              // exactly the limit
	f(10, "+11!", 0)              // more than the limit, even when idle
	f(10, "+4 +4 +4!", 8)         // a refusal takes nothing
	f(10, "+4 +4 +2", 10)         // the last bytes
	f(10, "+4 +4 +4! -4 +4", 8)   // a release makes room
	f(10, "+8 -8 +8 -8 +8 -8", 0) // reuse
	f(10, "+0 +10 +0", 10)        // nothing always fits
	f(10, "+-1!", 0)              // a negative amount is refused
	f(64<<20, "+8388608 +8388608 +8388608 +8388608 +8388608 +8388608 +8388608 +8388608 +1!", 64<<20)
}

func TestByteBudgetConcurrent(t *testing.T) {
	// 100 goroutines race for 10 slots: exactly 10 win while none releases.
	b := newByteBudget(10 * 7)
	var mu sync.Mutex
	won := 0
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if b.tryAcquire(7) {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if won != 10 || b.inUse() != 70 {
		t.Fatalf("%d acquired, %d in use; want 10, 70", won, b.inUse())
	}
}
