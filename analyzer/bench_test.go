package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
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
	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/anomaly"
	"github.com/metricpipe/metricpipe/shared/forecast"
	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/service"
	"github.com/metricpipe/metricpipe/shared/stream"
)

// benchRules are typical rules: an anomaly rule and a threshold rule on
// the EMA, both matching every series.
const benchRules = `rules:
  - name: anomaly
    anomaly: {z: 8}
    keep_firing_for: 1m
  - name: high
    threshold: {of: ema, above: 1e9}
`

func benchAnalysis(season int) *analysis {
	a := &analysis{Forecast: forecast.DefaultConfig(), Anomaly: anomaly.DefaultConfig(), IntervalZ: 3, SMAWindow: 10,
		EMAAlpha: 2.0 / 11, MaxSeries: 200_000, IdleTimeout: time.Hour, WriteForecasts: true}
	a.Forecast.Season = season // the default model is auto
	return a
}

func benchPoints(n int) []point.Point {
	pts := make([]point.Point, n)
	for i := range pts {
		pts[i] = point.Point{Measurement: "cpu",
			Tags:   []point.Tag{{Key: "host", Value: fmt.Sprintf("host-%06d", i)}, {Key: "region", Value: "eu-west-1"}},
			Fields: []point.Field{{Key: "usage", Value: 0}}}
	}
	return pts
}

