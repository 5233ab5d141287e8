package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/movavg"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/service"
)

// benchTotal is large enough that the last batch of each partition, which
// waits its flush interval for points that never come, is a few percent of
// the pipeline's time rather than a tenth.
const (
	benchTotal      = 3_000_000
	benchPartitions = 8
	benchBatch      = 5000
)

// BenchmarkEndToEnd measures the consumer on the local test bed (Kafka →
// consumer → InfluxDB) against a baseline that writes the same points to
// the same InfluxDB with the same client and batch size, one writer per
// partition's share, without Kafka. "The same points" are what the consumer
// writes: each raw point with its moving averages merged in, and the
// rollups, computed beforehand (untimed) by the same stage. Both run in each
// iteration; it reports input points/s of each and their ratio (target ≥ 0.8).
func BenchmarkEndToEnd(b *testing.B) {
	for _, perMsg := range []int{1, 10} {
		b.Run(fmt.Sprintf("points-per-message=%d", perMsg), func(b *testing.B) { benchEndToEnd(b, perMsg) })
	}
}

func benchEndToEnd(b *testing.B, perMsg int) {
	brokers, influxURL := testbed.KafkaBrokers(b), testbed.InfluxURL(b)
	kc := kafkaio.Config{Brokers: []string{brokers}}
	var pipeline, direct time.Duration
	for range b.N {
		// The points are dropped before anything is timed: a million live
		// points would make every garbage collection of either side scan
		// them, which no consumer in production does.
		pts := makeBenchPoints(time.Now().Add(-time.Hour).UnixNano(), benchSeries)
		shares := stageOutput(b, pts)
		msgs := benchMessages(pts, perMsg)
		pts = nil
		direct += writeDirect(b, influxURL, shares)
		shares = nil
		pipeline += consume(b, kc, influxURL, msgs, kafkaio.CheckpointConfig{})
	}
	n := float64(benchTotal * b.N)
	b.ReportMetric(n/pipeline.Seconds(), "pipeline-points/s")
	b.ReportMetric(n/direct.Seconds(), "direct-points/s")
	b.ReportMetric(direct.Seconds()/pipeline.Seconds(), "ratio")
	b.ReportMetric(0, "ns/op")
}

// benchSeries is the series of BenchmarkEndToEnd's points.
const benchSeries = 100

// makeBenchPoints returns benchTotal points of series series, one point of
// each in turn, a millisecond apart per round.
func makeBenchPoints(base int64, series int) []point.Point {
	pts := make([]point.Point, benchTotal)
	tags := make([][]point.Tag, series)
	for s := range tags {
		tags[s] = []point.Tag{{Key: "host", Value: "h" + strconv.Itoa(s)}}
	}
	for i := range pts {
		pts[i] = point.Point{Measurement: "bench", Tags: tags[i%series], Fields: []point.Field{{Key: "v", Value: float64(i)}},
			Time: base + int64(i/series)*int64(time.Millisecond)}
	}
	return pts
}

