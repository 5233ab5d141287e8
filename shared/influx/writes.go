package influx

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/service"
)

// Writes retries a sink's transient failures for as long as the caller's
// ctx allows, and remembers whether writes currently fail, which the
// service's InfluxDB readiness check reports. Safe for concurrent use.
type Writes struct {
	Sink    *Sink
	Backoff retry.Backoff
	// OnRetry, when set, is called before each retry (for metrics and logs).
	OnRetry func(attempt int, delay time.Duration, err error)
	failing atomic.Bool
}

// Do runs write until it succeeds, fails for good, or ctx ends. A failure
// IsRetryable does not allow comes back marked retry.Permanent.
func (w *Writes) Do(ctx context.Context, write func(ctx context.Context) error) error {
	err := retry.Do(ctx, w.Backoff, func(ctx context.Context) error {
		err := write(ctx)
		if err != nil && !IsRetryable(err) {
			return retry.Permanent(err)
		}
		return err
	}, func(attempt int, delay time.Duration, err error) {
		w.failing.Store(true)
		if w.OnRetry != nil {
			w.OnRetry(attempt, delay, err)
		}
	})
	if err == nil {
		w.failing.Store(false)
	}
	return err
}

// Check is the readiness check "influxdb": failing while writes are being
// retried, else whether the server answers.
func (w *Writes) Check() service.Check {
	return service.Check{Name: "influxdb", Probe: func(ctx context.Context) error {
		if w.failing.Load() {
			return errors.New("writes are failing and being retried")
		}
		return w.Sink.Ping(ctx)
	}}
}
