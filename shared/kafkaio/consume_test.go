package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeCluster starts an in-process Kafka-protocol broker with topic
// pre-created; fast, and able to inject faults.
func fakeCluster(t testing.TB, topic string, partitions int32) (*kfake.Cluster, Config) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, Config{Brokers: c.ListenAddrs(), ClientID: "test"}
}

func produceN(t *testing.T, cfg Config, topic string, n int) {
	t.Helper()
	w, err := NewWriter(cfg, topic, WriterOptions{Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte("series-" + strconv.Itoa(i%41)), Value: []byte(strconv.Itoa(i))}
	}
	if err := w.WriteMessages(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func committedTotal(t *testing.T, cfg Config, group, topic string) int64 {
	t.Helper()
	admin, err := NewAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	offs, err := admin.CommittedOffsets(t.Context(), group, topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, o := range offs {
		total += max(o, 0)
	}
	return total
}

func newTestConsumer(t *testing.T, cfg Config, topic, group string) *GroupConsumer {
	t.Helper()
	gc, err := NewGroupConsumer(cfg, GroupConfig{Topic: topic, Group: group, BatchSize: 50, BatchWait: 50 * time.Millisecond, DrainTimeout: 5 * time.Second},
		zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return gc
}

func TestGroupConsumerCommitsOnlyWhatWasHandled(t *testing.T) {
	const topic, n = "metrics", 300
	_, cfg := fakeCluster(t, topic, 4)
	produceN(t, cfg, topic, n)

	// A failing handler: nothing may be committed.
	gc := newTestConsumer(t, cfg, topic, "g")
	boom := errors.New("influxdb unavailable")
	err := gc.Run(t.Context(), func(int) (Handler, error) {
		return HandlerFunc(func(context.Context, []kafka.Message) error { return boom }), nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the handler's error", err)
	}
	if err := gc.Close(); err != nil {
		t.Fatal(err)
	}
	if got := committedTotal(t, cfg, "g", topic); got != 0 {
		t.Fatalf("committed %d offsets after a failed handler, want 0", got)
	}

	// A succeeding handler sees every message, in order per partition, and
	// everything is committed by the time Run returns after cancellation.
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	seen := map[int]int64{}
	total := 0
	gc = newTestConsumer(t, cfg, topic, "g")
	defer gc.Close()
	runErr := make(chan error, 1)
	go func() {
		runErr <- gc.Run(ctx, func(int) (Handler, error) {
			return HandlerFunc(func(_ context.Context, batch []kafka.Message) error {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range batch {
					if last, ok := seen[m.Partition]; ok && m.Offset != last+1 {
						return fmt.Errorf("partition %d: offset %d after %d", m.Partition, m.Offset, last)
					}
					seen[m.Partition] = m.Offset
					total++
				}
				if total >= n {
					cancel()
				}
				return nil
			}), nil
		})
	}()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consumer did not finish")
	}
	if total != n {
		t.Fatalf("handled %d messages, want %d", total, n)
	}
	if got := committedTotal(t, cfg, "g", topic); got != n {
		t.Fatalf("committed %d, want %d", got, n)
	}
}

func TestDeadLettersPublishReportsFailure(t *testing.T) {
	const dlq = "metrics-dlq"
	c, cfg := fakeCluster(t, dlq, 1)
	d, err := NewDeadLetters(cfg, dlq, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close(); d.Close() }() // broker first: Close would retry the failing batch
	src := kafka.Message{Topic: "metrics", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("cpu value=oops")}

	// Every produce request fails: Publish must say so, so the caller does
	// not commit the source offset.
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, errors.New("injected broker failure"), true
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := d.Publish(ctx, src, errors.New("bad field")); err == nil {
		t.Fatal("Publish succeeded while every produce failed")
	}
}

func TestDeadLettersCarryReasonAndSource(t *testing.T) {
	const dlq = "metrics-dlq"
	_, cfg := fakeCluster(t, dlq, 1)
	d, err := NewDeadLetters(cfg, dlq, "consumer")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	src := kafka.Message{Topic: "metrics", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("cpu value=oops"),
		Headers: []kafka.Header{{Key: HeaderContentType, Value: []byte("text/plain")}}}
	if err := d.Publish(t.Context(), src, errors.New("line 1, byte 10: bad field")); err != nil {
		t.Fatal(err)
	}
	m := readMessages(t, cfg, dlq, 1)[0]
	want := map[string]string{
		HeaderError: "line 1, byte 10: bad field", HeaderSourceTopic: "metrics", HeaderSourcePartition: "3",
		HeaderSourceOffset: "42", HeaderService: "consumer", HeaderContentType: "text/plain",
	}
	for k, v := range want {
		if got := HeaderValue(&m, k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if string(m.Value) != string(src.Value) || string(m.Key) != "k" {
		t.Errorf("message changed: key %q value %q", m.Key, m.Value)
	}
}

// TestStopDrainsEveryPartition: a stop arrives while every partition has a
// batch in hand and its handler honours ctx. Each batch must still be
// handled and committed: the first partition to finish ends kafka-go's
// generation, and that must not cut the others' drains short.
func TestStopDrainsEveryPartition(t *testing.T) {
	const topic, parts, n = "metrics", 4, 400
	_, cfg := fakeCluster(t, topic, parts)
	produceN(t, cfg, topic, n)
	gc := newTestConsumer(t, cfg, topic, "g")
	defer gc.Close()

	ctx, stop := context.WithCancel(t.Context())
	var mu sync.Mutex
	release := map[int]chan struct{}{}
	for p := range parts {
		release[p] = make(chan struct{})
	}
	inHand, handled, cut := map[int]bool{}, 0, 0
	runErr := make(chan error, 1)
	go func() {
		runErr <- gc.Run(ctx, func(int) (Handler, error) {
			return HandlerFunc(func(ctx context.Context, batch []kafka.Message) error {
				p := batch[0].Partition
				mu.Lock()
				inHand[p] = true
				mu.Unlock()
				select { // a write that takes a while and honours ctx
				case <-release[p]:
				case <-ctx.Done():
					mu.Lock()
					cut++
					mu.Unlock()
					return ctx.Err()
				}
				mu.Lock()
				handled += len(batch)
				mu.Unlock()
				return nil
			}), nil
		})
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("a batch in every partition", func() bool { return len(inHand) == parts })
	stop()
	close(release[0]) // partition 0 finishes its drain and returns first
	// The others keep draining: none of their writes may be cut short
	// within the drain timeout, however long partition 0 has been gone.
	waitFor("partition 0 handled", func() bool { return handled > 0 })
	poll := time.Now().Add(time.Second)
	for time.Now().Before(poll) {
		mu.Lock()
		c := cut
		mu.Unlock()
		if c > 0 {
			t.Fatalf("%d drains cut short when another partition finished", c)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for p := 1; p < parts; p++ {
		close(release[p])
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := committedTotal(t, cfg, "g", topic); got != int64(handled) {
		t.Fatalf("committed %d, handled %d: every batch in hand at the stop must be handled and committed", got, handled)
	}
}
