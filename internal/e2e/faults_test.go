package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
)

// TestFaults is the fault suite: on the 3-node cluster `make test-faults`
// starts, each scenario feeds a known set of points through the producer,
// Kafka, the consumer and the analyzer into InfluxDB while a broker fails or
// the data is unusual, then reads every point back: none may be missing,
// changed, extra or dead-lettered. Each prints a FAULTS line of figures.
// The scenarios run one after the other, each on a healed cluster.
func TestFaults(t *testing.T) {
	c := testbed.NeedCluster(t)
	s := &faultSuite{c: c, influxURL: testbed.InfluxURL(t)}
	t.Logf("Apache Kafka %s, 3 KRaft nodes (%s); InfluxDB %s", c.Version, strings.Join(c.Brokers, ","), testbed.InfluxVersion(t, s.influxURL))
	s.bins = testbed.BuildServices(t, t.TempDir())
	for _, sc := range []struct {
		name string
		run  func(*testing.T, *faultSuite)
	}{
		{"kill-leader", faultKillLeader},
		{"rolling-restart", faultRollingRestart},
		{"freeze", faultFreeze},
		{"aborted-transactions", faultAbortedTransactions},
		{"compression", faultCompression},
		{"retention", faultRetention},
		{"tls", func(t *testing.T, s *faultSuite) { faultSecure(t, s, "tls", overTLS) }},
		{"sasl", func(t *testing.T, s *faultSuite) { faultSecure(t, s, "sasl", overSASL) }},
		{"sasl-wrong-password", faultWrongPassword},
	} {
		t.Run(sc.name, func(t *testing.T) {
			// A scenario that failed half-way must not leave the next one a
			// broken cluster.
			t.Cleanup(func() { c.Heal(t, 2*time.Minute) })
			sc.run(t, s)
		})
	}
}

// streamed runs the pipeline over a paced feed and calls fault once the
// first points are stored; then it waits for everything to settle, reads
// it all back and reports. fault returns the recovery time it measured.
func streamed(t *testing.T, s *faultSuite, name string, f *feed, speed float64, fault func(b *faultBed, procs []*testbed.Proc) time.Duration) {
	b := s.bed(t, name, plaintext, nil)
	c := b.consumer(testbed.FreeAddr(t))
	a := b.analyzer()
	p := b.replay(f, speed)
	b.waitStored(int64(len(f.order)/10), time.Minute)
	fg := &figures{scenario: name, analyzer: a}
	fg.recover = fault(b, []*testbed.Proc{c, a, p})
	fg.producerFailed = awaitProducer(t, p, 3*time.Minute)
	fg.lag = b.settle(len(f.order), 3*time.Minute, b.consumerGroup(), b.analyzerGroup())
	b.verify(fg, f, f.order)
	b.report(fg)
	stopGracefully(t, c)
	stopGracefully(t, a)
}

// faultKillLeader: the node leading most of the topic's partitions is
// killed with SIGKILL mid-stream and started again 15 s later.
func faultKillLeader(t *testing.T, s *faultSuite) {
	// 100 series for 300 s of event time, replayed at 10x: 1,000 points/s for 30 s.
	leaderOutage(t, s, "kill-leader", newFeed("k", 100, 300, 1), 15*time.Second, "killed (SIGKILL)", s.c.Kill, s.c.Restart, "started again")
}

// leaderOutage streams f while the node leading most of its partitions is
// out for outage: hit takes it out, heal brings it back.
func leaderOutage(t *testing.T, s *faultSuite, name string, f *feed, outage time.Duration, what string, hit, heal func(testing.TB, int), healed string) {
	streamed(t, s, name, f, 10, func(b *faultBed, procs []*testbed.Proc) time.Duration {
		node, n, err := s.c.BusiestLeader(t.Context(), b.topic)
		if err != nil {
			t.Fatal(err)
		}
		coord := b.coordinators()
		rec := b.recovery(b.consumerGroup(), 2*time.Minute)
		hit(t, node)
		t.Logf("node %d, leader of partitions %v, %s; %s", node, n, what, coord)
		hold(t, outage, procs[:2]...)
		heal(t, node)
		t.Logf("node %d %s", node, healed)
		d, each := rec()
		t.Logf("consumer committed again on every partition after: %s", each)
		return d
	})
}

