package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/retry"
)

// testFetcher fetches partition 0 of topic in responses of at most 1 KiB,
// so that a few hundred messages take many fetches.
func testFetcher(t *testing.T, cfg Config, topic string, log zerolog.Logger) *fetcher {
	t.Helper()
	f, _ := testFetcherMetrics(t, cfg, topic, log)
	return f
}

// testFetcherMetrics is testFetcher with the registry of its metrics.
func testFetcherMetrics(t *testing.T, cfg Config, topic string, log zerolog.Logger) (*fetcher, *prometheus.Registry) {
	t.Helper()
	dialer, err := cfg.Dialer()
	if err != nil {
		t.Fatal(err)
	}
	security, err := cfg.wireSecurity()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := newConsumerMetrics(reg, GroupConfig{Topic: topic, Group: "test"})
	return &fetcher{dialer: dialer, security: security, brokers: cfg.Brokers, topic: topic, maxBytes: 1 << 10, maxWait: 100 * time.Millisecond,
		backoff: retry.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}, log: log,
		free: make(chan chunk, 2), growTo: 16 << 10, inflateMax: 1 << 20, refresh: 50 * time.Millisecond,
		health: newPartitionHealth(0, m.lag.WithLabelValues("0"), m.stuckSince.WithLabelValues("0")), metrics: m.partition(0)}, reg
}

