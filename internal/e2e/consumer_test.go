package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
)

const total = 100000

// TestConsumerWritesEveryPoint: 100,000 points over 8 partitions become
// exactly 100,000 raw points in InfluxDB.
func TestConsumerWritesEveryPoint(t *testing.T) {
	b := newBed(t, "all")
	c := b.consumer("c", testbed.FreeAddr(t))
	start := time.Now()
	if err := b.produce(total).Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	b.waitCount("synthetic", "value", total, 2*time.Minute)
	b.waitCommitted(b.topic+"-c", time.Minute)
	t.Logf("100,000 points over 8 partitions: exactly 100,000 in InfluxDB after %s", time.Since(start).Round(time.Millisecond))
	stopGracefully(t, c)
}

// TestConsumerSurvivesKill9: the consumer is killed with SIGKILL mid-run and
// restarted; InfluxDB still ends with exactly 100,000 points.
func TestConsumerSurvivesKill9(t *testing.T) {
	b := newBed(t, "kill")
	c := b.consumer("c", testbed.FreeAddr(t))
	producer := b.produce(total, "--rate", "8000")
	waitAtLeast(t, b, 20000)
	if err := c.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.Wait(10 * time.Second)
	n, _ := b.count("synthetic", "value")
	t.Logf("consumer killed with SIGKILL at %d points in InfluxDB; restarting it", n)
	c = b.consumer("c", testbed.FreeAddr(t))
	if err := producer.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	b.waitCount("synthetic", "value", total, 2*time.Minute)
	b.waitCommitted(b.topic+"-c", time.Minute)
	t.Logf("after kill -9 and restart: exactly %d points, none missing, none extra", total)
	stopGracefully(t, c)
}

// TestConsumerRidesOutInfluxOutage: InfluxDB is stopped for 20 s mid-run.
// The consumer stays up, reports not ready, and once InfluxDB is back
// writes everything: exactly 100,000 points.
func TestConsumerRidesOutInfluxOutage(t *testing.T) {
	b := newBed(t, "outage")
	stopInflux, startInflux := b.ownInflux()
	addr := testbed.FreeAddr(t)
	c := b.consumer("c", addr)
	producer := b.produce(total, "--rate", "8000")
	waitAtLeast(t, b, 20000)
	stopInflux()
	outage := time.Now()
	t.Log("InfluxDB stopped")
	var sawUnready bool
	testbed.Eventually(t, 30*time.Second, "20 s of outage", func() (bool, string) {
		if c.Exited() {
			t.Fatalf("consumer exited during the outage:\n%s", c.Output())
		}
		sawUnready = sawUnready || ready(addr) == 503
		return time.Since(outage) >= 20*time.Second, ""
	})
	if !sawUnready {
		t.Error("/readyz never reported 503 while InfluxDB was down")
	}
	startInflux()
	t.Log("InfluxDB started again")
	if err := producer.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	b.waitCount("synthetic", "value", total, 2*time.Minute)
	b.waitCommitted(b.topic+"-c", time.Minute)
	if c.Exited() {
		t.Fatal("consumer exited")
	}
	testbed.Eventually(t, 30*time.Second, "/readyz 200 again", func() (bool, string) { return ready(addr) == 200, "" })
	if !strings.Contains(c.Output(), "influxdb writes failing; holding the stream") {
		t.Error("consumer log shows no retried write")
	}
	t.Logf("InfluxDB down 20 s mid-run: consumer stayed up, /readyz 503 during, exactly %d points after", total)
	stopGracefully(t, c)
}

// TestConsumerDeadLettersOnePercent: 1% of 100,000 messages are malformed;
// each one is in the DLQ with its reason, every valid point in InfluxDB.
func TestConsumerDeadLettersOnePercent(t *testing.T) {
	b := newBed(t, "bad")
	w, err := kafkaio.NewWriter(kafkaio.Config{Brokers: []string{b.brokers}}, b.topic, kafkaio.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	base := time.Now().Add(-time.Hour).UnixNano()
	msgs := make([]kafka.Message, 0, total)
	bad := 0
	for i := range total {
		p := point.Point{Measurement: "mixed", Tags: []point.Tag{{Key: "s", Value: strconv.Itoa(i % 50)}},
			Fields: []point.Field{{Key: "v", Value: float64(i)}}, Time: base + int64(i)}
		val := point.AppendLine(nil, &p)
		if i%100 == 99 {
			val = []byte(fmt.Sprintf("mixed,s=%d v=%di-oops %d", i%50, i, base+int64(i)))
			bad++
		}
		msgs = append(msgs, kafka.Message{Key: point.AppendSeriesKey(nil, &p), Value: val})
	}
	if err := w.WriteMessages(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	c := b.consumer("c", testbed.FreeAddr(t))
	b.waitCount("mixed", "v", int64(total-bad), 2*time.Minute)
	b.waitCommitted(b.topic+"-c", time.Minute)

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.brokers}, Topic: b.topic + "-dlq", GroupID: b.topic + "-dlq-reader",
		StartOffset: kafka.FirstOffset, MaxWait: 500 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < bad {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read DLQ after %d of %d: %v", len(seen), bad, err)
		}
		reason := kafkaio.HeaderValue(&m, kafkaio.HeaderError)
		if !strings.Contains(reason, "line 1, byte") || !strings.Contains(reason, `"v"`) {
			t.Fatalf("DLQ reason %q does not locate the bad field", reason)
		}
		off := kafkaio.HeaderValue(&m, kafkaio.HeaderSourcePartition) + "/" + kafkaio.HeaderValue(&m, kafkaio.HeaderSourceOffset)
		if seen[off] {
			t.Fatalf("message %s dead-lettered twice", off)
		}
		seen[off] = true
	}
	t.Logf("%d malformed of %d messages: all %d in the DLQ with their reason; %d valid points in InfluxDB", bad, total, len(seen), total-bad)
	stopGracefully(t, c)
}

// TestConsumerGroupMemberLeaves: two consumers share the partitions; one
// stops mid-run, the other takes its partitions; nothing is missing.
func TestConsumerGroupMemberLeaves(t *testing.T) {
	b := newBed(t, "pair")
	c1 := b.consumer("g", testbed.FreeAddr(t))
	c2 := b.consumer("g", testbed.FreeAddr(t))
	producer := b.produce(total, "--rate", "8000")
	waitAtLeast(t, b, 20000)
	stopGracefully(t, c2)
	n, _ := b.count("synthetic", "value")
	t.Logf("second consumer stopped at %d points in InfluxDB", n)
	if err := producer.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	b.waitCount("synthetic", "value", total, 2*time.Minute)
	b.waitCommitted(b.topic+"-g", time.Minute)
	if !strings.Contains(c1.Output(), "partitions assigned") {
		t.Error("first consumer never logged an assignment")
	}
	t.Logf("one of two consumers stopped mid-run: exactly %d points", total)
	stopGracefully(t, c1)
}

func waitAtLeast(t *testing.T, b *bed, n int64) {
	t.Helper()
	testbed.Eventually(t, time.Minute, fmt.Sprintf("%d points written", n), func() (bool, string) {
		got, err := b.count("synthetic", "value")
		if err != nil {
			return false, err.Error()
		}
		return got >= n, fmt.Sprintf("%d points", got)
	})
}

func stopGracefully(t *testing.T, p *testbed.Proc) {
	t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(45 * time.Second); err != nil {
		t.Fatalf("%s after SIGTERM: %v (want exit status 0)", p.Name, err)
	}
}