// BenchmarkCheckpointCost measures what checkpointing costs the consumer
// end to end (Kafka → consumer → InfluxDB, as BenchmarkEndToEnd): the same
// messages consumed with checkpoints and without, in each iteration, at the
// default interval and at six times its rate. 20,000 series, so that a
// checkpoint is about 9 MB. It reports both rates and their ratio (target
// ≥ 0.9).
func BenchmarkCheckpointCost(b *testing.B) {
	const series = 20_000
	for _, interval := range []time.Duration{30 * time.Second, 5 * time.Second} {
		b.Run("interval="+interval.String(), func(b *testing.B) {
			brokers, influxURL := testbed.KafkaBrokers(b), testbed.InfluxURL(b)
			kc := kafkaio.Config{Brokers: []string{brokers}}
			var off, on time.Duration
			for range b.N {
				msgs := benchMessages(makeBenchPoints(time.Now().Add(-time.Hour).UnixNano(), series), 1)
				off += consume(b, kc, influxURL, msgs, kafkaio.CheckpointConfig{})
				on += consume(b, kc, influxURL, msgs, kafkaio.CheckpointConfig{Topic: testbed.UniqueName("bench-state-"), Interval: interval})
			}
			n := float64(benchTotal * b.N)
			b.ReportMetric(n/on.Seconds(), "checkpointed-points/s")
			b.ReportMetric(n/off.Seconds(), "plain-points/s")
			b.ReportMetric(off.Seconds()/on.Seconds(), "ratio")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func benchInflux(b *testing.B, influxURL string) influx.Config {
	return influx.Config{URL: influxURL, Bucket: testbed.CreateDatabase(b, influxURL, testbed.UniqueName("bench_")),
		BatchSize: benchBatch, FlushInterval: time.Second, Timeout: 30 * time.Second}
}

// partitionOf returns the partition the producer's balancer sends p's
// series to, so the baseline splits the work exactly as Kafka does.
func partitionOf(p *point.Point) int {
	parts := make([]int, benchPartitions)
	for i := range parts {
		parts[i] = i
	}
	return (&kafka.Murmur2Balancer{Consistent: true}).Balance(kafka.Message{Key: point.AppendSeriesKey(nil, p)}, parts...)
}

// stageOutput returns, per partition share, what the consumer writes for
// pts: each point with its moving averages merged in, then the rollups.
func stageOutput(b *testing.B, pts []point.Point) [][]point.Point {
	shares := make([][]point.Point, benchPartitions)
	partition := make([]int, 100) // by series
	for s := range partition {
		partition[s] = partitionOf(&pts[s])
	}
	for share := range shares {
		stage, err := movavg.New(benchStage())
		if err != nil {
			b.Fatal(err)
		}
		var rollups []point.Point
		for i := range pts {
			if partition[i%100] != share {
				continue
			}
			p := pts[i]
			var res movavg.Result
			rollups, res = stage.ProcessResult(&p, 0, rollups)
			if res.Derived {
				d := rollups[len(rollups)-1]
				rollups = rollups[:len(rollups)-1]
				p.Fields = append(slices.Clip(p.Fields), d.Fields...)
			}
			shares[share] = append(shares[share], p)
		}
		rollups = stage.Flush(rollups)
		for _, r := range rollups {
			r.Tags, r.Fields = slices.Clone(r.Tags), slices.Clone(r.Fields) // the stage's memory is not ours
			shares[share] = append(shares[share], r)
		}
	}
	return shares
}

// benchStage is the stage configuration of the flags' defaults: SMA 10,
// EMA span 10, 1m rollups.
func benchStage() movavg.Config {
	return movavg.Config{Default: movavg.Params{SMAWindow: 10, EMAAlpha: 2.0 / 11, Rollup: time.Minute},
		AllowedLateness: 10 * time.Second, MaxSeries: 100000, IdleTimeout: time.Hour}
}

// writeDirect writes each share with its own goroutine, concurrently, as
// the consumer's partition workers do.
func writeDirect(b *testing.B, influxURL string, shares [][]point.Point) time.Duration {
	sink, err := influx.NewSink(benchInflux(b, influxURL))
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	runtime.GC() // the untimed set-up's garbage is not the baseline's cost
	start := time.Now()
	var wg sync.WaitGroup
	for _, share := range shares {
		wg.Go(func() {
			for len(share) > 0 {
				n := min(len(share), benchBatch)
				if err := sink.Write(b.Context(), share[:n]); err != nil {
					b.Error(err)
					return
				}
				share = share[n:]
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// benchMessages encodes pts as a producer batching per series sends them:
// consecutive points of a series share a message, perMsg at a time, with
// the content-type header producer/client sets.
func benchMessages(pts []point.Point, perMsg int) []kafka.Message {
	headers := []kafka.Header{{Key: kafkaio.HeaderContentType, Value: []byte(point.FormatLine.ContentType())}}
	bySeries := map[string][]byte{}
	count := map[string]int{}
	var msgs []kafka.Message
	for i := range pts {
		key := string(point.AppendSeriesKey(nil, &pts[i]))
		bySeries[key] = point.AppendLine(bySeries[key], &pts[i])
		if count[key]++; count[key] == perMsg {
			msgs = append(msgs, kafka.Message{Key: []byte(key), Value: bySeries[key], Headers: headers})
			bySeries[key], count[key] = nil, 0
		}
	}
	for key, v := range bySeries {
		if len(v) > 0 {
			msgs = append(msgs, kafka.Message{Key: []byte(key), Value: v, Headers: headers})
		}
	}
	return msgs
}

// consume produces msgs (benchTotal points) to a fresh topic (not timed),
// then times the consumer from its first fetched message to the end of
// every partition.
func consume(b *testing.B, kc kafkaio.Config, influxURL string, msgs []kafka.Message, ckpt kafkaio.CheckpointConfig) time.Duration {
	topic := testbed.UniqueName("bench-")
	testbed.DeleteTopicsAtCleanup(b, topic, topic+"-dlq")
	if ckpt.Topic != "" {
		testbed.DeleteTopicsAtCleanup(b, ckpt.Topic)
	}
	admin, err := kafkaio.NewAdmin(kc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if err := admin.EnsureTopics(ctx, kafkaio.TopicSpec{Name: topic, Partitions: benchPartitions, ReplicationFactor: 1}); err != nil {
		b.Fatal(err)
	}
	w, err := kafkaio.NewWriter(kc, topic, kafkaio.WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		b.Fatal(err)
	}
	w.Close()

	cfg := config{
		Service: service.Config{LogFormat: "json", LogLevel: "warn", HTTPAddr: "127.0.0.1:0"},
		Kafka:   kc,
		Influx:  benchInflux(b, influxURL),
		Topic:   kafkaio.TopicSpec{Name: topic, Partitions: benchPartitions, ReplicationFactor: 1},
		DLQ:     kafkaio.TopicSpec{Name: topic + "-dlq", Partitions: 1, ReplicationFactor: 1},
		Group: kafkaio.GroupConfig{Topic: topic, Group: topic, BatchSize: benchBatch, BatchWait: 200 * time.Millisecond, DrainTimeout: 10 * time.Second,
			IdleAfter: time.Second, Checkpoints: ckpt},
		Stage:     benchStage(),
		MaxFuture: time.Hour,
	}
	msgs = nil
	runtime.GC() // the untimed set-up's garbage is not the pipeline's cost
	reg := prometheus.NewRegistry()
	exited, stop := testbed.Serve(b, func(ctx context.Context) error { return run(ctx, cfg, zerolog.Nop(), reg) })
	defer stop()
	// The clock starts at the first fetched message, so joining the group
	// is not counted, and stops when InfluxDB accepted the last raw point
	// (with the derived points of its batch, written before it is counted).
	// The registry holds the consumer's metrics only: the process and Go
	// collectors a server registers cost the consumer CPU when gathered
	// every few milliseconds, as no Prometheus scrape does.
	d, ok := testbed.AwaitCount(reg, "metricpipe_kafka_messages_fetched_total", "metricpipe_consumer_points_written_total", benchTotal, exited)
	if !ok {
		b.Fatal("consumer stopped before writing every point")
	}
	return d
}
