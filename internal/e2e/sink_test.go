package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
)

// TestMisconfiguredBucketLosesNothing: both services are pointed at a
// database that does not exist (a typo, a deleted bucket). InfluxDB's 404 is
// the sink's fault, not the data's: nothing is dead-lettered, nothing is
// committed, /readyz says what to fix, and once the database exists every
// point and every forecast is written.
func TestMisconfiguredBucketLosesNothing(t *testing.T) {
	const points, series = 5000, 100
	b := newBed(t, "nobucket")
	b.db = testbed.UniqueName("e2e_missing_")
	b.bucket = b.db + "/autogen"
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, rulesFile, "rules: []\n")
	cAddr, aAddr := testbed.FreeAddr(t), testbed.FreeAddr(t)
	c := b.consumer("c", cAddr)
	a := b.analyzer("a", rulesFile, aAddr)
	if err := b.produce(points).Wait(time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	for name, addr := range map[string]string{"consumer": cAddr, "analyzer": aAddr} {
		testbed.Eventually(t, 30*time.Second, name+" /readyz naming the missing database", func() (bool, string) {
			code, body := readyz(addr)
			return code == http.StatusServiceUnavailable && strings.Contains(body, "not found") && strings.Contains(body, b.db), body
		})
	}
	// Five seconds were enough for the old code to dead-letter and commit
	// everything.
	consistently(t, 5*time.Second, "nothing dead-lettered or committed without a database", func() string {
		if n := b.topicMessages(b.topic + "-dlq"); n != 0 {
			return fmt.Sprintf("%d messages dead-lettered because the bucket is missing", n)
		}
		for _, g := range []string{"-c", "-a"} {
			committed, err := b.admin.CommittedOffsets(t.Context(), b.topic+g, b.topic)
			if err != nil {
				return err.Error()
			}
			for part, off := range committed {
				if off > 0 {
					return fmt.Sprintf("group %s committed partition %d to %d", b.topic+g, part, off)
				}
			}
		}
		return ""
	})
	fixed := time.Now()
	testbed.CreateDatabase(t, b.influxURL, b.db)
	b.waitCount("synthetic", "value", points, time.Minute)
	b.waitCount("synthetic", "value_forecast", points-2*series, time.Minute)
	b.waitCommitted(b.topic+"-c", time.Minute)
	b.waitCommitted(b.topic+"-a", time.Minute)
	for name, addr := range map[string]string{"consumer": cAddr, "analyzer": aAddr} {
		testbed.Eventually(t, 30*time.Second, name+" /readyz 200 again", func() (bool, string) { code, body := readyz(addr); return code == 200, body })
	}
	if n := b.topicMessages(b.topic + "-dlq"); n != 0 {
		t.Fatalf("%d messages dead-lettered; want 0", n)
	}
	for _, p := range []*testbed.Proc{c, a} {
		if !strings.Contains(p.Output(), "create it") {
			t.Errorf("%s never logged what to fix:\n%s", p.Name, p.Output())
		}
	}
	t.Logf("missing database: 0 dead-lettered, 0 committed; after CREATE DATABASE all %d points and %d forecasts in %s",
		points, points-2*series, time.Since(fixed).Round(time.Millisecond))
	stopGracefully(t, c)
	stopGracefully(t, a)
}

