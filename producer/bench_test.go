package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/producer/client"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
)

const (
	benchHTTPPoints  = 200000
	benchHTTPBatch   = 5000 // lines per request, Telegraf's default metric_batch_size is 1000–5000
	benchHTTPClients = 4
)

// BenchmarkHTTPWrite measures line-protocol points/s accepted end to end
// into the test bed's Kafka through the write endpoint, with HTTP clients
// on loopback posting batches concurrently; the baseline in the same
// iteration sends the same decoded points with SendBatch, without HTTP.
func BenchmarkHTTPWrite(b *testing.B) {
	kc := kafkaio.Config{Brokers: []string{testbed.KafkaBrokers(b)}}
	admin, err := kafkaio.NewAdmin(kc)
	if err != nil {
		b.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).UnixNano()
	bodies := make([][]byte, benchHTTPPoints/benchHTTPBatch)
	batches := make([][]point.Point, len(bodies))
	var dec point.Decoder
	for i := range bodies {
		var buf bytes.Buffer
		for j := range benchHTTPBatch {
			n := i*benchHTTPBatch + j
			fmt.Fprintf(&buf, "http_bench,host=h%d,dc=eu usage=%d.5,idle=%di %d\n", n%50, n%100, n%7, base+int64(n))
		}
		bodies[i] = buf.Bytes()
		if batches[i], err = dec.DecodeLine(nil, bodies[i]); err != nil {
			b.Fatal(err)
		}
	}
	var viaHTTP, direct time.Duration
	for range b.N {
		topic := testbed.UniqueName("bench-http-")
		testbed.DeleteTopicsAtCleanup(b, topic)
		if err := admin.EnsureTopics(b.Context(), kafkaio.TopicSpec{Name: topic, Partitions: 8, ReplicationFactor: 1}); err != nil {
			b.Fatal(err)
		}
		p, err := client.New(client.Config{Kafka: kc, Topic: topic})
		if err != nil {
			b.Fatal(err)
		}
		direct += concurrently(b, len(batches), func(i int) error { return p.SendBatch(b.Context(), batches[i]) })
		h, err := newWriteHandler(writeConfig{Listen: "127.0.0.1:0", MaxBodyBytes: defaultMaxBodyBytes}, p, func(context.Context) error { return nil },
			zerolog.Nop(), prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(h)
		viaHTTP += concurrently(b, len(bodies), func(i int) error {
			resp, err := http.Post(srv.URL+"/api/v2/write?precision=ns", "text/plain", bytes.NewReader(bodies[i]))
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				return fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			return nil
		})
		srv.Close()
		if err := p.Close(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(benchHTTPPoints * b.N)
	b.ReportMetric(n/viaHTTP.Seconds(), "http-points/s")
	b.ReportMetric(n/direct.Seconds(), "sendbatch-points/s")
	b.ReportMetric(direct.Seconds()/viaHTTP.Seconds(), "ratio")
	b.ReportMetric(0, "ns/op")
}

// concurrently runs do(0..n-1) on benchHTTPClients goroutines and returns
// the elapsed time.
func concurrently(b *testing.B, n int, do func(i int) error) time.Duration {
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	start := time.Now()
	var wg sync.WaitGroup
	for range benchHTTPClients {
		wg.Go(func() {
			for i := range next {
				if err := do(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
