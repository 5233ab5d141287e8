package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
)

// bed is one test's slice of the test bed: its own topic, groups and
// database, and the service binaries.
type bed struct {
	t         *testing.T
	brokers   string
	influxURL string
	bins      map[string]string
	topic     string
	db        string
	bucket    string
	admin     *kafkaio.Admin
	// ownInfluxDir is the test bed state of the InfluxDB ownInflux started.
	ownInfluxDir string
}

func newBed(t *testing.T, prefix string) *bed {
	t.Helper()
	b := &bed{t: t, brokers: testbed.KafkaBrokers(t), influxURL: testbed.InfluxURL(t), topic: testbed.UniqueName("e2e-" + prefix + "-")}
	b.db = testbed.UniqueName("e2e_")
	b.bucket = testbed.CreateDatabase(t, b.influxURL, b.db)
	b.bins = testbed.BuildServices(t, t.TempDir())
	admin, err := kafkaio.NewAdmin(kafkaio.Config{Brokers: []string{b.brokers}})
	if err != nil {
		t.Fatal(err)
	}
	b.admin = admin
	if err := admin.EnsureTopics(t.Context(), kafkaio.TopicSpec{Name: b.topic, Partitions: 8, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	return b
}

// ownInflux starts a private InfluxDB for a test that stops and restarts it,
// so other tests sharing the test bed's instance are not disturbed. It
// returns functions to stop and (re)start it.
func (b *bed) ownInflux() (stop, start func()) {
	t := b.t
	t.Helper()
	script := testbed.Script(t)
	addr := testbed.FreeAddr(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	b.ownInfluxDir = filepath.Join(t.TempDir(), "testbed")
	env := append(os.Environ(), "METRICPIPE_TESTBED_DIR="+b.ownInfluxDir, "METRICPIPE_TESTBED_INFLUX_PORT="+port)
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(script, append([]string{"influx"}, args...)...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("testbed.sh influx %v: %v\n%s", args, err, out)
		}
	}
	stop = func() { run("stop") }
	start = func() { run("start") }
	run("start", "fresh")
	t.Cleanup(stop)
	b.influxURL = "http://" + addr
	b.bucket = testbed.CreateDatabase(t, b.influxURL, b.db)
	return stop, start
}

// consumer starts a consumer process in group g writing to the bed's bucket.
func (b *bed) consumer(g, httpAddr string, extra ...string) *testbed.Proc {
	b.t.Helper()
	args := append([]string{"--kafka-brokers", b.brokers, "--topic", b.topic, "--group", b.topic + "-" + g,
		"--dlq-topic", b.topic + "-dlq", "--influx-url", b.influxURL, "--influx-bucket", b.bucket,
		"--influx-flush-interval", "200ms", "--idle-flush", "2s", "--http-addr", httpAddr, "--log-format", "console"}, extra...)
	return testbed.Start(b.t, "consumer-"+g, b.bins["consumer"], args...)
}

// produce runs the synthetic producer for n points over 100 series.
func (b *bed) produce(n int, extra ...string) *testbed.Proc {
	b.t.Helper()
	args := append([]string{"synthetic", "--kafka-brokers", b.brokers, "--topic", b.topic, "--count", fmt.Sprint(n),
		"--series", "100", "--rate", "0", "--http-addr", testbed.FreeAddr(b.t), "--log-format", "console"}, extra...)
	return testbed.Start(b.t, "producer", b.bins["producer"], args...)
}

// count returns how many values of measurement's field InfluxDB holds.
func (b *bed) count(measurement, field string) (int64, error) {
	flux := fmt.Sprintf(`from(bucket: %q)
  |> range(start: 1970-01-01T00:00:00Z, stop: 2100-01-01T00:00:00Z)
  |> filter(fn: (r) => r._measurement == %q and r._field == %q)
  |> group()
  |> count()`, b.bucket, measurement, field)
	n, _, err := testbed.FluxInt(b.t.Context(), b.influxURL, flux)
	return n, err
}

// waitCount waits until InfluxDB holds at least want values, then checks
// it holds exactly want.
func (b *bed) waitCount(measurement, field string, want int64, timeout time.Duration) {
	b.t.Helper()
	var got int64
	testbed.Eventually(b.t, timeout, fmt.Sprintf("%d %s values in InfluxDB", want, field), func() (bool, string) {
		n, err := b.count(measurement, field)
		if err != nil {
			return false, err.Error()
		}
		got = n
		return n >= want, fmt.Sprintf("%d values", n)
	})
	if got != want {
		b.t.Fatalf("InfluxDB holds %d %s values, want exactly %d", got, field, want)
	}
}

// waitCommitted waits until group committed the end of every partition
// that holds messages (a group commits nothing on an empty one).
func (b *bed) waitCommitted(group string, timeout time.Duration) {
	b.t.Helper()
	b.waitCommittedOn(b.topic, group, timeout)
}

// waitCommittedOn is waitCommitted on another topic than the bed's.
func (b *bed) waitCommittedOn(topic, group string, timeout time.Duration) {
	b.t.Helper()
	ctx := b.t.Context()
	testbed.Eventually(b.t, timeout, group+" committed to the end of every partition of "+topic, func() (bool, string) {
		ends, err := b.admin.PartitionEnds(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		committed, err := b.admin.CommittedOffsets(ctx, group, topic)
		if err != nil {
			return false, err.Error()
		}
		for p, end := range ends {
			if end > 0 && committed[p] != end {
				return false, fmt.Sprintf("partition %d committed %d of %d", p, committed[p], end)
			}
		}
		return true, ""
	})
}

// ready reports the status of a service's /readyz.
func ready(addr string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
