package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
)

// TestDeterminism (issue 14): the consumer's moving averages and rollups
// and the analyzer's forecasts, scores and alerts must not depend on
// partitioning, batching, crashes or rebalances. The same synthetic input,
// three sources years apart interleaved on three partitions, goes through
// the pipeline twice, each run on its own topic, groups and database:
//
//   - baseline: one consumer and one analyzer, everything on the topic
//     before they start, batches of 5,000;
//   - chaos: a paced feed, batches of 50, two instances of each service;
//     one of each killed with SIGKILL and restarted, twice; a third of each
//     joining mid-stream and stopped later.
//
// Every value of every measurement in the two databases must be the same,
// bit for bit, and so must each alert's sequence of events. Each series
// must have a rollup row for every window its points fall in, and no point
// may be dropped as late: each series keeps its own event time.
func TestDeterminism(t *testing.T) {
	e := newDetEnv(t)
	t.Logf("Apache Kafka %s, InfluxDB %s; %d series × %d points on %d partitions; checkpoints: %v",
		testbed.KafkaVersion(t), testbed.InfluxVersion(t, e.influxURL), len(e.in.series), detPointsPerSer, detPartitions, e.checkpoints)

	base := e.newRun("base", []string{"--influx-batch-size", "5000", "--influx-flush-interval", "500ms"},
		[]string{"--batch-size", "5000", "--flush-interval", "500ms"})
	base.runBaseline()
	chaos := e.newRun("chaos", []string{"--influx-batch-size", "50", "--influx-flush-interval", "20ms"},
		[]string{"--batch-size", "50", "--flush-interval", "20ms"})
	chaos.runChaos(90 * time.Second)

	e.compare(base, chaos)
}

// detEnv is what the two runs share: the test bed, the binaries, the
// input and the rules.
type detEnv struct {
	t           *testing.T
	brokers     string
	influxURL   string
	bins        map[string]string
	admin       *kafkaio.Admin
	in          *detInput
	rules       string
	checkpoints bool // the services have issue 14's --checkpoint-interval and --state-topic
}

func newDetEnv(t *testing.T) *detEnv {
	e := &detEnv{t: t, brokers: testbed.KafkaBrokers(t), influxURL: testbed.InfluxURL(t), in: newDetInput(14)}
	e.bins = testbed.BuildServices(t, t.TempDir())
	admin, err := kafkaio.NewAdmin(kafkaio.Config{Brokers: []string{e.brokers}})
	if err != nil {
		t.Fatal(err)
	}
	e.admin = admin
	e.rules = filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, e.rules, detRulesFile())
	// The checkpoint flags came with issue 14's fix: the test runs without
	// them on the code before it, where it reproduces the issue.
	e.checkpoints = true
	for _, svc := range []string{"consumer", "analyzer"} {
		out, _ := exec.Command(e.bins[svc], "--help").CombinedOutput()
		e.checkpoints = e.checkpoints && bytes.Contains(out, []byte("--checkpoint-interval"))
	}
	return e
}

// detRun is one pass of the input through the pipeline.
type detRun struct {
	e                     *detEnv
	t                     *testing.T
	name                  string
	topic, alertTopic     string
	db, bucket            string
	consumerArgs, anaArgs []string
	procs                 []*detProc // every process started, the killed ones too
	droppedLate, expired  float64    // counted by the consumers, scraped before each stopped or was killed
	kills                 int
	took                  time.Duration
	cGroup, aGroup        string
	committedAtKill       []string
}

// detProc is one service process of a run.
type detProc struct {
	*testbed.Proc
	addr     string
	consumer bool
	gone     bool // killed or stopped
}

func (e *detEnv) newRun(name string, consumerBatch, analyzerBatch []string) *detRun {
	t := e.t
	r := &detRun{e: e, t: t, name: name, topic: testbed.UniqueName("det-" + name + "-"), db: testbed.UniqueName("det_" + name + "_")}
	r.alertTopic, r.cGroup, r.aGroup = r.topic+"-alerts", r.topic+"-c", r.topic+"-a"
	r.bucket = testbed.CreateDatabase(t, e.influxURL, r.db)
	// An alert event's message time is its event time, years ago here:
	// time-based retention would delete the alert topic's segments at its
	// next check, before the test reads them.
	client := &kafka.Client{Addr: kafka.TCP(e.brokers), Timeout: 30 * time.Second}
	resp, err := client.CreateTopics(t.Context(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: r.topic, NumPartitions: detPartitions, ReplicationFactor: 1},
		{Topic: r.alertTopic, NumPartitions: detPartitions, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "-1"}}},
	}})
	if err == nil {
		for _, e := range resp.Errors {
			err = errors.Join(err, e)
		}
	}
	if err != nil {
		t.Fatalf("create the topics: %v", err)
	}
	topics := []string{r.topic, r.alertTopic, r.topic + "-dlq"}
	if e.checkpoints {
		topics = append(topics, r.cGroup+"-state", r.aGroup+"-state")
	}
	testbed.DeleteTopicsAtCleanup(t, topics...)
	r.consumerArgs = append([]string{"--kafka-brokers", e.brokers, "--topic", r.topic, "--group", r.cGroup,
		"--dlq-topic", r.topic + "-dlq", "--influx-url", e.influxURL, "--influx-bucket", r.bucket, "--log-format", "console",
		"--sma-window", "10", "--ema-span", "10", "--wma-weights", "0.5,0.3,0.2",
		"--rollup", detRollup.String(), "--allowed-lateness", "0s", "--idle-flush", "3s"}, consumerBatch...)
	r.anaArgs = append([]string{"--kafka-brokers", e.brokers, "--topic", r.topic, "--group", r.aGroup,
		"--dlq-topic", r.topic + "-dlq", "--alert-topic", r.alertTopic, "--rules", e.rules,
		"--influx-url", e.influxURL, "--influx-bucket", r.bucket, "--log-format", "console",
		"--sma-window", "10", "--ema-span", "10"}, analyzerBatch...)
	if e.checkpoints {
		// Checkpoints every 2 s: several during the chaos run.
		r.consumerArgs = append(r.consumerArgs, "--state-topic", r.cGroup+"-state", "--checkpoint-interval", "2s")
		r.anaArgs = append(r.anaArgs, "--state-topic", r.aGroup+"-state", "--checkpoint-interval", "2s")
	}
	return r
}

