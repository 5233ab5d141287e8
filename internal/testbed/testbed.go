// Package testbed connects integration tests to the real services that
// scripts/testbed.sh starts (Apache Kafka, InfluxDB 1.8) and runs the
// service binaries as processes.
//
// Tests find the services through environment variables set by `make test`.
// Without them a test skips with a one-line reason, unless
// METRICPIPE_TEST_REQUIRE_INTEGRATION=1 (set by `make test` and CI), which
// turns that skip into a failure so a run can never pass by skipping.
package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// Environment variables set by scripts/testbed.sh.
const (
	EnvKafkaBrokers = "METRICPIPE_TEST_KAFKA_BROKERS"
	EnvKafkaVersion = "METRICPIPE_TEST_KAFKA_VERSION"
	EnvInfluxURL    = "METRICPIPE_TEST_INFLUX_URL"
	EnvTestbed      = "METRICPIPE_TEST_TESTBED"
	EnvRequire      = "METRICPIPE_TEST_REQUIRE_INTEGRATION"
)

func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	msg := fmt.Sprintf("integration test needs %s: run `make test` (scripts/testbed.sh starts Kafka and InfluxDB)", name)
	if os.Getenv(EnvRequire) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// KafkaBrokers returns the test bed's Apache Kafka bootstrap address.
func KafkaBrokers(t testing.TB) string { return need(t, EnvKafkaBrokers) }

// KafkaVersion returns the version the broker reported when it started.
func KafkaVersion(t testing.TB) string { return need(t, EnvKafkaVersion) }

// InfluxURL returns the test bed's InfluxDB base URL.
func InfluxURL(t testing.TB) string { return need(t, EnvInfluxURL) }

// Script returns the path of scripts/testbed.sh, for fault tests that stop
// and start a service.
func Script(t testing.TB) string { return need(t, EnvTestbed) }

// UniqueName returns prefix plus a random suffix, so tests sharing the test
// bed never share a topic, group or database.
func UniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// InfluxVersion asks the server for its version (the X-Influxdb-Version header
// of /ping), so a test reports what it really ran against.
func InfluxVersion(t testing.TB, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/ping")
	if err != nil {
		t.Fatalf("ping influxdb: %v", err)
	}
	defer resp.Body.Close()
	return resp.Header.Get("X-Influxdb-Version")
}

// CreateDatabase creates an InfluxDB 1.x database (the v2 API does not create
// them) and returns its v2 bucket name "db/autogen".
func CreateDatabase(t testing.TB, base, db string) string {
	t.Helper()
	resp, err := http.PostForm(base+"/query", url.Values{"q": {fmt.Sprintf("CREATE DATABASE %q", db)}})
	if err != nil {
		t.Fatalf("create database %s: %v", db, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create database %s: HTTP %d", db, resp.StatusCode)
	}
	t.Cleanup(func() { // runs after the services writing to it stopped
		resp, err := http.PostForm(base+"/query", url.Values{"q": {fmt.Sprintf("DROP DATABASE %q", db)}})
		if err != nil {
			t.Logf("drop database %s: %v", db, err)
			return
		}
		resp.Body.Close()
	})
	return db + "/autogen"
}

// FluxInt runs a Flux query on the InfluxDB 1.8 at base; see Influx.FluxInt.
func FluxInt(ctx context.Context, base, flux string) (v int64, found bool, err error) {
	return Influx{URL: base}.FluxInt(ctx, flux)
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Eventually polls cond every 200 ms until it returns true or timeout passes,
// then fails the test with the last error or state cond reported.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var state string
	for {
		var ok bool
		ok, state = cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s; last: %s", what, timeout, strings.TrimSpace(state))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// FluxRows runs a Flux query on the InfluxDB 1.8 at base; see
// Influx.FluxRows.
func FluxRows(ctx context.Context, base, flux string) ([]map[string]any, error) {
	return Influx{URL: base}.FluxRows(ctx, flux)
}

// CounterSum returns the sum of the counter name's series in reg (0 when
// it has none): benchmarks watch a service run in-process this way.
func CounterSum(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}

// Serve runs a service in-process, as a benchmark does to time it. stop
// cancels its context, waits for it to return and reports its error to tb;
// exited closes when it returned, whatever the reason.
func Serve(tb testing.TB, run func(context.Context) error) (exited <-chan struct{}, stop func()) {
	ctx, cancel := context.WithCancel(tb.Context())
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		err = run(ctx)
	}()
	return done, func() {
		cancel()
		<-done
		if err != nil {
			tb.Error(err)
		}
	}
}

// AwaitCount times a service run in-process by a benchmark: from the first
// time reg's counter started is above zero to the first time counter done
// sums to total. It returns ok false as soon as exited is closed. Gathering
// costs the service CPU the baseline does not spend, so after the start it
// sleeps a quarter of the time the rate so far says is left (2 to 100 ms):
// seldom while only throughput matters, often near the end.
func AwaitCount(reg *prometheus.Registry, started, done string, total float64, exited <-chan struct{}) (d time.Duration, ok bool) {
	var start time.Time
	for poll := time.Millisecond; ; {
		if start.IsZero() {
			if CounterSum(reg, started) > 0 {
				start = time.Now()
			}
		} else {
			n, elapsed := CounterSum(reg, done), time.Since(start)
			if n >= total {
				return elapsed, true
			}
			left := time.Duration(float64(elapsed) * (total - n) / max(n, 1))
			poll = min(max(left/4, 2*time.Millisecond), 100*time.Millisecond)
		}
		select {
		case <-exited:
			return 0, false
		case <-time.After(poll):
		}
	}
}

// DeleteTopicsAtCleanup deletes topics when tb ends. Benchmarks create
// fresh topics for every run; left behind, their partitions would make the
// broker slower run after run and skew the ratios measured late.
func DeleteTopicsAtCleanup(tb testing.TB, topics ...string) {
	brokers := KafkaBrokers(tb)
	tb.Cleanup(func() {
		client := &kafka.Client{Addr: kafka.TCP(brokers), Timeout: 30 * time.Second}
		resp, err := client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: topics})
		if err == nil {
			for _, e := range resp.Errors {
				err = errors.Join(err, e)
			}
		}
		if err != nil {
			tb.Logf("delete topics %v: %v", topics, err)
		}
	})
}
