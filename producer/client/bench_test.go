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
		// warming up, a neighbour's load) weighs on both sides alike.
		bare += writeBare(b, kc, topic(), benchMessages())
		viaClient += sendAll(b, kc, topic())
		viaClient += sendAll(b, kc, topic())
		bare += writeBare(b, kc, topic(), benchMessages())
	}
	n := float64(2 * benchProduce * b.N)
	b.ReportMetric(n/viaClient.Seconds(), "client-points/s")
	b.ReportMetric(n/bare.Seconds(), "writer-points/s")
	b.ReportMetric(bare.Seconds()/viaClient.Seconds(), "ratio")
	b.ReportMetric(0, "ns/op")
}

// benchPoint is the i-th point sent: 26 series.
func benchPoint(i int) point.Point {
	p := pt(i)
	p.Tags[0].Value = "r" + string(rune('a'+i%26))
	return p
}

// benchMessages are the benchmark's points encoded as the client encodes
// them.
func benchMessages() []kafka.Message {
	headers := []kafka.Header{{Key: kafkaio.HeaderContentType, Value: []byte(point.FormatLine.ContentType())}}
	msgs := make([]kafka.Message, benchProduce)
	for i := range msgs {
		p := benchPoint(i)
		line, k := point.AppendLineKeyed(nil, &p)
		msgs[i] = kafka.Message{Key: line[:k:k], Value: line, Headers: headers}
	}
	return msgs
}

// sendAll sends the benchmark's points made as a producer makes them, one
// at a time, here from a template per series: a million points made in
// advance would be live memory that every garbage collection during the
// run scans, which no producer has. (The bare writer's pre-encoded messages
// are, by definition, made in advance.)
func sendAll(b *testing.B, kc kafkaio.Config, topic string) time.Duration {
	p, err := New(Config{Kafka: kc, Topic: topic}) // the defaults: buffer 100,000, batch 1000, linger 10ms
	if err != nil {
		b.Fatal(err)
	}
	templates := make([]point.Point, 26)
	for i := range templates {
		templates[i] = benchPoint(i)
	}
	runtime.GC() // the set-up's garbage is not the run's cost
	start := time.Now()
	for i := range benchProduce {
		pt := &templates[i%len(templates)]
		pt.Fields[0].Value, pt.Time = float64(i), int64(1700000000000000000+i)
		if err := p.Send(b.Context(), *pt); err != nil {
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
