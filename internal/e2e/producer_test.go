package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/metricpipe/metricpipe/internal/testbed"
)

// TestHostSource: `producer host` samples this machine; the consumer stores
// one mem and one system point per sample.
func TestHostSource(t *testing.T) {
	b := newBed(t, "host")
	host := testbed.Start(t, "producer-host", b.bins["producer"], "host", "--kafka-brokers", b.brokers, "--topic", b.topic,
		"--samples", "3", "--interval", "200ms", "--hostname", "e2e-host", "--http-addr", testbed.FreeAddr(t), "--log-format", "console")
	if err := host.Wait(time.Minute); err != nil {
		t.Fatalf("producer host: %v\n%s", err, host.Output())
	}
	c := b.consumer("c", testbed.FreeAddr(t))
	b.waitCount("mem", "used_percent", 3, time.Minute)
	b.waitCount("system", "load1", 3, time.Minute)
	stopGracefully(t, c)
}

// TestSyntheticGroundTruth: the synthetic source injects anomalies and
// writes their labels; every sent point reaches InfluxDB.
func TestSyntheticGroundTruth(t *testing.T) {
	b := newBed(t, "truth")
	truth := filepath.Join(t.TempDir(), "truth.jsonl")
	p := b.produce(5000, "--anomaly-rate", "0.005", "--ground-truth", truth, "--seed", "3")
	if err := p.Wait(time.Minute); err != nil {
		t.Fatalf("producer: %v\n%s", err, p.Output())
	}
	data, err := os.ReadFile(truth)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	kinds := map[string]bool{"spike": true, "level_shift": true, "drift": true, "flat_line": true, "dropout": true}
	for _, line := range lines {
		var l struct {
			Series, Kind string
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil || !kinds[l.Kind] || !strings.HasPrefix(l.Series, "synthetic,") {
			t.Fatalf("label %q: %v", line, err)
		}
	}
	t.Logf("%d anomalies labelled in %s", len(lines), filepath.Base(truth))
	c := b.consumer("c", testbed.FreeAddr(t))
	b.waitCount("synthetic", "value", 5000, time.Minute)
	stopGracefully(t, c)
}

// TestHTTPWriteEndpoint: the InfluxDB Go client, pointed at the producer's
// write endpoint instead of InfluxDB, writes points that the consumer then
// stores in InfluxDB; a bad line gets a 400 naming it.
func TestHTTPWriteEndpoint(t *testing.T) {
	b := newBed(t, "http")
	listen := testbed.FreeAddr(t)
	p := testbed.Start(t, "producer-http", b.bins["producer"], "http", "--kafka-brokers", b.brokers, "--topic", b.topic,
		"--listen", listen, "--token", "s3cret", "--http-addr", testbed.FreeAddr(t), "--log-format", "console")
	testbed.Eventually(t, 30*time.Second, "write endpoint up", func() (bool, string) {
		resp, err := http.Get("http://" + listen + "/health")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	client := influxdb2.NewClient("http://"+listen, "s3cret")
	defer client.Close()
	w := client.WriteAPIBlocking("any-org", "any-bucket")
	base := time.Now().Add(-time.Minute)
	var lines []string
	for i := range 500 {
		lines = append(lines, fmt.Sprintf("http_cpu,host=h%d usage=%d %d", i%5, i, base.Add(time.Duration(i)*time.Millisecond).UnixNano()))
	}
	if err := w.WriteRecord(t.Context(), lines...); err != nil {
		t.Fatalf("write through the endpoint: %v", err)
	}
	err := w.WriteRecord(t.Context(), "http_cpu,host=a usage=1", "http_cpu,host=a usage=")
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad batch: err = %v, want a 400 naming line 2", err)
	}
	c := b.consumer("c", testbed.FreeAddr(t))
	b.waitCount("http_cpu", "usage", 500, time.Minute)
	stopGracefully(t, c)
	stopGracefully(t, p)
}

// TestReplayNABFile replays a NAB-style CSV with one malformed row: the
// command ends non-zero naming file and line, and every good row reaches
// InfluxDB.
func TestReplayNABFile(t *testing.T) {
	b := newBed(t, "replay")
	file := filepath.Join(testbed.ModuleRoot(t), "producer", "testdata", "replay", "ec2_cpu_utilization_5f5533.csv")
	p := testbed.Start(t, "producer-replay", b.bins["producer"], "replay", "--kafka-brokers", b.brokers, "--topic", b.topic,
		"--measurement", "nab", "--http-addr", testbed.FreeAddr(t), "--log-format", "console", file)
	err := p.Wait(time.Minute)
	if err == nil || !strings.Contains(p.Output(), "ec2_cpu_utilization_5f5533.csv:12") {
		t.Fatalf("replay: %v (want a non-zero exit naming the bad line)\n%s", err, p.Output())
	}
	c := b.consumer("c", testbed.FreeAddr(t))
	b.waitCount("nab", "value", 19, time.Minute)
	stopGracefully(t, c)
}