// faultRollingRestart: each node in turn is stopped gracefully and started
// again under load, the next one once every replica is back in sync.
func faultRollingRestart(t *testing.T, s *faultSuite) {
	// 50 series for 1,000 s of event time at 10x: 500 points/s for 100 s,
	// about as long as three restarts take on two cores.
	f := newFeed("r", 50, 1000, 2)
	streamed(t, s, "rolling-restart", f, 10, func(b *faultBed, procs []*testbed.Proc) time.Duration {
		var worst time.Duration
		for _, node := range testbed.Nodes {
			rec := b.recovery(b.consumerGroup(), 2*time.Minute)
			start := time.Now()
			s.c.Restart(t, node)
			s.c.AwaitInSync(t, 2*time.Minute)
			d, each := rec()
			t.Logf("node %d restarted and in sync after %s; consumer committed again on every partition after: %s", node, time.Since(start).Round(100*time.Millisecond), each)
			if d < 0 || worst < 0 {
				worst = -1 // not measured: the load ended first
				continue
			}
			worst = max(worst, d)
		}
		return worst
	})
}

// faultFreeze: the node leading most partitions is frozen with SIGSTOP for
// 30 s, its connections open but silent, then thawed.
func faultFreeze(t *testing.T, s *faultSuite) {
	leaderOutage(t, s, "freeze", newFeed("z", 100, 500, 3), 30*time.Second, "frozen (SIGSTOP)", s.c.Pause, s.c.Resume, "thawed (SIGCONT)")
}

// faultAbortedTransactions: a transactional producer commits some
// transactions and aborts others; only the committed points may be stored,
// and the transaction markers are no messages to dead-letter.
func faultAbortedTransactions(t *testing.T, s *faultSuite) {
	const txns, series, steps = 20, 50, 10 // 500 points a transaction
	b := s.bed(t, "txn", plaintext, nil)
	c := b.consumer(testbed.FreeAddr(t))
	a := b.analyzer()
	f := newFeed("t", series, txns*steps, 4)
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.c.Brokers...), kgo.DefaultProduceTopic(b.topic),
		kgo.TransactionalID(b.topic+"-txn"), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var committed, aborted []sample
	per := series * steps
	for i := range txns {
		abort := i%4 == 1 // 5 of 20
		part := f.order[i*per : (i+1)*per]
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		recs := make([]*kgo.Record, len(part))
		for j, smp := range part {
			recs[j] = &kgo.Record{Key: []byte(smp.series), Value: []byte(f.line(smp)),
				Headers: []kgo.RecordHeader{{Key: kafkaio.HeaderContentType, Value: []byte(point.FormatLine.ContentType())}}}
		}
		if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
		if err := cl.EndTransaction(t.Context(), kgo.TransactionEndTry(!abort)); err != nil {
			t.Fatalf("end transaction %d: %v", i, err)
		}
		if abort {
			aborted = append(aborted, part...)
		} else {
			committed = append(committed, part...)
		}
	}
	t.Logf("%d transactions of %d points: %d committed, %d aborted", txns, per, len(committed)/per, len(aborted)/per)
	fg := &figures{scenario: "aborted-transactions", analyzer: a, recover: -1}
	fg.lag = b.settle(len(committed), 2*time.Minute, b.consumerGroup(), b.analyzerGroup())
	b.verify(fg, f, committed)
	got, err := b.stored("value")
	if err != nil {
		t.Fatal(err)
	}
	abortedStored := 0
	for _, smp := range aborted {
		if _, ok := got[smp]; ok {
			abortedStored++
		}
	}
	fg.extraFields = append(fg.extraFields, fmt.Sprintf("aborted=%d aborted_stored=%d", len(aborted), abortedStored))
	b.report(fg)
	stopGracefully(t, c)
	stopGracefully(t, a)
}

