package kafkaio

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestGroupConsumerCommitsPastTransactionMarkers: a topic ends with a
// transaction's commit marker (and, on the second partition, an aborted
// transaction's records and marker). The group commits the partition end,
// past what it was never handed, so its lag reaches 0.
func TestGroupConsumerCommitsPastTransactionMarkers(t *testing.T) {
	const topic = "metrics"
	_, cfg := fakeCluster(t, topic, 1)
	produceValues(t, cfg, topic, named("plain-", 3)...)
	produceTxn(t, cfg, topic, true, named("committed-", 3)...)
	produceTxn(t, cfg, topic, false, named("aborted-", 3)...)
	admin, err := NewAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := admin.PartitionEnds(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	gc := newTestConsumer(t, cfg, topic, "g")
	defer gc.Close()
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	handled := make(chan int, 100)
	go func() {
		_ = gc.Run(ctx, func(int) (Handler, error) {
			return HandlerFunc(func(_ context.Context, batch []kafka.Message) error {
				handled <- len(batch)
				return nil
			}), nil
		})
	}()
	deadline := time.Now().Add(20 * time.Second)
	n := 0
	for n < 6 && time.Now().Before(deadline) {
		select {
		case k := <-handled:
			n += k
		case <-time.After(100 * time.Millisecond):
		}
	}
	for time.Now().Before(deadline) {
		if got := committedTotal(t, cfg, "g", topic); got == ends[0] {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("handled %d messages; committed %d, want the partition end %d (past the transaction markers)", n, committedTotal(t, cfg, "g", topic), ends[0])
}