// produceOffsets appends messages from..to-1 to the single partition of
// topic, each holding its offset, 50 to a record batch: a 1 KiB fetch
// returns about one batch.
func produceOffsets(t *testing.T, cfg Config, topic string, from, to int) {
	t.Helper()
	w, err := NewWriter(cfg, topic, WriterOptions{Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for from < to {
		var msgs []kafka.Message
		for ; from < to && len(msgs) < 50; from++ {
			msgs = append(msgs, kafka.Message{Value: []byte(strconv.Itoa(from))})
		}
		if err := w.WriteMessages(t.Context(), msgs...); err != nil {
			t.Fatal(err)
		}
	}
}

// startFetcher runs f from offset until the test ends.
func startFetcher(t *testing.T, f *fetcher, offset int64) (<-chan chunk, <-chan error, context.CancelFunc) {
	ctx, cancel := context.WithCancel(t.Context())
	out, errc, done := make(chan chunk, 1), make(chan error, 1), make(chan struct{})
	go func() {
		defer close(done)
		f.run(ctx, offset, out, errc)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return out, errc, cancel
}

// collectOffsets reads n messages from out, recycling every slice, and
// checks that each message's value is its offset.
func collectOffsets(t *testing.T, f *fetcher, out <-chan chunk, n int) []int64 {
	t.Helper()
	var offsets []int64
	timeout := time.After(10 * time.Second)
	for len(offsets) < n {
		select {
		case c, ok := <-out:
			if !ok {
				t.Fatalf("fetcher stopped after %d of %d messages", len(offsets), n)
			}
			for _, m := range c.msgs {
				if want := strconv.FormatInt(m.Offset, 10); string(m.Value) != want || m.Partition != 0 || m.Topic != f.topic {
					t.Fatalf("message at offset %d of %s/%d holds %q, want %q", m.Offset, m.Topic, m.Partition, m.Value, want)
				}
				offsets = append(offsets, m.Offset)
			}
			f.recycle(c)
		case <-timeout:
			t.Fatalf("got %d of %d messages", len(offsets), n)
		}
	}
	return offsets
}

func wantOffsets(t *testing.T, got []int64, from, to int64) {
	t.Helper()
	if int64(len(got)) != to-from {
		t.Fatalf("got %d messages, want offsets %d..%d", len(got), from, to-1)
	}
	for i, o := range got {
		if o != from+int64(i) {
			t.Fatalf("message %d has offset %d, want %d: each exactly once, in order", i, o, from+int64(i))
		}
	}
}

func TestFetcherDeliversEveryMessageInOrder(t *testing.T) {
	const topic, n = "metrics", 500
	_, cfg := fakeCluster(t, topic, 1)
	produceOffsets(t, cfg, topic, 0, n)
	f := testFetcher(t, cfg, topic, zerolog.Nop())
	out, _, _ := startFetcher(t, f, kafka.FirstOffset)
	wantOffsets(t, collectOffsets(t, f, out, n), 0, n)

	// From a committed offset, and on to messages produced later.
	f = testFetcher(t, cfg, topic, zerolog.Nop())
	out, _, _ = startFetcher(t, f, 123)
	wantOffsets(t, collectOffsets(t, f, out, n-123), 123, n)
	produceOffsets(t, cfg, topic, n, n+1)
	wantOffsets(t, collectOffsets(t, f, out, 1), n, n+1)
}

// A partition whose oldest messages were deleted before they were consumed
// (retention) continues from the oldest one left, and says how many were
// lost: in a warning, and counted.
func TestFetcherSkipsDeletedMessagesWithAWarning(t *testing.T) {
	const topic, n = "metrics", 300
	c, cfg := fakeCluster(t, topic, 1)
	produceOffsets(t, cfg, topic, 0, n)
	if err := c.DeleteRecords(topic, 0, 100); err != nil {
		t.Fatal(err)
	}
	var logged testbed.SyncBuffer
	f, reg := testFetcherMetrics(t, cfg, topic, zerolog.New(&logged))
	out, _, _ := startFetcher(t, f, 40)
	wantOffsets(t, collectOffsets(t, f, out, n-100), 100, n)
	if got := countLines(&logged, `"level":"warn"`, `"from":40`, `"to":100`, `"lost":60`); got != 1 {
		t.Fatalf("%d warnings naming the 60 messages lost, want 1; logged:\n%s", got, logged.String())
	}
	if got := counterValue(t, reg, "metricpipe_kafka_offset_resets_total", map[string]string{"partition": "0", "reason": "below_start"}); got != 1 {
		t.Errorf("%v resets counted, want 1", got)
	}
	if got := counterValue(t, reg, "metricpipe_kafka_messages_skipped_total", map[string]string{"partition": "0", "reason": "retention"}); got != 60 {
		t.Errorf("%v messages counted lost to retention, want 60", got)
	}
}

// fetchError answers the next count fetch requests with code on every
// partition.
func fetchError(c *kfake.Cluster, code int16, count int) {
	answered := 0
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if answered++; answered == count {
			c.DropControl()
		}
		r := req.(*kmsg.FetchRequest)
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

func TestFetcherRetriesTransientErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int16
	}{
		{"not leader", 6},              // NOT_LEADER_OR_FOLLOWER: redial the leader
		{"offset out of range", 1},     // OFFSET_OUT_OF_RANGE, as after an unclean leader change
		{"request timed out", 7},       // REQUEST_TIMED_OUT: fetch again
		{"unknown partition", 3},       // UNKNOWN_TOPIC_OR_PARTITION, as while a topic is created
		{"leader not available", 5},    // LEADER_NOT_AVAILABLE, during an election
		{"unknown server error", -1},   // UNKNOWN_SERVER_ERROR: kafka-go does not call it temporary
		{"replica not available", 9},   // REPLICA_NOT_AVAILABLE
		{"network exception", 13},      // NETWORK_EXCEPTION
		{"storage error", 56},          // KAFKA_STORAGE_ERROR, while a log dir fails over
		{"fenced leader epoch", 74},    // FENCED_LEADER_EPOCH
		{"unknown leader epoch", 75},   // UNKNOWN_LEADER_EPOCH
		{"corrupt message", 2},         // CORRUPT_MESSAGE: retried a few times before the corrupt policy
		{"not enough replicas", 19},    // NOT_ENOUGH_REPLICAS: not a fetch error, but not fatal either
		{"offset not available", 78},   // OFFSET_NOT_AVAILABLE
		{"unknown to kafka-go", 12345}, // a code from the future
	} {
		t.Run(tc.name, func(t *testing.T) {
			const topic, n = "metrics", 300
			c, cfg := fakeCluster(t, topic, 1)
			produceOffsets(t, cfg, topic, 0, n)
			f, reg := testFetcherMetrics(t, cfg, topic, zerolog.Nop())
			out, errc, _ := startFetcher(t, f, kafka.FirstOffset)
			got := collectOffsets(t, f, out, n)
			fetchError(c, tc.code, 3)
			produceOffsets(t, cfg, topic, n, 2*n)
			got = append(got, collectOffsets(t, f, out, n)...)
			wantOffsets(t, got, 0, 2*n)
			select {
			case err := <-errc:
				t.Fatalf("transient error reported: %v", err)
			default:
			}
			code := strconv.Itoa(int(tc.code))
			if n := counterValue(t, reg, "metricpipe_kafka_fetch_errors_total", map[string]string{"partition": "0", "code": code}); n != 3 {
				t.Errorf("%v fetch errors counted with code %s, want 3", n, code)
			}
		})
	}
}

// An error retrying cannot cure is reported, and the fetcher stops.
func TestFetcherReportsPermanentErrors(t *testing.T) {
	const topic = "metrics"
	c, cfg := fakeCluster(t, topic, 1)
	produceOffsets(t, cfg, topic, 0, 10)
	fetchError(c, 29, 1) // TOPIC_AUTHORIZATION_FAILED
	f := testFetcher(t, cfg, topic, zerolog.Nop())
	out, errc, _ := startFetcher(t, f, kafka.FirstOffset)
	select {
	case err := <-errc:
		if !errors.Is(err, kafka.TopicAuthorizationFailed) {
			t.Fatalf("error %v, want topic authorization failed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no error reported")
	}
	for range out { // closed once the fetcher returned
	}
}

// A stop ends a fetch waiting at the broker at once, not after its wait.
func TestFetcherStopsWhileWaiting(t *testing.T) {
	const topic = "metrics"
	_, cfg := fakeCluster(t, topic, 1)
	f := testFetcher(t, cfg, topic, zerolog.Nop())
	f.maxWait = time.Minute
	out, _, cancel := startFetcher(t, f, kafka.FirstOffset)
	time.Sleep(200 * time.Millisecond) // the fetch is waiting
	start := time.Now()
	cancel()
	for range out {
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stopped after %s", d)
	}
}

// TestQueueRecyclesOnlyHandledChunks takes batches of various sizes from
// chunks of various sizes, scribbling over each chunk as soon as it is
// recycled, as the fetcher's next response does. Every batch must still
// read its messages intact when handled, and arrive whole and in order.
func TestQueueRecyclesOnlyHandledChunks(t *testing.T) {
	for _, tc := range []struct{ chunk, batch int }{{10, 3}, {10, 10}, {10, 25}, {7, 5}, {1, 4}} {
		t.Run(fmt.Sprintf("chunk=%d,batch=%d", tc.chunk, tc.batch), func(t *testing.T) {
			const total = 100
			in := make(chan chunk, total)
			for from := 0; from < total; from += tc.chunk {
				var c chunk
				for o := from; o < min(from+tc.chunk, total); o++ {
					c.msgs = append(c.msgs, kafka.Message{Offset: int64(o), Value: []byte(strconv.Itoa(o))})
				}
				in <- c
			}
			close(in)
			q := &queue{in: in, errc: make(chan error), recycle: func(c chunk) {
				for i := range c.msgs {
					c.msgs[i].Value[0] = 'x'
				}
			}}
			next := int64(0)
			for next < total {
				if err := q.wait(t.Context()); err != nil {
					t.Fatal(err)
				}
				batch := q.take(nil, tc.batch)
				for len(batch) < tc.batch && q.wait(t.Context()) == nil {
					batch = q.take(batch, tc.batch-len(batch))
				}
				for _, m := range batch {
					if m.Offset != next || string(m.Value) != strconv.FormatInt(next, 10) {
						t.Fatalf("message at offset %d holds %q, want offset %d", m.Offset, m.Value, next)
					}
					next++
				}
				q.release()
			}
		})
	}
}
