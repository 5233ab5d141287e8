package client

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
)

const benchProduce = 1_000_000

// BenchmarkProducerThroughput sends the same points to the test bed's Kafka
// through a Producer and, as the baseline in the same iteration, through a
// bare kafka-go Writer writing the same pre-encoded messages with the same
// batch settings (async, acks=all, batch 1000, linger 10ms). It reports
// points/s of each and their ratio (target ≥ 0.9).
func BenchmarkProducerThroughput(b *testing.B) {
	kc := kafkaio.Config{Brokers: []string{testbed.KafkaBrokers(b)}}
	admin, err := kafkaio.NewAdmin(kc)
	if err != nil {
		b.Fatal(err)
	}
	var viaClient, bare time.Duration
	topic := func() string {
		t := testbed.UniqueName("bench-produce-")
		testbed.DeleteTopicsAtCleanup(b, t)
		if err := admin.EnsureTopics(b.Context(), kafkaio.TopicSpec{Name: t, Partitions: 8, ReplicationFactor: 1}); err != nil {
			b.Fatal(err)
		}
		return t
	}
	for range b.N {
		// Bare, client, client, bare: drift over the iteration (the broker
		// warming up, a neighbour's load) weighs on both sides alike. Each
		// side's input is made just before its run, so the other side's is
		// not live: every garbage collection scans what is.
		bare += writeBare(b, kc, topic(), benchMessages())
		viaClient += sendAll(b, kc, topic(), benchPoints())
		viaClient += sendAll(b, kc, topic(), benchPoints())
		bare += writeBare(b, kc, topic(), benchMessages())
	}
	n := float64(2 * benchProduce * b.N)
	b.ReportMetric(n/viaClient.Seconds(), "client-points/s")
	b.ReportMetric(n/bare.Seconds(), "writer-points/s")
	b.ReportMetric(bare.Seconds()/viaClient.Seconds(), "ratio")
	b.ReportMetric(0, "ns/op")
}

func benchPoints() []point.Point {
	pts := make([]point.Point, benchProduce)
	for i := range pts {
		pts[i] = pt(i)
		pts[i].Tags[0].Value = "r" + string(rune('a'+i%26))
	}
	return pts
}

// benchMessages are benchPoints encoded as the client encodes them.
func benchMessages() []kafka.Message {
	headers := []kafka.Header{{Key: kafkaio.HeaderContentType, Value: []byte(point.FormatLine.ContentType())}}
	pts := benchPoints()
	msgs := make([]kafka.Message, len(pts))
	for i := range pts {
		line, k := point.AppendLineKeyed(nil, &pts[i])
		msgs[i] = kafka.Message{Key: line[:k:k], Value: line, Headers: headers}
	}
	return msgs
}

func sendAll(b *testing.B, kc kafkaio.Config, topic string, pts []point.Point) time.Duration {
	p, err := New(Config{Kafka: kc, Topic: topic}) // the defaults: buffer 10,000, batch 1000, linger 10ms
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC() // the set-up's garbage is not the run's cost
	start := time.Now()
	for i := range pts {
		if err := p.Send(b.Context(), pts[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Close(b.Context()); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func writeBare(b *testing.B, kc kafkaio.Config, topic string, msgs []kafka.Message) time.Duration {
	var wg sync.WaitGroup
	var failed error
	w, err := kafkaio.NewWriter(kc, topic, kafkaio.WriterOptions{Async: true, Completion: func(m []kafka.Message, err error) {
		if err != nil {
			failed = err
		}
		for range m {
			wg.Done()
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	start := time.Now()
	wg.Add(len(msgs))
	for i := range msgs {
		if err := w.WriteMessages(b.Context(), msgs[i]); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := w.Close(); err != nil || failed != nil {
		b.Fatal(err, failed)
	}
	return elapsed
}
