package kafkaio

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// TestStopWithAStuckHandlerIsClean: a stop arrives while the handler cannot
// finish (its sink is down) and honours ctx. After the drain timeout Run
// returns nil, not "context canceled" per partition; nothing is committed,
// and the log says which messages were not written and will be read again.
func TestStopWithAStuckHandlerIsClean(t *testing.T) {
	const topic, parts, n = "metrics", 2, 100
	_, cfg := fakeCluster(t, topic, parts)
	produceN(t, cfg, topic, n)
	var logs bytes.Buffer
	gc, err := NewGroupConsumer(cfg, GroupConfig{Topic: topic, Group: "g", BatchSize: 50, BatchWait: 50 * time.Millisecond, DrainTimeout: 300 * time.Millisecond},
		zerolog.New(&logs), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	ctx, stop := context.WithCancel(t.Context())
	var inHand atomic.Int32
	runErr := make(chan error, 1)
	go func() {
		runErr <- gc.Run(ctx, func(int) (Handler, error) {
			return HandlerFunc(func(ctx context.Context, batch []kafka.Message) error {
				inHand.Add(1)
				<-ctx.Done() // a write that never succeeds
				return ctx.Err()
			}), nil
		})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for inHand.Load() < parts && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run = %v, want nil: a stop that cannot drain is not a failure", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its drain timeout")
	}
	if got := committedTotal(t, cfg, "g", topic); got > 0 {
		t.Fatalf("committed %d messages that were never handled", got)
	}
	if !strings.Contains(logs.String(), "not written; not committed, read again at the next start") {
		t.Fatalf("no log says what was left unwritten:\n%s", logs.String())
	}
}
