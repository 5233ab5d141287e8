// Package retry retries an operation with capped exponential backoff and
// jitter, for the writes metricpipe must not give up on (InfluxDB, Kafka).
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential backoff with full jitter on its upper half:
// the n-th delay is uniform in [d/2, d] where d = min(Max, Initial·2ⁿ). The
// jitter spreads retries of many partitions so they do not hit a recovering
// server together.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// DefaultBackoff is the backoff used when none is configured: 100 ms doubling
// to 10 s.
func DefaultBackoff() Backoff { return Backoff{Initial: 100 * time.Millisecond, Max: 10 * time.Second} }

// Delay returns the wait before retry number attempt (0-based).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Initial
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// Validate reports invalid settings.
func (b Backoff) Validate() error {
	if b.Initial <= 0 || b.Max < b.Initial {
		return fmt.Errorf("backoff %s..%s: want 0 < initial ≤ max", b.Initial, b.Max)
	}
	return nil
}

// Permanent marks err as not worth retrying; Do returns it at once.
func Permanent(err error) error { return &permanentError{err} }

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Do calls op until it succeeds, returns an error marked Permanent, or ctx is
// done, waiting b.Delay between attempts. onRetry, when set, is called before
// each wait (for logging and metrics). It returns op's last error, or ctx's
// error joined with it.
func Do(ctx context.Context, b Backoff, op func(ctx context.Context) error, onRetry func(attempt int, delay time.Duration, err error)) error {
	for attempt := 0; ; attempt++ {
		err := op(ctx)
		if err == nil || IsPermanent(err) {
			return err
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		delay := b.Delay(attempt)
		if onRetry != nil {
			onRetry(attempt, delay, err)
		}
		if Sleep(ctx, delay) != nil {
			return errors.Join(ctx.Err(), err)
		}
	}
}

// Sleep waits d, or less when ctx ends first, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