// TestFrozenInfluxKeepsHealthHonest: InfluxDB is frozen (SIGSTOP) mid-run.
// Both services answer /readyz (503) and /healthz (200) within a second
// throughout, the consumer's lag shows the backlog, and after SIGCONT every
// point is written.
func TestFrozenInfluxKeepsHealthHonest(t *testing.T) {
	const points = 40000
	b := newBed(t, "frozen")
	b.ownInflux()
	pid := b.ownInfluxPID()
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, rulesFile, "rules: []\n")
	cAddr, aAddr := testbed.FreeAddr(t), testbed.FreeAddr(t)
	c := b.consumer("c", cAddr, "--influx-timeout", "60s")
	a := b.analyzer("a", rulesFile, aAddr, "--influx-timeout", "60s")
	producer := b.produce(points, "--rate", "4000")
	waitAtLeast(t, b, 5000)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	defer thaw()
	var maxLag float64
	var slow []string
	sawUnready := map[string]bool{}
	for time.Since(frozen) < 20*time.Second {
		for name, addr := range map[string]string{"consumer": cAddr, "analyzer": aAddr} {
			for _, path := range []string{"/readyz", "/healthz"} {
				code, _ := get1s(addr, path)
				switch {
				case code == 0:
					slow = append(slow, fmt.Sprintf("%s %s no answer within 1 s at +%s", name, path, time.Since(frozen).Round(time.Second)))
				case path == "/healthz" && code != 200:
					t.Errorf("%s /healthz = %d while InfluxDB is frozen; want 200 (the process is alive)", name, code)
				case path == "/readyz" && code == 503:
					sawUnready[name] = true
				}
			}
		}
		maxLag = max(maxLag, metricSum(cAddr, "metricpipe_kafka_consumer_lag"))
		time.Sleep(500 * time.Millisecond)
	}
	thaw()
	t.Logf("InfluxDB frozen 20 s: consumer lag peaked at %.0f messages", maxLag)
	if len(slow) > 0 {
		t.Errorf("health endpoints stalled while InfluxDB was frozen:\n%s", strings.Join(slow, "\n"))
	}
	for _, name := range []string{"consumer", "analyzer"} {
		if !sawUnready[name] {
			t.Errorf("%s /readyz never said 503 while InfluxDB was frozen", name)
		}
	}
	if maxLag == 0 {
		t.Error("metricpipe_kafka_consumer_lag stayed 0 while the backlog grew behind a frozen InfluxDB")
	}
	if err := producer.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	b.waitCount("synthetic", "value", points, 2*time.Minute)
	b.waitCommitted(b.topic+"-c", time.Minute)
	stopGracefully(t, c)
	stopGracefully(t, a)
}

// consistently checks every 200 ms for d that violated returns "", and
// fails the test with what it returned otherwise.
func consistently(t *testing.T, d time.Duration, what string, violated func() string) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if v := violated(); v != "" {
			t.Fatalf("%s: %s", what, v)
		}
	}
}

// readyz returns the status and body of a service's /readyz.
func readyz(addr string) (int, string) { return get1s(addr, "/readyz") }

// get1s GETs path from a service, allowing it one second; status 0 when
// no answer came in time.
func get1s(addr, path string) (int, string) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metricSum adds up every sample of a metric on a service's /metrics.
func metricSum(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// topicMessages returns how many messages a topic holds (0 when it has none
// or does not exist).
func (b *bed) topicMessages(topic string) int64 {
	b.t.Helper()
	ends, err := b.admin.PartitionEnds(b.t.Context(), topic)
	if err != nil {
		return 0
	}
	var n int64
	for _, end := range ends {
		n += end
	}
	return n
}

// ownInfluxPID returns the pid of the InfluxDB ownInflux started.
func (b *bed) ownInfluxPID() int {
	b.t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.ownInfluxDir, "influxdb", "pid"))
	if err != nil {
		b.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		b.t.Fatal(err)
	}
	return pid
}

// TestAnalyzerDeadLettersRefusedOutput: another writer made the forecast
// field a string, so InfluxDB refuses every forecast the analyzer writes.
// They are dead-lettered as line protocol, every one, and the stream moves
// on: nothing is dropped silently.
func TestAnalyzerDeadLettersRefusedOutput(t *testing.T) {
	const points, series = 2000, 100
	b := newBed(t, "refused")
	resp, err := http.Post(b.influxURL+"/api/v2/write?bucket="+b.bucket, "text/plain",
		strings.NewReader(fmt.Sprintf("synthetic,series=x value_forecast=\"text\" %d", time.Now().UnixNano())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, rulesFile, "rules: []\n")
	addr := testbed.FreeAddr(t)
	a := b.analyzer("a", rulesFile, addr, "--dlq-topic", b.topic+"-dlq")
	if err := b.produce(points).Wait(time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	b.waitCommitted(b.topic+"-a", time.Minute)
	want := float64(points - 2*series) // every point but each series' first two has a forecast
	if got := metricSum(addr, "metricpipe_analyzer_points_dead_lettered_total"); got != want {
		t.Fatalf("analyzer dead-lettered %.0f points, want %.0f", got, want)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.brokers}, Topic: b.topic + "-dlq", GroupID: b.topic + "-reader",
		StartOffset: kafka.FirstOffset, MaxWait: 500 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var lines int
	for lines < int(want) {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("after %d dead-lettered lines: %v", lines, err)
		}
		if !strings.Contains(kafkaio.HeaderValue(&m, kafkaio.HeaderError), "field type conflict") ||
			kafkaio.HeaderValue(&m, kafkaio.HeaderService) != "analyzer" {
			t.Fatalf("dead letter without its reason: headers %v", m.Headers)
		}
		lines += strings.Count(string(m.Value), "value_forecast=")
	}
	t.Logf("forecasts InfluxDB refused: all %d dead-lettered with the reason, offsets committed to the end", lines)
	stopGracefully(t, a)
}
