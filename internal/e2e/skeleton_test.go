// Package e2e runs the three services as processes against the real test bed
// (Apache Kafka and InfluxDB started by scripts/testbed.sh).
package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/internal/testbed"
)

// TestWalkingSkeleton: the producer sends 10,000 synthetic points; the
// consumer writes exactly 10,000 points to InfluxDB; the analyzer's group
// commits to the end of every partition; both stop cleanly on SIGTERM.
func TestWalkingSkeleton(t *testing.T) {
	b := newBed(t, "skeleton")
	t.Logf("Apache Kafka %s at %s; InfluxDB %s at %s",
		testbed.KafkaVersion(t), b.brokers, testbed.InfluxVersion(t, b.influxURL), b.influxURL)

	const points = 10000
	consumer := b.consumer("consumer", testbed.FreeAddr(t))
	analyzer := testbed.Start(t, "analyzer", b.bins["analyzer"], "--kafka-brokers", b.brokers, "--topic", b.topic,
		"--group", b.topic+"-analyzer", "--alert-topic", b.topic+"-alerts", "--flush-interval", "200ms",
		"--influx-url", b.influxURL, "--influx-bucket", b.bucket, "--http-addr", testbed.FreeAddr(t), "--log-format", "console")
	if err := b.produce(points).Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	b.waitCount("synthetic", "value", points, 90*time.Second)
	t.Logf("Flux count() = %d, exactly the %d points produced", points, points)

	ends, err := b.admin.PartitionEnds(t.Context(), b.topic)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, end := range ends {
		sum += end
	}
	if len(ends) != 8 || sum != points {
		t.Fatalf("topic has %d partitions holding %d messages, want 8 and %d", len(ends), sum, points)
	}
	b.waitCommitted(b.topic+"-analyzer", time.Minute)
	b.waitCommitted(b.topic+"-consumer", time.Minute)
	t.Logf("both groups committed the end offset of all %d partitions", len(ends))

	stopGracefully(t, consumer)
	stopGracefully(t, analyzer)
	if out := analyzer.Output(); !strings.Contains(out, fmt.Sprintf("points=%d", points)) {
		t.Fatalf("analyzer summary does not report points=%d:\n%s", points, out)
	}
}