func (r *detRun) consumer() *detProc {
	addr := testbed.FreeAddr(r.t)
	p := &detProc{Proc: testbed.Start(r.t, fmt.Sprintf("%s-consumer-%d", r.name, len(r.procs)), r.e.bins["consumer"],
		append(r.consumerArgs, "--http-addr", addr)...), addr: addr, consumer: true}
	r.procs = append(r.procs, p)
	return p
}

func (r *detRun) analyzer() *detProc {
	addr := testbed.FreeAddr(r.t)
	p := &detProc{Proc: testbed.Start(r.t, fmt.Sprintf("%s-analyzer-%d", r.name, len(r.procs)), r.e.bins["analyzer"],
		append(r.anaArgs, "--http-addr", addr)...), addr: addr}
	r.procs = append(r.procs, p)
	return p
}

// scrape adds what a consumer counted to the run's figures, just before
// it stops or is killed: a killed consumer's last counts are lost.
func (r *detRun) scrape(p *detProc) {
	if !p.consumer {
		return
	}
	for name, sum := range map[string]*float64{
		"metricpipe_consumer_points_dropped_late_total": &r.droppedLate,
		"metricpipe_consumer_series_expired_total":      &r.expired,
	} {
		v, _, err := metric(p.addr, name)
		if err != nil {
			r.t.Logf("%s: read %s: %v", p.Name, name, err)
		}
		*sum += v
	}
}

func (r *detRun) kill9(p *detProc) {
	r.t.Helper()
	r.scrape(p)
	r.committedAtKill = append(r.committedAtKill, fmt.Sprintf("%s at %s", p.Name, r.committed()))
	if err := p.Signal(syscall.SIGKILL); err != nil {
		r.t.Fatal(err)
	}
	_ = p.Wait(10 * time.Second)
	p.gone = true
	r.kills++
	r.t.Logf("%s killed (SIGKILL); committed then: %s", p.Name, r.committed())
}

func (r *detRun) stop(p *detProc) {
	r.t.Helper()
	r.scrape(p)
	p.gone = true
	stopGracefully(r.t, p.Proc)
}

// live returns the processes still running; one that exited on its own
// fails the test.
func (r *detRun) live() []*testbed.Proc {
	var out []*testbed.Proc
	for _, p := range r.procs {
		if p.gone {
			continue
		}
		if p.Exited() {
			r.t.Fatalf("%s exited:\n%s", p.Name, tail(p.Output(), 30))
		}
		out = append(out, p.Proc)
	}
	return out
}

// committed is each group's committed offsets, for the log.
func (r *detRun) committed() string {
	var out []string
	for _, g := range []string{r.cGroup, r.aGroup} {
		c, err := r.e.admin.CommittedOffsets(r.t.Context(), g, r.topic)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", g, err))
			continue
		}
		out = append(out, fmt.Sprintf("%s=%v", g[len(r.topic)+1:], c))
	}
	return strings.Join(out, " ")
}

// settle waits until both groups committed the end of every partition: as
// the consumer holds its commits back to the oldest open rollup window,
// its last windows were flushed (--idle-flush) and written by then.
func (r *detRun) settle(timeout time.Duration) {
	r.t.Helper()
	ctx := r.t.Context()
	testbed.Eventually(r.t, timeout, r.name+": both groups committed to the end of every partition", func() (bool, string) {
		r.live()
		ends, err := r.e.admin.PartitionEnds(ctx, r.topic)
		if err != nil {
			return false, err.Error()
		}
		for _, g := range []string{r.cGroup, r.aGroup} {
			committed, err := r.e.admin.CommittedOffsets(ctx, g, r.topic)
			if err != nil {
				return false, err.Error()
			}
			for p, end := range ends {
				if committed[p] != end {
					return false, fmt.Sprintf("%s partition %d committed %d of %d", g, p, committed[p], end)
				}
			}
		}
		return true, ""
	})
}