// faultCompression: Kafka's own Java console producer writes line protocol
// in batches compressed with gzip, snappy, lz4 and zstd; every batch is read
// back with its codec checked, every point stored.
func faultCompression(t *testing.T, s *faultSuite) {
	codecs := []string{"gzip", "snappy", "lz4", "zstd"} // kgo's CompressionType numbers are 1-4, in this order
	b := s.bed(t, "codec", plaintext, nil)
	c := b.consumer(testbed.FreeAddr(t))
	a := b.analyzer()
	f := &feed{want: map[sample]float64{}}
	for i, codec := range codecs {
		part := newFeed(codec, 25, 200, uint64(10+i)) // 5,000 points a codec
		var in strings.Builder
		for _, smp := range part.order {
			f.want[smp] = part.want[smp]
			// key TAB value: the series is the key, as our producer keys them.
			fmt.Fprintf(&in, "%s\t%s\n", smp.series, part.line(smp))
		}
		f.order = append(f.order, part.order...)
		cmd := s.c.Java("org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", strings.Join(s.c.Brokers, ","),
			"--topic", b.topic, "--compression-codec", codec, "--property", "parse.key=true",
			"--producer-property", "acks=all", "--producer-property", "linger.ms=50", "--producer-property", "batch.size=262144")
		cmd.Stdin = strings.NewReader(in.String())
		if out, err := runFor(cmd, 2*time.Minute); err != nil {
			t.Fatalf("ConsoleProducer --compression-codec %s: %v\n%s", codec, err, out)
		}
	}
	// The batches on the topic are compressed as asked.
	records := compressionOf(t, s.c.Brokers, b.topic, len(f.order))
	var seen []string
	for i, codec := range codecs {
		seen = append(seen, fmt.Sprintf("%s=%d", codec, records[int8(i+1)]))
		if records[int8(i+1)] != len(f.order)/len(codecs) {
			t.Errorf("%d records compressed with %s, want %d", records[int8(i+1)], codec, len(f.order)/len(codecs))
		}
	}
	fg := &figures{scenario: "compression", analyzer: a, recover: -1, extraFields: []string{"records_by_codec=" + strings.Join(seen, ",")}}
	fg.lag = b.settle(len(f.order), 2*time.Minute, b.consumerGroup(), b.analyzerGroup())
	b.verify(fg, f, f.order)
	b.report(fg)
	stopGracefully(t, c)
	stopGracefully(t, a)
}

// runFor runs cmd, killing it after timeout, and returns its combined output.
func runFor(cmd *exec.Cmd, timeout time.Duration) ([]byte, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return []byte(out.String()), err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return []byte(out.String()), fmt.Errorf("still running after %s", timeout)
	}
}

// compressionOf reads the first n records of topic with franz-go, which
// reports the codec of each record's batch, and counts the records by codec
// (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
func compressionOf(t *testing.T, brokers []string, topic string, n int) map[int8]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	records := map[int8]int{}
	for got := 0; got < n; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s back: %d of %d records: %v", topic, got, n, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			records[int8(r.Attrs.CompressionType())]++
			got++
		})
	}
	return records
}

