// Package e2e runs the three services as processes against the real test bed
// (Apache Kafka and InfluxDB started by scripts/testbed.sh).
package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
)

// TestWalkingSkeleton: the producer sends 10,000 synthetic points; the
// consumer writes exactly 10,000 points to InfluxDB; the analyzer's group
// commits to the end of every partition; both stop cleanly on SIGTERM.
func TestWalkingSkeleton(t *testing.T) {
	brokers := testbed.KafkaBrokers(t)
	influxURL := testbed.InfluxURL(t)
	t.Logf("Apache Kafka %s at %s; InfluxDB %s at %s",
		testbed.KafkaVersion(t), brokers, testbed.InfluxVersion(t, influxURL), influxURL)

	const points = 10000
	topic := testbed.UniqueName("e2e-skeleton-")
	db := testbed.UniqueName("e2e_")
	bucket := testbed.CreateDatabase(t, influxURL, db)
	bins := testbed.BuildServices(t, t.TempDir())
	common := []string{"--kafka-brokers", brokers, "--topic", topic, "--partitions", "8", "--log-format", "console"}

	consumer := testbed.Start(t, "consumer", bins["consumer"], append(common,
		"--group", topic+"-consumer", "--dlq-topic", topic+"-dlq",
		"--influx-url", influxURL, "--influx-bucket", bucket, "--influx-flush-interval", "200ms",
		"--http-addr", testbed.FreeAddr(t))...)
	analyzer := testbed.Start(t, "analyzer", bins["analyzer"], append(common,
		"--group", topic+"-analyzer", "--alert-topic", topic+"-alerts", "--flush-interval", "200ms",
		"--http-addr", testbed.FreeAddr(t))...)
	producer := testbed.Start(t, "producer", bins["producer"], append([]string{"synthetic"}, append(common,
		"--count", fmt.Sprint(points), "--rate", "0", "--series", "50", "--http-addr", testbed.FreeAddr(t))...)...)

	if err := producer.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v\n%s", err, producer.Output())
	}

	ctx := t.Context()
	count := fmt.Sprintf(`from(bucket: %q)
  |> range(start: 1970-01-01T00:00:00Z, stop: 2100-01-01T00:00:00Z)
  |> filter(fn: (r) => r._measurement == "synthetic" and r._field == "value")
  |> group()
  |> count()`, bucket)
	var got int64
	testbed.Eventually(t, 90*time.Second, "all points in InfluxDB", func() (bool, string) {
		n, _, err := testbed.FluxInt(ctx, influxURL, count)
		if err != nil {
			return false, err.Error()
		}
		got = n
		return n >= points, fmt.Sprintf("%d points", n)
	})
	if got != points {
		t.Fatalf("InfluxDB holds %d points, want exactly %d", got, points)
	}
	t.Logf("Flux count() = %d, exactly the %d points produced", got, points)

	admin, err := kafkaio.NewAdmin(kafkaio.Config{Brokers: []string{brokers}})
	if err != nil {
		t.Fatal(err)
	}
	ends, err := admin.PartitionEnds(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, end := range ends {
		total += end
	}
	if len(ends) != 8 || total != points {
		t.Fatalf("topic has %d partitions holding %d messages, want 8 and %d", len(ends), total, points)
	}
	for _, group := range []string{topic + "-analyzer", topic + "-consumer"} {
		testbed.Eventually(t, 60*time.Second, group+" committed to the end of every partition", func() (bool, string) {
			committed, err := admin.CommittedOffsets(ctx, group, topic)
			if err != nil {
				return false, err.Error()
			}
			for p, end := range ends {
				if committed[p] != end {
					return false, fmt.Sprintf("partition %d committed %d of %d", p, committed[p], end)
				}
			}
			return true, ""
		})
	}
	t.Logf("both groups committed the end offset of all %d partitions", len(ends))

	for _, p := range []*testbed.Proc{consumer, analyzer} {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*testbed.Proc{consumer, analyzer} {
		if err := p.Wait(45 * time.Second); err != nil {
			t.Fatalf("%s after SIGTERM: %v (want exit status 0)", p.Name, err)
		}
	}
	if out := analyzer.Output(); !strings.Contains(out, fmt.Sprintf("points=%d", points)) {
		t.Fatalf("analyzer summary does not report points=%d:\n%s", points, out)
	}
}