// stopAll stops every process still running, gracefully.
func (r *detRun) stopAll() {
	for _, p := range r.procs {
		if !p.gone {
			r.stop(p)
		}
	}
}

func (e *detEnv) producer() *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cl.Close)
	return cl
}

// runBaseline: the whole input on the topic, then one consumer and one
// analyzer read it in large batches.
func (r *detRun) runBaseline() {
	start := time.Now()
	recs := r.e.in.records(r.topic)
	cl := r.e.producer()
	const chunk = 5000
	for i := 0; i < len(recs); i += chunk {
		if err := cl.ProduceSync(r.t.Context(), recs[i:min(i+chunk, len(recs))]...).FirstErr(); err != nil {
			r.t.Fatalf("produce the baseline's records %d-%d: %v", i, min(i+chunk, len(recs)), err)
		}
	}
	r.consumer()
	r.analyzer()
	r.settle(2 * time.Minute)
	r.stopAll()
	r.took = time.Since(start)
	r.t.Logf("baseline: %d points in %s", len(recs), r.took.Round(100*time.Millisecond))
}

// runChaos feeds the input at a pace that spreads it over feedFor while two
// instances of each service share it; one of each is killed (SIGKILL) at
// 15 % of the feed and restarted 3 s later, a third of each joins at 35 %,
// the other first one is killed at 55 % and restarted, and the third ones
// are stopped (SIGTERM) at 75 %.
func (r *detRun) runChaos(feedFor time.Duration) {
	start := time.Now()
	c1, a1 := r.consumer(), r.analyzer()
	c2, a2 := r.consumer(), r.analyzer()
	recs := r.e.in.records(r.topic)
	rate := float64(len(recs)) / feedFor.Seconds()
	var sent atomic.Int64
	fed := make(chan error, 1)
	go func() { fed <- paceFeed(r.t, r.e.producer(), recs, rate, &sent) }()
	var feedErr error
	feedDone := false
	at := func(frac float64) {
		r.t.Helper()
		want := int64(frac * float64(len(recs)))
		testbed.Eventually(r.t, 2*feedFor, fmt.Sprintf("%.0f%% of the chaos feed sent", 100*frac), func() (bool, string) {
			r.live()
			if !feedDone {
				select {
				case feedErr = <-fed:
					feedDone = true
				default:
				}
			}
			if feedErr != nil {
				r.t.Fatalf("chaos feed: %v", feedErr)
			}
			n := sent.Load()
			return n >= want, fmt.Sprintf("%d of %d sent", n, len(recs))
		})
	}
	restartAfter := 3 * time.Second

	at(0.15)
	r.kill9(c1)
	r.kill9(a1)
	hold(r.t, restartAfter, r.live()...)
	r.consumer()
	r.analyzer()
	r.t.Logf("chaos: first consumer and analyzer restarted")

	at(0.35)
	c3, a3 := r.consumer(), r.analyzer()
	r.t.Logf("chaos: third consumer and analyzer started")

	at(0.55)
	r.kill9(c2)
	r.kill9(a2)
	hold(r.t, restartAfter, r.live()...)
	r.consumer()
	r.analyzer()
	r.t.Logf("chaos: second consumer and analyzer restarted")

	at(0.75)
	r.stop(c3)
	r.stop(a3)
	r.t.Logf("chaos: third consumer and analyzer stopped (SIGTERM); committed: %s", r.committed())

	at(1)
	if !feedDone {
		feedErr = <-fed
	}
	if feedErr != nil {
		r.t.Fatalf("chaos feed: %v", feedErr)
	}
	fedIn := time.Since(start)
	r.settle(3 * time.Minute)
	r.stopAll()
	r.took = time.Since(start)
	r.t.Logf("chaos: %d points fed in %s, all committed and stopped after %s", len(recs), fedIn.Round(100*time.Millisecond), r.took.Round(100*time.Millisecond))
}

// paceFeed produces recs in order at rate records a second, in small
// steps, counting in sent what Kafka acknowledged.
func paceFeed(t *testing.T, cl *kgo.Client, recs []*kgo.Record, rate float64, sent *atomic.Int64) error {
	const step = 50 * time.Millisecond
	tick := time.NewTicker(step)
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < len(recs); {
		select {
		case <-t.Context().Done():
			return t.Context().Err()
		case <-tick.C:
		}
		due := min(len(recs), int(time.Since(start).Seconds()*rate))
		if due <= i {
			continue
		}
		if err := cl.ProduceSync(t.Context(), recs[i:due]...).FirstErr(); err != nil {
			return fmt.Errorf("produce records %d-%d: %w", i, due, err)
		}
		i = due
		sent.Store(int64(i))
	}
	return nil
}

// restores counts, over every process of the run, the partitions restored
// from a checkpoint and the checkpoints discarded, from their logs.
func (r *detRun) restores() (restored, discarded int) {
	for _, p := range r.procs {
		out := p.Output()
		restored += strings.Count(out, "state restored from checkpoint")
		discarded += strings.Count(out, "checkpoint discarded")
	}
	return restored, discarded
}