// faultRetention: retention deletes the oldest segments of the topic while
// the consumer is stopped and behind. When it starts again, what was lost
// must be counted (metricpipe_kafka_messages_skipped_total on its /metrics)
// and logged once, and everything still on the topic stored.
func faultRetention(t *testing.T, s *faultSuite) {
	const skippedMetric = "metricpipe_kafka_messages_skipped_total"
	// Segments roll each second, so retention has whole old segments to delete.
	b := s.bed(t, "retention", plaintext, map[string]string{"segment.ms": "1000", "retention.ms": "-1"})
	f := newFeed("r1", 50, 40, 21) // read before the consumer stops
	f.add("r2", 50, 100, 22)       // retention deletes most of these
	f.add("r3", 50, 40, 23)        // written after retention ran
	p1, p2, p3 := f.order[:2000], f.order[2000:7000], f.order[7000:]
	part := func(ss []sample) *feed { return &feed{want: f.want, order: ss} }

	c := b.consumer(testbed.FreeAddr(t))
	if n := awaitProducer(t, b.replay(part(p1), 0), time.Minute); n != 0 {
		t.Fatalf("producer failed %d points", n)
	}
	if lag := b.settle(len(p1), time.Minute, b.consumerGroup()); lag[b.consumerGroup()] != 0 {
		t.Fatalf("the consumer did not commit to the end before it stopped: lag %v", lag)
	}
	stopGracefully(t, c)
	committed, err := s.c.Committed(t.Context(), b.consumerGroup(), b.topic, b.partitions)
	if err != nil {
		t.Fatal(err)
	}
	// 5,000 points over 5 s: about five segments a partition.
	if n := awaitProducer(t, b.replay(part(p2), 20), time.Minute); n != 0 {
		t.Fatalf("producer failed %d points", n)
	}
	if err := s.c.SetTopicConfig(t.Context(), b.topic, map[string]string{"retention.ms": "1000"}); err != nil {
		t.Fatal(err)
	}
	var oldest map[int]int64
	testbed.Eventually(t, time.Minute, "retention deleting unread segments of every partition", func() (bool, string) {
		oldest, err = s.c.Offsets(t.Context(), b.topic, kafka.FirstOffset)
		if err != nil {
			return false, err.Error()
		}
		for p, off := range oldest {
			if off <= committed[p] {
				return false, fmt.Sprintf("partition %d: oldest %d, committed %d", p, off, committed[p])
			}
		}
		return true, ""
	})
	// Keep what is left: the loss measured is the loss the consumer must count.
	if err := s.c.SetTopicConfig(t.Context(), b.topic, map[string]string{"retention.ms": "-1"}); err != nil {
		t.Fatal(err)
	}
	oldest, err = s.c.Offsets(t.Context(), b.topic, kafka.FirstOffset)
	if err != nil {
		t.Fatal(err)
	}
	var lost int64
	for p, off := range oldest {
		lost += off - committed[p]
	}
	if n := awaitProducer(t, b.replay(part(p3), 0), time.Minute); n != 0 {
		t.Fatalf("producer failed %d points", n)
	}
	addr := testbed.FreeAddr(t)
	c = b.consumer(addr)
	fg := &figures{scenario: "retention", retention: true, recover: -1, lost: float64(lost)}
	fg.lag = b.settle(len(f.order)-int(lost), 2*time.Minute, b.consumerGroup())
	skipped, found, err := metric(addr, skippedMetric)
	if err != nil {
		t.Fatalf("read the consumer's /metrics: %v", err)
	}
	fg.skipped = skipped
	b.verify(fg, f, f.order)
	// The fetch path warns of the loss; which words it uses is its own
	// business, but it names the messages lost.
	var logged []string
	for _, line := range linesWith(c.Output(), "WRN") {
		if containsAny(line, "lost=", "deleted", "skipped") {
			logged = append(logged, line)
		}
	}
	lossy := 0
	for p, off := range oldest {
		if off > committed[p] {
			lossy++
		}
	}
	fg.extraFields = append(fg.extraFields, fmt.Sprintf("loss_log_lines=%d partitions_lost=%d", len(logged), lossy))
	t.Log(fg.String())
	if len(logged) > 0 {
		t.Logf("the consumer logged: %s", strings.TrimSpace(logged[0]))
	}
	// Only the deleted points may be missing, and exactly as many as deleted.
	if fg.wrong > 0 || fg.extra > 0 || fg.dlq > 0 || int64(fg.missing) != lost {
		t.Errorf("retention: %d points missing (deleted before they were read: %d), %d changed, %d extra, %d dead-lettered", fg.missing, lost, fg.wrong, fg.extra, fg.dlq)
	}
	switch {
	case !found:
		t.Errorf("the consumer's /metrics has no %s: the %d messages retention deleted went uncounted", skippedMetric, lost)
	case skipped != float64(lost):
		t.Errorf("%s = %g, want %d (deleted before they were read)", skippedMetric, skipped, lost)
	}
	if len(logged) == 0 || len(logged) > lossy {
		t.Errorf("the loss was logged %d times, want once for each of the %d partitions that lost messages: %q", len(logged), lossy, logged)
	}
	if fg.lag[b.consumerGroup()] != 0 {
		t.Errorf("the consumer never committed its last %d offsets", fg.lag[b.consumerGroup()])
	}
	stopGracefully(t, c)
}

