package e2e

import (
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
