package kafkaio

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/metricpipe/metricpipe/internal/testbed"
)

// realTopic creates a one-partition topic on the test bed's Kafka, deleted
// when the test ends.
func realTopic(t *testing.T, prefix string) (Config, string) {
	t.Helper()
	cfg := Config{Brokers: []string{testbed.KafkaBrokers(t)}, ClientID: "test"}
	topic := testbed.UniqueName(prefix)
	testbed.DeleteTopicsAtCleanup(t, topic)
	admin, err := NewAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.EnsureTopics(t.Context(), TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	return cfg, topic
}

// commitOffset commits offset for partition 0 of topic in group, outside
// any generation, as an operator's tool does.
func commitOffset(t *testing.T, cfg Config, group, topic string, offset int64) {
	t.Helper()
	transport, err := cfg.Transport()
	if err != nil {
		t.Fatal(err)
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: transport, Timeout: 10 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := func() error { // the coordinator may not be ready yet
			fc, err := client.FindCoordinator(t.Context(), &kafka.FindCoordinatorRequest{Key: group, KeyType: kafka.CoordinatorKeyTypeConsumer})
			if err != nil {
				return err
			}
			if fc.Error != nil {
				return fc.Error
			}
			addr := kafka.TCP(net.JoinHostPort(fc.Coordinator.Host, strconv.Itoa(fc.Coordinator.Port)))
			resp, err := client.OffsetCommit(t.Context(), &kafka.OffsetCommitRequest{Addr: addr, GroupID: group, GenerationID: -1,
				Topics: map[string][]kafka.OffsetCommit{topic: {{Partition: 0, Offset: offset}}}})
			if err != nil {
				return err
			}
			for _, p := range resp.Topics[topic] {
				if p.Error != nil {
					return p.Error
				}
			}
			return nil
		}()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("commit offset %d: %v", offset, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// offsetRecorder is a handler that records the offsets it handled per
// partition, checking each message holds its offset, and calls done once
// it has want in all.
type offsetRecorder struct {
	mu      sync.Mutex
	handled map[int][]int64
	want    int
	done    context.CancelFunc
	err     error
}

func (r *offsetRecorder) Handle(_ context.Context, batch []kafka.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.handled == nil {
		r.handled = map[int][]int64{}
	}
	n := 0
	for _, m := range batch {
		if string(m.Value) != strconv.FormatInt(m.Offset, 10) && r.err == nil {
			r.err = errors.New("offset " + strconv.FormatInt(m.Offset, 10) + " holds " + string(m.Value))
		}
		r.handled[m.Partition] = append(r.handled[m.Partition], m.Offset)
	}
	for _, h := range r.handled {
		n += len(h)
	}
	if n >= r.want && r.done != nil {
		r.done()
	}
	return nil
}

func (r *offsetRecorder) offsets(p int) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.handled[p])
}

// testResetBeyondTheEnd: a group whose committed offset lies beyond the
// log end goes on from the log start (--reset-offset earliest), and
// commits the offsets it handles there, below the old committed offset.
func testResetBeyondTheEnd(t *testing.T, cfg Config, topic string) {
	produceOffsets(t, cfg, topic, 0, 100)
	commitOffset(t, cfg, "g", topic, 1000)
	gc := newTestConsumer(t, cfg, topic, "g")
	defer gc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	r := &offsetRecorder{want: 100, done: cancel}
	if err := gc.Run(ctx, func(int) (Handler, error) { return r, nil }); err != nil {
		t.Fatal(err)
	}
	if got := r.offsets(0); !slices.Equal(got, span(0, 100)) || r.err != nil {
		t.Fatalf("handled %v (%v), want 0..99", got, r.err)
	}
	if got := committedTotal(t, cfg, "g", topic); got != 100 {
		t.Fatalf("committed %d, want 100", got)
	}
}

func TestGroupConsumerResetsAnOffsetBeyondTheEnd(t *testing.T) {
	_, cfg := fakeCluster(t, "metrics", 1)
	testResetBeyondTheEnd(t, cfg, "metrics")
}

func TestGroupConsumerResetsAnOffsetBeyondTheEndReal(t *testing.T) {
	cfg, topic := realTopic(t, "reset-")
	testResetBeyondTheEnd(t, cfg, topic)
}

// The consumer lag counts what is not yet handled, from every fetch: it
// grows while the handler cannot finish a batch (InfluxDB down).
func TestGroupConsumerLagShowsTheBacklogOfABlockedHandler(t *testing.T) {
	const topic = "metrics"
	_, cfg := fakeCluster(t, topic, 1)
	produceOffsets(t, cfg, topic, 0, 100)
	reg := prometheus.NewRegistry()
	gc, err := NewGroupConsumer(cfg, GroupConfig{Topic: topic, Group: "g", BatchSize: 50, BatchWait: 50 * time.Millisecond, DrainTimeout: 100 * time.Millisecond},
		zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	ctx, cancel := context.WithCancel(t.Context())
	entered := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gc.Run(ctx, func(int) (Handler, error) {
			return HandlerFunc(func(ctx context.Context, _ []kafka.Message) error {
				select {
				case entered <- struct{}{}:
				default:
				}
				<-ctx.Done() // the sink is down
				return ctx.Err()
			}), nil
		})
	}()
	defer func() { cancel(); <-done }()
	<-entered
	lag := func() float64 {
		return counterValue(t, reg, "metricpipe_kafka_consumer_lag", map[string]string{"partition": "0"})
	}
	produceOffsets(t, cfg, topic, 100, 600)
	waitUntil(t, "a lag of 600", func() bool { return lag() == 600 })
}

// A partition stuck at a corrupt batch fails the readiness check, named
// with its offset and cause, while the other partitions go on; the check
// passes again once the batch reads well.
func TestGroupConsumerCheckNamesAStuckPartition(t *testing.T) {
	const topic = "metrics"
	c, cfg := fakeCluster(t, topic, 2)
	bad, good := &fakeLog{}, &fakeLog{}
	first, last := appendBatch(t, nil, batchSpec{base: 0, values: offsetValues(0, 10)}), appendBatch(t, nil, batchSpec{base: 20, values: offsetValues(20, 30)})
	broken := appendBatch(t, nil, batchSpec{base: 10, values: offsetValues(10, 20)})
	broken[len(broken)-2] ^= 1
	bad.set(first, broken, last)
	good.set(first, appendBatch(t, nil, batchSpec{base: 10, values: offsetValues(10, 20)}), last)
	serveLogs(c, bad, good)
	gc := newTestConsumer(t, cfg, topic, "g")
	defer gc.Close()
	check := gc.Check()
	if err := check.Probe(t.Context()); err != nil {
		t.Fatalf("check before Run: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &offsetRecorder{want: 60, done: cancel}
	runErr := make(chan error, 1)
	go func() { runErr <- gc.Run(ctx, func(int) (Handler, error) { return r, nil }) }()
	waitUntil(t, "partition 1 handled, partition 0 stuck", func() bool {
		return len(r.offsets(1)) == 30 && len(r.offsets(0)) == 10 && check.Probe(t.Context()) != nil
	})
	start := time.Now()
	err := check.Probe(t.Context())
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("check took %s", d)
	}
	if msg := err.Error(); !strings.Contains(msg, "partition 0 stuck at offset 10") || !strings.Contains(msg, "CRC mismatch") || strings.Contains(msg, "partition 1") {
		t.Fatalf("check: %v; want partition 0 stuck at offset 10 by a CRC mismatch, alone", err)
	}
	bad.set(first, appendBatch(t, nil, batchSpec{base: 10, values: offsetValues(10, 20)}), last)
	waitUntil(t, "partition 0 recovered", func() bool { return check.Probe(t.Context()) == nil && len(r.offsets(0)) == 30 })
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	if !slices.Equal(r.offsets(0), span(0, 30)) || r.err != nil {
		t.Fatalf("partition 0 handled %v (%v), want 0..29", r.offsets(0), r.err)
	}
}

// produceTxn produces values to partition 0 of topic in one transaction,
// committed or aborted.
func produceTxn(t *testing.T, cfg Config, topic string, commit bool, values ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.TransactionalID(testbed.UniqueName("txn-")),
		kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v), Partition: 0}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	end := kgo.TryAbort
	if commit {
		end = kgo.TryCommit
	}
	if err := cl.EndTransaction(ctx, end); err != nil {
		t.Fatal(err)
	}
}

// produceValues produces values to topic without a transaction.
func produceValues(t *testing.T, cfg Config, topic string, values ...string) {
	t.Helper()
	w, err := NewWriter(cfg, topic, WriterOptions{Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var msgs []kafka.Message
	for _, v := range values {
		msgs = append(msgs, kafka.Message{Value: []byte(v)})
	}
	if err := w.WriteMessages(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func named(prefix string, n int) []string {
	var v []string
	for i := range n {
		v = append(v, prefix+strconv.Itoa(i))
	}
	return v
}

// testReadCommitted: under read_committed (the default) the messages of
// an aborted transaction are not delivered, and fetching goes on past
// them and the transaction markers; under read_uncommitted they are.
// Responses are at most maxBytes.
func testReadCommitted(t *testing.T, cfg Config, topic string, maxBytes int) {
	produceValues(t, cfg, topic, named("plain-", 5)...)
	produceTxn(t, cfg, topic, true, named("committed-", 5)...)
	produceTxn(t, cfg, topic, false, named("aborted-", 5)...)
	produceValues(t, cfg, topic, named("later-", 5)...)
	for _, tc := range []struct {
		isolation string
		want      []string
	}{
		{ReadCommitted, slices.Concat(named("plain-", 5), named("committed-", 5), named("later-", 5))},
		{ReadUncommitted, slices.Concat(named("plain-", 5), named("committed-", 5), named("aborted-", 5), named("later-", 5))},
	} {
		f := testFetcher(t, cfg, topic, zerolog.Nop())
		f.policy.IsolationLevel, f.maxBytes = tc.isolation, maxBytes
		out, _, stop := startFetcher(t, f, kafka.FirstOffset)
		var got []string
		timeout := time.After(10 * time.Second)
		for len(got) < len(tc.want) {
			select {
			case c := <-out:
				for _, m := range c.msgs {
					got = append(got, string(m.Value))
				}
				f.recycle(c)
			case <-timeout:
				t.Fatalf("%s: got %v, want %v", tc.isolation, got, tc.want)
			}
		}
		stop()
		if !slices.Equal(got, tc.want) {
			t.Fatalf("%s: got %v, want %v", tc.isolation, got, tc.want)
		}
	}
}

func TestFetcherReadCommitted(t *testing.T) {
	_, cfg := fakeCluster(t, "metrics", 1)
	// kfake leaves the aborted transactions out of a response it cut at
	// the fetch's size: one response holds the whole log.
	testReadCommitted(t, cfg, "metrics", 1<<20)
}

func TestFetcherReadCommittedReal(t *testing.T) {
	cfg, topic := realTopic(t, "txn-")
	testReadCommitted(t, cfg, topic, 1<<10) // the transactions span responses

}
