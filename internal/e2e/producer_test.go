package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
