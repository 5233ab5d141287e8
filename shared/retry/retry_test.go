package retry

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestDelayIsCappedAndJittered(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	f := func(attempt int, lo, hi time.Duration) {
		t.Helper()
		for range 200 {
			if d := b.Delay(attempt); d < lo || d > hi {
				t.Fatalf("Delay(%d) = %s, want in [%s, %s]", attempt, d, lo, hi)
			}
		}
	}
	f(0, 50*time.Millisecond, 100*time.Millisecond)
	f(1, 100*time.Millisecond, 200*time.Millisecond)
	f(3, 400*time.Millisecond, 800*time.Millisecond)
	f(4, 500*time.Millisecond, time.Second)
	f(60, 500*time.Millisecond, time.Second) // no overflow on long outages
}

func TestDoRetriesUntilSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls, retries := 0, 0
		start := time.Now()
		err := Do(t.Context(), Backoff{Initial: time.Second, Max: 4 * time.Second}, func(context.Context) error {
			calls++
			if calls < 4 {
				return errors.New("unavailable")
			}
			return nil
		}, func(int, time.Duration, error) { retries++ })
		if err != nil || calls != 4 || retries != 3 {
			t.Fatalf("err=%v calls=%d retries=%d, want nil 4 3", err, calls, retries)
		}
		// Waits: [0.5,1] + [1,2] + [2,4] seconds.
		if el := time.Since(start); el < 3500*time.Millisecond || el > 7*time.Second {
			t.Fatalf("waited %s, want 3.5s..7s", el)
		}
	})
}

func TestDoStopsOnPermanentAndContext(t *testing.T) {
	boom := errors.New("bad request")
	calls := 0
	err := Do(t.Context(), DefaultBackoff(), func(context.Context) error { calls++; return Permanent(boom) }, nil)
	if !errors.Is(err, boom) || !IsPermanent(err) || calls != 1 {
		t.Fatalf("permanent: err=%v calls=%d", err, calls)
	}

	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		err := Do(ctx, DefaultBackoff(), func(context.Context) error { return errors.New("down") }, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
	})
}
