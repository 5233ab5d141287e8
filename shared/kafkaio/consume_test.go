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
func fakeCluster(t *testing.T, topic string, partitions int32) (*kfake.Cluster, Config) {
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
		msgs[i] = kafka.Message{Key: []byte("series-" + strconv.Itoa(i%7)), Value: []byte(strconv.Itoa(i))}
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
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: dlq, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
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
