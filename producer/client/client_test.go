package client

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
)

func cluster(t *testing.T) (*kfake.Cluster, kafkaio.Config) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "metrics"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, kafkaio.Config{Brokers: c.ListenAddrs()}
}

func pt(i int) point.Point {
	return point.Point{Measurement: "temperature", Tags: []point.Tag{{Key: "room", Value: "r" + strconv.Itoa(i%5)}, {Key: "floor", Value: "1"}},
		Fields: []point.Field{{Key: "celsius", Value: float64(i)}}, Time: int64(1700000000000000000 + i)}
}

// readAll reads n messages from every partition of the topic.
func readAll(t *testing.T, cfg kafkaio.Config, n int) map[string][]point.Point {
	t.Helper()
	got := map[string][]point.Point{}
	total := 0
	for part := range 4 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: "metrics", Partition: part, MaxWait: 100 * time.Millisecond})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				break // an empty partition: nothing to read within the time
			}
			var dec point.Decoder
			pts, err := dec.Decode(nil, m.Value, kafkaio.HeaderValue(&m, kafkaio.HeaderContentType))
			if err != nil {
				t.Fatalf("decode %q: %v", m.Value, err)
			}
			if key := string(point.AppendSeriesKey(nil, &pts[0])); key != string(m.Key) {
				t.Fatalf("key %q, want the series key %q", m.Key, key)
			}
			got[string(m.Key)] = append(got[string(m.Key)], pts...)
			total += len(pts)
			if m.Offset+1 == m.HighWaterMark {
				break
			}
		}
		cancel()
		r.Close()
	}
	if total != n {
		t.Fatalf("read %d points, want %d", total, n)
	}
	return got
}

