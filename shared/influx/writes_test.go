package influx

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/retry"
)

func TestWritesRetriesAndReportsReadiness(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	sink, err := NewSink(Config{URL: srv.URL, Bucket: "b", BatchSize: 10, FlushInterval: time.Second, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	var retries int
	w := &Writes{Sink: sink, Backoff: retry.Backoff{Initial: time.Millisecond, Max: time.Millisecond},
		OnRetry: func(int, time.Duration, error) { retries++ }}
	check := w.Check()
	ctx := t.Context()

	// Transient failures are retried; while they last the check fails.
	calls := 0
	var failingDuring error
	err = w.Do(ctx, func(ctx context.Context) error {
		if calls++; calls < 3 {
			return &WriteError{Status: 503, Retryable: true, Err: errors.New("unavailable")}
		}
		failingDuring = check.Probe(ctx)
		return nil
	})
	if err != nil || calls != 3 || retries != 2 || failingDuring == nil {
		t.Fatalf("Do = %v after %d calls, %d retries, check during retries %v", err, calls, retries, failingDuring)
	}
	if err := check.Probe(ctx); err != nil {
		t.Fatalf("check after a successful write: %v", err)
	}
	// A permanent failure is not retried and comes back marked.
	calls = 0
	err = w.Do(ctx, func(context.Context) error {
		calls++
		return &WriteError{Status: 400, Err: errors.New("field type conflict")}
	})
	if !retry.IsPermanent(err) || calls != 1 {
		t.Fatalf("Do = %v after %d calls, want one permanent failure", err, calls)
	}
	// Cancelled while retrying: the error is ctx's.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Do(cctx, func(context.Context) error { return &WriteError{Retryable: true, Err: errors.New("down")} }); err == nil {
		t.Fatal("Do succeeded on a cancelled context")
	}
}
