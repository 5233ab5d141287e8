package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/internal/testbed"
)

// TestCustomProducerExample runs examples/custom-producer against the real
// Kafka; the consumer then stores exactly the points it sent.
func TestCustomProducerExample(t *testing.T) {
	b := newBed(t, "example")
	bin := filepath.Join(t.TempDir(), "custom-producer")
	build := exec.Command("go", "build", "-o", bin, "./examples/custom-producer")
	build.Dir = testbed.ModuleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the example: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-n", "3000")
	cmd.Env = append(os.Environ(), "METRICPIPE_KAFKA_BROKERS="+b.brokers, "METRICPIPE_TOPIC="+b.topic)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "sent 3000 points") || !strings.Contains(string(out), "3000 acknowledged") {
		t.Fatalf("example: %v\n%s", err, out)
	}
	t.Logf("example: %s", strings.TrimSpace(string(out)))
	c := b.consumer("c", testbed.FreeAddr(t))
	b.waitCount("room_temperature", "celsius", 3000, time.Minute)
	stopGracefully(t, c)
}