func TestSendFlushDeliversEveryPointInOrder(t *testing.T) {
	for _, format := range []point.Format{point.FormatLine, point.FormatJSON} {
		t.Run(format.String(), func(t *testing.T) {
			_, cfg := cluster(t)
			p, err := New(Config{Kafka: cfg, Format: format, Buffer: 100})
			if err != nil {
				t.Fatal(err)
			}
			const n = 1000
			for i := range n {
				if err := p.Send(t.Context(), pt(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			if st := p.Stats(); st.Sent != n || st.Acked != n || st.Buffered != 0 || st.Batches == 0 || st.BytesAcked == 0 {
				t.Fatalf("stats %+v", st)
			}
			for key, pts := range readAll(t, cfg, n) {
				for i := 1; i < len(pts); i++ {
					if pts[i].Time <= pts[i-1].Time {
						t.Fatalf("series %s out of order", key)
					}
				}
			}
			if err := p.Send(t.Context(), pt(0)); !errors.Is(err, ErrClosed) {
				t.Fatalf("Send after Close = %v", err)
			}
		})
	}
}

func TestSendRejectsInvalidPoints(t *testing.T) {
	_, cfg := cluster(t)
	p, err := New(Config{Kafka: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(t.Context())
	bad := pt(1)
	bad.Fields = nil
	if err := p.Send(t.Context(), bad); !errors.Is(err, point.ErrNoFields) {
		t.Fatalf("Send without fields = %v", err)
	}
}

// stalled returns a cluster whose produce requests are answered only when
// the returned function is called.
func stalled(t *testing.T) (kafkaio.Config, func()) {
	t.Helper()
	c, cfg := cluster(t)
	gate := make(chan struct{})
	var once sync.Once
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-gate })
		return nil, nil, false
	})
	return cfg, func() { once.Do(func() { close(gate) }) }
}

func TestBufferFullPolicies(t *testing.T) {
	cfg, open := stalled(t)
	defer open()
	drop, err := New(Config{Kafka: cfg, Buffer: 5, DropWhenFull: true, Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := drop.Send(t.Context(), pt(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := drop.Send(t.Context(), pt(5)); !errors.Is(err, ErrBufferFull) {
		t.Fatalf("6th Send into a full buffer = %v, want ErrBufferFull", err)
	}
	if st := drop.Stats(); st.Dropped != 1 || st.Buffered != 5 {
		t.Fatalf("stats %+v", st)
	}

	block, err := New(Config{Kafka: cfg, Buffer: 5, Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := block.Send(t.Context(), pt(i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := block.Send(ctx, pt(5)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send into a full buffer = %v, want it to wait until ctx ends", err)
	}
	if err := block.Flush(ctx); err == nil {
		t.Fatal("Flush returned while the broker held every batch")
	}
	open()
	for _, p := range []*Producer{drop, block} {
		if err := p.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if st := block.Stats(); st.Acked != 5 || st.Buffered != 0 {
		t.Fatalf("after the broker answered: %+v", st)
	}
}

// Senders waiting for room all resume once acknowledgements free it, and
// the buffer bound holds meanwhile.
func TestWaitingSendersResumeWhenRoomFrees(t *testing.T) {
	cfg, open := stalled(t)
	defer open()
	p, err := New(Config{Kafka: cfg, Buffer: 5, Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const waiting = 20
	errc := make(chan error, waiting)
	for i := range 5 + waiting {
		go func() { errc <- p.Send(t.Context(), pt(i)) }()
	}
	time.Sleep(200 * time.Millisecond)
	if st := p.Stats(); st.Buffered != 5 || st.Sent != 5 {
		t.Fatalf("with the broker stalled: %+v, want 5 buffered and the rest waiting", st)
	}
	open()
	for range 5 + waiting {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("senders still waiting after the broker answered: %+v", p.Stats())
		}
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Acked != 5+waiting || st.Buffered != 0 {
		t.Fatalf("after the broker answered: %+v", st)
	}
}

func TestDeliveryFailuresReachTheErrorHandler(t *testing.T) {
	c, cfg := cluster(t)
	// Every produce is refused for good (the message is too large).
	c.ControlKey(kmsg.Produce.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			t := kmsg.NewProduceResponseTopic()
			t.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				p := kmsg.NewProduceResponseTopicPartition()
				p.Partition = rp.Partition
				p.ErrorCode = 10 // MESSAGE_TOO_LARGE: not retriable
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp, nil, true
	})
	var mu sync.Mutex
	var lost int
	p, err := New(Config{Kafka: cfg, Linger: time.Millisecond}, WithErrorHandler(func(err error, points int) {
		mu.Lock()
		lost += points
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := p.Send(t.Context(), pt(i)); err != nil {
			t.Fatal(err)
		}
	}
	err = p.Close(t.Context())
	mu.Lock()
	defer mu.Unlock()
	if err == nil || lost != 10 || p.Stats().Failed != 10 {
		t.Fatalf("Close = %v, handler saw %d lost, stats %+v; want an error and 10 failed", err, lost, p.Stats())
	}
	if !strings.Contains(err.Error(), "10 points failed") {
		t.Fatalf("Close error %q does not count the failed points", err)
	}
}

func TestSendBatchWaitsForAcknowledgement(t *testing.T) {
	cfg, open := stalled(t)
	p, err := New(Config{Kafka: cfg, Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(t.Context())
	batch := []point.Point{pt(1), pt(2), pt(3)}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := p.SendBatch(ctx, batch); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendBatch with the broker holding the batch = %v, want it to wait", err)
	}
	open()
	if err := p.SendBatch(t.Context(), batch); err != nil {
		t.Fatalf("SendBatch = %v", err)
	}
	if st := p.Stats(); st.Acked < 3 {
		t.Fatalf("SendBatch returned before its points were acknowledged: %+v", st)
	}
	bad := []point.Point{pt(4), {Measurement: "x"}}
	if err := p.SendBatch(t.Context(), bad); !errors.Is(err, point.ErrNoFields) || !strings.Contains(err.Error(), "point 2") {
		t.Fatalf("SendBatch with an invalid point = %v", err)
	}
}