// BenchmarkAnalyzePoint is the per-point analysis of the analyzer's hot
// path: forecast (auto), anomaly score, two rules and their lifecycles, and
// the forecast output, over 10,000 series round-robin, output reset every
// 1,000 points as after a batch. Target ≥ 1M points/s, 0 allocs/op.
func BenchmarkAnalyzePoint(b *testing.B) {
	const nSeries, batch = 10_000, 1000
	e := testEngine(b, benchAnalysis(0), benchRules)
	pts := benchPoints(nSeries)
	n := 0
	step := func() {
		p := &pts[n%nSeries]
		round := n / nSeries
		p.Time = int64(round+1) * int64(time.Second)
		p.Fields[0].Value = 50 + 10*math.Sin(float64(round)/20) + float64(n%7)
		e.process(p, p.Time)
		if n++; n%batch == 0 {
			e.res.Reset()
		}
	}
	for range 60 * nSeries { // warm: every series tracked, forecasters ready
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		step()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkMemoryPerSeries reports the heap one analyzed series costs
// (auto forecaster, scorer, averages, two rules' lifecycles, map entry),
// with 100,000 series.
func BenchmarkMemoryPerSeries(b *testing.B) {
	for _, season := range []int{0, 24} {
		b.Run("season="+strconv.Itoa(season), func(b *testing.B) {
			for range b.N {
				b.ReportMetric(bytesPerSeries(b, season), "B/series")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

func bytesPerSeries(tb testing.TB, season int) float64 {
	const n = 100_000
	pts := benchPoints(n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e := testEngine(tb, benchAnalysis(season), benchRules)
	for round := range 3 {
		for i := range pts {
			pts[i].Time = int64(round+1) * int64(time.Second)
			e.process(&pts[i], pts[i].Time)
		}
		e.res.Reset()
	}
	e.res = results{}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(e)
	return float64(after.HeapAlloc-before.HeapAlloc) / n
}

// warmEngine returns an engine of n series in steady state: 1,000 series
// analyzed for 400 points each (forecasters scored, the detector's
// seasonal ring of 336 points full, episodes and alerts under way), each
// cloned to make up n. Analyzing n series for 400 points would take
// minutes; restoring a clone's detector from its template's checkpoint
// takes what Restore takes.
func warmEngine(tb testing.TB, season, n int) *testEng {
	const templates, rounds = 1000, 400
	a := benchAnalysis(season)
	e := testEngine(tb, a, benchRules)
	pts := benchPoints(templates)
	for round := range rounds {
		for i := range pts {
			pts[i].Time = int64(round+1) * int64(time.Second)
			pts[i].Fields[0].Value = 50 + 10*math.Sin(float64(round)/20+float64(i)) + float64((i+round)%7)
			e.process(&pts[i], pts[i].Time)
		}
		e.res.Reset()
	}
	tmpl := make([]*series, 0, templates)
	for _, s := range e.series {
		tmpl = append(tmpl, s)
	}
	var enc stream.Encoder
	for i := templates; i < n; i++ {
		t := tmpl[i%templates]
		c := *t
		c.tags = []point.Tag{{Key: "host", Value: fmt.Sprintf("host-%06d", i)}, t.tags[1]}
		c.key = string(seriesKey(nil, &point.Point{Measurement: c.measurement, Tags: c.tags}, c.field))
		c.alerts = slices.Clone(t.alerts)
		cfg := a.Forecast
		cfg.Season = t.det.Forecaster().Season()
		fc, err := forecast.New(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		c.det = anomaly.NewDetector(fc)
		enc.B = enc.B[:0]
		t.det.Checkpoint(&enc)
		d := stream.NewDecoder(enc.B)
		if c.det.Restore(d); d.Err() != nil {
			tb.Fatal(d.Err())
		}
		e.series[c.key] = &c
	}
	return e
}

// BenchmarkCheckpoint is the cost of checkpointing a partition of 100,000
// series in steady state (auto forecaster, two rules), without and with a
// season of 24 points: time per checkpoint, its size, series per second.
func BenchmarkCheckpoint(b *testing.B) {
	for _, season := range []int{0, 24} {
		b.Run("season="+strconv.Itoa(season), func(b *testing.B) {
			const n = 100_000
			e := warmEngine(b, season, n)
			e.Checkpoint(nil) // as after the first: the engine sizes the next by it
			var buf []byte
			b.ResetTimer()
			for b.Loop() {
				buf = e.Checkpoint(nil) // a new buffer each time, as the worst case
			}
			reportCheckpoint(b, n, len(buf))
		})
	}
}

// BenchmarkRestore is the cost of restoring BenchmarkCheckpoint's
// checkpoints into a new engine: what a rebalance costs a partition before
// it replays and goes on.
func BenchmarkRestore(b *testing.B) {
	for _, season := range []int{0, 24} {
		b.Run("season="+strconv.Itoa(season), func(b *testing.B) {
			const n = 100_000
			state := warmEngine(b, season, n).Checkpoint(nil)
			runtime.GC()
			b.ResetTimer()
			for b.Loop() {
				r := testEngine(b, benchAnalysis(season), benchRules)
				if err := r.Restore(state, 0, 0); err != nil || len(r.series) != n {
					b.Fatalf("%v, %d series", err, len(r.series))
				}
			}
			reportCheckpoint(b, n, len(state))
		})
	}
}

func reportCheckpoint(b *testing.B, n, size int) {
	op := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(op*1e3, "ms/op")
	b.ReportMetric(float64(n)/op, "series/s")
	b.ReportMetric(float64(size), "bytes")
	b.ReportMetric(float64(size)/float64(n), "B/series")
	b.ReportMetric(0, "ns/op")
}

const (
	benchTotal      = 1_500_000
	benchPartitions = 8
	benchSeries     = 1000
)

// BenchmarkConsumption measures the analyzer consuming a topic end to end
// on the test bed (fetch, decode, analyze, publish alerts, write to
// InfluxDB, commit) against a bare kafka-go group reader consuming the same
// messages in the same iteration (target ratio ≥ 0.8). With forecasts on,
// the analyzer also writes every point's forecast to InfluxDB.
func BenchmarkConsumption(b *testing.B) {
	for _, perMsg := range []int{1, 10} {
		for _, forecasts := range []bool{false, true} {
			b.Run(fmt.Sprintf("points-per-message=%d/write-forecasts=%v", perMsg, forecasts), func(b *testing.B) {
				benchConsumption(b, perMsg, forecasts)
			})
		}
	}
}

func benchConsumption(b *testing.B, perMsg int, forecasts bool) {
	kc := kafkaio.Config{Brokers: []string{testbed.KafkaBrokers(b)}}
	influxURL := testbed.InfluxURL(b)
	var analyzed, bare time.Duration
	for range b.N {
		topic := produceBench(b, kc, perMsg, time.Now().Add(-time.Hour).UnixNano(), benchSeries)
		bare += readBare(b, kc, topic, benchTotal/perMsg)
		analyzed += analyze(b, kc, influxURL, topic, forecasts, kafkaio.CheckpointConfig{})
	}
	n := float64(benchTotal * b.N)
	b.ReportMetric(n/analyzed.Seconds(), "analyzer-points/s")
	b.ReportMetric(n/bare.Seconds(), "bare-points/s")
	b.ReportMetric(bare.Seconds()/analyzed.Seconds(), "ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCheckpointCost measures what checkpointing costs the analyzer
// end to end (as BenchmarkConsumption, forecasts written): the same topic
// analyzed with checkpoints and without, in each iteration, at the default
// interval and at six times its rate. 20,000 series, so that a checkpoint
// is over 20 MB. It reports both rates and their ratio (target ≥ 0.9).
func BenchmarkCheckpointCost(b *testing.B) {
	const series = 20_000
	for _, interval := range []time.Duration{30 * time.Second, 5 * time.Second} {
		b.Run("interval="+interval.String(), func(b *testing.B) {
			kc := kafkaio.Config{Brokers: []string{testbed.KafkaBrokers(b)}}
			influxURL := testbed.InfluxURL(b)
			var off, on time.Duration
			for range b.N {
				topic := produceBench(b, kc, 1, time.Now().Add(-time.Hour).UnixNano(), series)
				off += analyze(b, kc, influxURL, topic, true, kafkaio.CheckpointConfig{})
				state := topic + "-state"
				testbed.DeleteTopicsAtCleanup(b, state)
				on += analyze(b, kc, influxURL, topic, true, kafkaio.CheckpointConfig{Topic: state, Interval: interval})
			}
			n := float64(benchTotal * b.N)
			b.ReportMetric(n/on.Seconds(), "checkpointed-points/s")
			b.ReportMetric(n/off.Seconds(), "plain-points/s")
			b.ReportMetric(off.Seconds()/on.Seconds(), "ratio")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// produceBench writes benchTotal points of series series, perMsg per
// message, to a new topic.
func produceBench(b *testing.B, kc kafkaio.Config, perMsg int, base int64, series int) string {
	topic := testbed.UniqueName("bench-analyzer-")
	testbed.DeleteTopicsAtCleanup(b, topic, topic+"-alerts", topic+"-dlq")
	admin, err := kafkaio.NewAdmin(kc)
	if err != nil {
		b.Fatal(err)
	}
	if err := admin.EnsureTopics(b.Context(), kafkaio.TopicSpec{Name: topic, Partitions: benchPartitions, ReplicationFactor: 1}); err != nil {
		b.Fatal(err)
	}
	w, err := kafkaio.NewWriter(kc, topic, kafkaio.WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	msgs := make([]kafka.Message, 0, benchTotal/perMsg)
	var p point.Point
	for s := range series {
		p.Measurement, p.Tags = "bench", []point.Tag{{Key: "host", Value: "h" + strconv.Itoa(s)}}
		key := point.AppendSeriesKey(nil, &p)
		for m := range benchTotal / series / perMsg {
			var v []byte
			for i := range perMsg {
				step := m*perMsg + i
				p.Fields = []point.Field{{Key: "v", Value: 50 + 10*math.Sin(float64(step)/30) + float64(step%7)}}
				p.Time = base + int64(step)*int64(time.Second)
				v = point.AppendLine(v, &p)
			}
			msgs = append(msgs, kafka.Message{Key: key, Value: v})
		}
	}
	if err := w.WriteMessages(b.Context(), msgs...); err != nil {
		b.Fatal(err)
	}
	return topic
}

// readBare consumes every message of topic with a kafka-go group reader,
// timed from the first message to the last.
func readBare(b *testing.B, kc kafkaio.Config, topic string, messages int) time.Duration {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: kc.Brokers, Topic: topic, GroupID: topic + "-bare",
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: time.Second, StartOffset: kafka.FirstOffset})
	defer r.Close()
	runtime.GC()
	var start time.Time
	for range messages {
		m, err := r.FetchMessage(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if start.IsZero() {
			start = time.Now()
		}
		_ = m
	}
	return time.Since(start)
}

// analyze runs the analyzer on topic until it analyzed every point and
// committed, timed from its first fetched message.
func analyze(b *testing.B, kc kafkaio.Config, influxURL, topic string, forecasts bool, ckpt kafkaio.CheckpointConfig) time.Duration {
	dir := b.TempDir()
	rulesFile := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte(benchRules), 0o644); err != nil {
		b.Fatal(err)
	}
	a := *benchAnalysis(0)
	a.WriteForecasts = forecasts
	cfg := benchConfig(b, kc, influxURL, topic, rulesFile, a)
	if ckpt.Topic != "" {
		cfg.Group.Group += "-checkpointed" // the topic is read again from the start
		cfg.Group.Checkpoints = ckpt
	}
	runtime.GC()
	reg := prometheus.NewRegistry() // the analyzer's metrics only, as in the consumer's benchmark
	exited, stop := testbed.Serve(b, func(ctx context.Context) error { return run(ctx, cfg, zerolog.Nop(), reg, nil) })
	defer stop()
	d, ok := testbed.AwaitCount(reg, "metricpipe_kafka_messages_fetched_total", "metricpipe_analyzer_points_total", benchTotal, exited)
	if !ok {
		b.Fatal("analyzer stopped before analyzing every point")
	}
	return d
}

// BenchmarkAlertLatency produces 10,000 points/s over 100 series for 30 s,
// one spike every 100 ms on a series rotating through all, and measures from the
// produce call that sent a spike to the moment its alert arrives on the
// alert topic: p50 and p99 (target p99 ≤ 250 ms).
func BenchmarkAlertLatency(b *testing.B) {
	kc := kafkaio.Config{Brokers: []string{testbed.KafkaBrokers(b)}}
	influxURL := testbed.InfluxURL(b)
	var all []time.Duration
	for range b.N {
		all = append(all, alertLatencies(b, kc, influxURL)...)
	}
	slices.Sort(all)
	q := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / 1e6 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(len(all)/b.N), "alerts")
	b.ReportMetric(0, "ns/op")
}

func alertLatencies(b *testing.B, kc kafkaio.Config, influxURL string) []time.Duration {
	const (
		series   = 100
		rate     = 10_000 // points/s
		tick     = 10 * time.Millisecond
		duration = 30 * time.Second
	)
	topic := testbed.UniqueName("bench-latency-")
	testbed.DeleteTopicsAtCleanup(b, topic, topic+"-alerts", topic+"-dlq")
	admin, err := kafkaio.NewAdmin(kc)
	if err != nil {
		b.Fatal(err)
	}
	if err := admin.EnsureTopics(b.Context(), kafkaio.TopicSpec{Name: topic, Partitions: benchPartitions, ReplicationFactor: 1},
		kafkaio.TopicSpec{Name: topic + "-alerts", Partitions: 1, ReplicationFactor: 1}); err != nil {
		b.Fatal(err)
	}
	rulesFile := filepath.Join(b.TempDir(), "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte("rules:\n  - name: spike\n    anomaly: {z: 8}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	a := *benchAnalysis(0)
	a.Anomaly.WarmUp = 30
	cfg := benchConfig(b, kc, influxURL, topic, rulesFile, a)
	_, stopAnalyzer := testbed.Serve(b, func(ctx context.Context) error { return run(ctx, cfg, zerolog.Nop(), service.NewRegistry(), nil) })
	defer stopAnalyzer()
	ctx, stop := context.WithCancel(b.Context())
	defer stop()

	// sent holds the produce time of each spike by its alert's fingerprint
	// and event time.
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: kc.Brokers, Topic: topic + "-alerts", Partition: 0, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 50 * time.Millisecond})
		defer r.Close()
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				return
			}
			arrived := time.Now()
			e, err := alert.Decode(m.Value)
			if err != nil || e.State != alert.Firing {
				continue
			}
			mu.Lock()
			if t, ok := sent[e.Series+"@"+strconv.FormatInt(e.StartsAt.UnixNano(), 10)]; ok {
				lat = append(lat, arrived.Sub(t))
			}
			mu.Unlock()
		}
	}()

	w, err := kafkaio.NewWriter(kc, topic, kafkaio.WriterOptions{Linger: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	perTick := rate * int(tick) / int(time.Second)
	var p point.Point
	p.Measurement = "latency"
	base := time.Now().UnixNano()
	step := 0
	tk := time.NewTicker(tick)
	defer tk.Stop()
	msgs := make([]kafka.Message, 0, perTick)
	for end := time.Now().Add(duration); time.Now().Before(end); <-tk.C {
		msgs = msgs[:0]
		var spikeKey string
		for range perTick {
			s := step % series
			round := step / series
			p.Tags = []point.Tag{{Key: "host", Value: "h" + strconv.Itoa(s)}}
			v := 50 + 10*math.Sin(float64(round)/30) + float64(round%5)*0.1
			p.Time = base + int64(round)*int64(10*time.Millisecond)
			// A spike every 10 rounds (ticks) after the warm-up, on a series
			// rotating through all: each series spikes every 1,000 rounds.
			if round > 100 && round%10 == 0 && s == (round/10)%series {
				v += 1000
				spikeKey = string(point.AppendSeriesKey(nil, &p)) + " v@" + strconv.FormatInt(p.Time, 10)
			}
			p.Fields = []point.Field{{Key: "v", Value: v}}
			msgs = append(msgs, kafka.Message{Key: point.AppendSeriesKey(nil, &p), Value: point.AppendLine(nil, &p)})
			step++
		}
		sentAt := time.Now()
		if spikeKey != "" {
			mu.Lock()
			sent[spikeKey] = sentAt
			mu.Unlock()
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
	}
	// Let the last alerts arrive.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		got, want := len(lat), len(sent)
		mu.Unlock()
		if got >= want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	<-readerDone
	mu.Lock()
	defer mu.Unlock()
	if len(lat) < len(sent)*9/10 {
		b.Fatalf("%d of %d spikes alerted", len(lat), len(sent))
	}
	return lat
}

// benchConfig is the analyzer's configuration in the benchmarks: the
// flags' defaults on topic, with a fresh database.
func benchConfig(b *testing.B, kc kafkaio.Config, influxURL, topic, rulesFile string, a analysis) config {
	return config{
		Service: service.Config{LogFormat: "json", LogLevel: "warn", HTTPAddr: "127.0.0.1:0"},
		Kafka:   kc,
		Influx: influx.Config{URL: influxURL, Bucket: testbed.CreateDatabase(b, influxURL, testbed.UniqueName("bench_")),
			BatchSize: 5000, FlushInterval: time.Second, Timeout: 30 * time.Second},
		Topic:  kafkaio.TopicSpec{Name: topic, Partitions: benchPartitions, ReplicationFactor: 1},
		Alerts: kafkaio.TopicSpec{Name: topic + "-alerts", Partitions: 1, ReplicationFactor: 1},
		DLQ:    kafkaio.TopicSpec{Name: topic + "-dlq", Partitions: 1, ReplicationFactor: 1},
		Group: kafkaio.GroupConfig{Topic: topic, Group: topic + "-analyzer", BatchSize: 5000, BatchWait: 100 * time.Millisecond,
			DrainTimeout: 10 * time.Second, IdleAfter: 10 * time.Second},
		Analysis: a, RulesFile: rulesFile, RulesPoll: time.Minute, AlertsMeasurement: "metricpipe_alerts",
	}
}
