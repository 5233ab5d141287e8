package kafkaio

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/internal/testbed"
)

// warmRecorder is a Warmer handler that records the offsets it was given.
type warmRecorder struct {
	mu              sync.Mutex
	warmed, handled []int64
	warmedFirst     int // warmed when the first message was handled
	wantHandled     int
	done            context.CancelFunc
}

func (r *warmRecorder) Warm(batch []kafka.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range batch {
		r.warmed = append(r.warmed, m.Offset)
	}
}

func (r *warmRecorder) Handle(_ context.Context, batch []kafka.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.handled) == 0 {
		r.warmedFirst = len(r.warmed)
	}
	for _, m := range batch {
		r.handled = append(r.handled, m.Offset)
	}
	if len(r.handled) >= r.wantHandled {
		r.done()
	}
	return nil
}

// consumeAll runs a group member with warmUp until h handled want messages.
func consumeAll(t *testing.T, cfg Config, topic, group string, warmUp time.Duration, want int) *warmRecorder {
	t.Helper()
	gc, err := NewGroupConsumer(cfg, GroupConfig{Topic: topic, Group: group, BatchSize: 7, BatchWait: 50 * time.Millisecond,
		DrainTimeout: 5 * time.Second, WarmUp: warmUp}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	r := &warmRecorder{wantHandled: want, done: cancel}
	if err := gc.Run(ctx, func(int) (Handler, error) { return r, nil }); err != nil {
		t.Fatal(err)
	}
	if len(r.handled) < want {
		t.Fatalf("handled %d messages in a minute, want %d", len(r.handled), want)
	}
	return r
}

func span(from, to int64) []int64 {
	var s []int64
	for o := from; o < to; o++ {
		s = append(s, o)
	}
	return s
}

// TestWarmUpReplaysBeforeTheCommittedOffset, on real Kafka: a member
// joining a group with a committed offset gives its Warmer the messages of
// the last WarmUp of message time before that offset, found by timestamp,
// then handles from the offset on; a first member, with nothing committed,
// warms nothing.
func TestWarmUpReplaysBeforeTheCommittedOffset(t *testing.T) {
	cfg := Config{Brokers: []string{testbed.KafkaBrokers(t)}, ClientID: "test"}
	topic := testbed.UniqueName("warm-")
	testbed.DeleteTopicsAtCleanup(t, topic)
	admin, err := NewAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.EnsureTopics(t.Context(), TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	// Message i is stamped base + i seconds.
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	produce := func(from, to int) {
		w, err := NewWriter(cfg, topic, WriterOptions{Linger: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		var msgs []kafka.Message
		for i := from; i < to; i++ {
			msgs = append(msgs, kafka.Message{Value: []byte(strconv.Itoa(i)), Time: base.Add(time.Duration(i) * time.Second)})
		}
		if err := w.WriteMessages(t.Context(), msgs...); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 100)
	first := consumeAll(t, cfg, topic, "g", 10*time.Second, 100)
	if len(first.warmed) != 0 || !slices.Equal(first.handled, span(0, 100)) {
		t.Fatalf("first member: warmed %v, handled %v; want nothing warmed, 0..99 handled", first.warmed, first.handled)
	}
	produce(100, 120)
	// The message before the committed offset 100 is stamped base+99s: the
	// warm-up starts at the first stamped base+89s or later.
	second := consumeAll(t, cfg, topic, "g", 10*time.Second, 20)
	if !slices.Equal(second.warmed, span(89, 100)) || !slices.Equal(second.handled, span(100, 120)) {
		t.Fatalf("second member: warmed %v, handled %v; want 89..99 warmed, 100..119 handled", second.warmed, second.handled)
	}
	if second.warmedFirst != len(second.warmed) {
		t.Fatalf("%d of %d messages warmed before the first was handled, want all", second.warmedFirst, len(second.warmed))
	}
}