// faultSecure: the services produce and consume through the TLS or the
// SASL_SSL (SCRAM-SHA-512) listeners.
func faultSecure(t *testing.T, s *faultSuite, name string, l listener) {
	b := s.bed(t, name, l, nil)
	f := newFeed(name, 20, 250, 30)
	c := b.consumer(testbed.FreeAddr(t))
	a := b.analyzer()
	fg := &figures{scenario: name, analyzer: a, recover: -1}
	fg.producerFailed = awaitProducer(t, b.replay(f, 0), 2*time.Minute)
	fg.lag = b.settle(len(f.order), 2*time.Minute, b.consumerGroup(), b.analyzerGroup())
	b.verify(fg, f, f.order)
	b.report(fg)
	stopGracefully(t, c)
	stopGracefully(t, a)
}

// faultWrongPassword: every service given a wrong SASL password stops
// within seconds with an error naming the broker and the cause.
func faultWrongPassword(t *testing.T, s *faultSuite) {
	const limit = 15 * time.Second
	b := s.bed(t, "badpw", overSASL, nil)
	for i, arg := range b.kafka {
		if arg == "--kafka-sasl-password-file" {
			b.kafka[i+1] = b.secretFile("not-" + s.c.SASLPassword)
		}
	}
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, rules, "rules: []\n")
	feedFile := filepath.Join(t.TempDir(), "one.lp")
	writeFile(t, feedFile, "faults,series=x value=1 1700000000000000000\n")
	services := map[string][]string{
		"producer": append(b.args("replay", "--topic", b.topic), feedFile),
		"consumer": b.args("--topic", b.topic, "--group", b.consumerGroup(), "--dlq-topic", b.dlqTopic(),
			"--influx-url", s.influxURL, "--influx-bucket", b.bucket),
		"analyzer": b.args("--topic", b.topic, "--group", b.analyzerGroup(), "--alert-topic", b.topic+"-alerts",
			"--rules", rules, "--influx-url", s.influxURL, "--influx-bucket", b.bucket),
	}
	var figs []string
	for _, name := range []string{"producer", "consumer", "analyzer"} {
		start := time.Now()
		p := testbed.Start(t, name, s.bins[name], services[name]...)
		err := p.Wait(limit)
		took := time.Since(start)
		out := p.Output()
		status := "exit"
		switch {
		case err == context.DeadlineExceeded:
			status = "running"
			_ = p.Signal(syscall.SIGKILL)
			t.Errorf("%s with a wrong SASL password still running after %s; its output:\n%s", name, limit, tail(out, 20))
		case err == nil:
			t.Errorf("%s with a wrong SASL password exited with status 0 after %s:\n%s", name, took.Round(time.Millisecond), tail(out, 20))
		}
		names := containsAny(out, b.brokers...)
		cause := strings.Contains(strings.ToLower(out), "authentication failed")
		if status == "exit" && (!names || !cause) {
			t.Errorf("%s with a wrong SASL password: the error names the broker: %v, the cause (SASL authentication failed): %v; its output:\n%s", name, names, cause, tail(out, 20))
		}
		figs = append(figs, fmt.Sprintf("%s=%s/%.1fs", name, status, took.Seconds()))
		t.Logf("%s said: %s", name, tail(out, 1))
	}
	t.Logf("FAULTS scenario=sasl-wrong-password %s", strings.Join(figs, " "))
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
