package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/internal/testbed"
)

// TestServicesOnEachInfluxDB: the consumer and the analyzer write raw
// points, moving averages, forecasts and alert events to InfluxDB 1.8 and
// to 2.x, where a token that may write to the one bucket is all they need.
// On 2.x, a token that may not write there first holds both services
// (/readyz 503 saying so, nothing committed or dead-lettered); restarted
// with the right token, they write everything.
func TestServicesOnEachInfluxDB(t *testing.T) {
	const points, series = 3000, 50
	for _, db := range testbed.Influxes(t) {
		t.Run(db.Name, func(t *testing.T) {
			t.Logf("InfluxDB %s", db.Version(t))
			b := newBed(t, "influx"+strings.ReplaceAll(db.Name, ".", ""))
			b.db = testbed.UniqueName("e2e_")
			bucket := db.CreateBucket(t, b.db)
			rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
			writeFile(t, rulesFile, "rules:\n  - name: high\n    match: {measurement: synthetic, field: value}\n    threshold: {above: -1e12}\n")
			start := func(token string) (c, a *bedProc) {
				flags := db.ServiceFlags(bucket, token)
				c = &bedProc{addr: testbed.FreeAddr(t)}
				c.Proc = b.serviceOn("consumer", flags, c.addr)
				a = &bedProc{addr: testbed.FreeAddr(t)}
				a.Proc = b.serviceOn("analyzer", append(flags, "--rules", rulesFile), a.addr)
				return c, a
			}
			if err := b.produce(points, "--series", fmt.Sprint(series)).Wait(time.Minute); err != nil {
				t.Fatalf("producer: %v", err)
			}
			if db.V2 {
				other := db.CreateBucket(t, testbed.UniqueName("other_"))
				c, a := start(db.WriteToken(t, other))
				for _, p := range []*bedProc{c, a} {
					testbed.Eventually(t, 30*time.Second, p.Name+" /readyz naming the bucket it may not write to", func() (bool, string) {
						code, body := readyz(p.addr)
						return code == http.StatusServiceUnavailable && strings.Contains(body, bucket) && strings.Contains(body, "write access"), body
					})
				}
				consistently(t, 3*time.Second, "nothing dead-lettered or committed without permission", func() string {
					if n := b.topicMessages(b.topic + "-dlq"); n != 0 {
						return fmt.Sprintf("%d messages dead-lettered", n)
					}
					for _, g := range []string{"-consumer", "-analyzer"} {
						committed, _ := b.admin.CommittedOffsets(t.Context(), b.topic+g, b.topic)
						for part, off := range committed {
							if off > 0 {
								return fmt.Sprintf("group %s committed partition %d to %d", b.topic+g, part, off)
							}
						}
					}
					return ""
				})
				stopGracefully(t, c.Proc)
				stopGracefully(t, a.Proc)
			}
			c, a := start(db.WriteToken(t, bucket))
			b.waitCommitted(b.topic+"-consumer", 2*time.Minute)
			b.waitCommitted(b.topic+"-analyzer", 2*time.Minute)
			count := func(measurement, field string) int64 {
				n, _, err := db.FluxInt(t.Context(), fmt.Sprintf(`from(bucket: %q)
  |> range(start: 1970-01-01T00:00:00Z, stop: 2100-01-01T00:00:00Z)
  |> filter(fn: (r) => r._measurement == %q and r._field == %q)
  |> group()
  |> count()`, bucket, measurement, field))
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			want := map[string]int64{"value": points, "value_sma": points - 9*series, "value_ema": points, "value_forecast": points - 2*series}
			got := map[string]int64{}
			for f := range want {
				got[f] = count("synthetic", f)
			}
			// One firing event per series: the rule holds from its first point.
			if events := count("metricpipe_alerts", "summary"); events != series {
				t.Errorf("%d alert events in InfluxDB, want %d", events, series)
			}
			for f, w := range want {
				if got[f] != w {
					t.Errorf("%s: %d values in InfluxDB, want %d", f, got[f], w)
				}
			}
			if n := b.topicMessages(b.topic + "-dlq"); n != 0 {
				t.Errorf("%d messages dead-lettered", n)
			}
			t.Logf("InfluxDB %s: %v and %d alert events written with a write-only token", db.Name, got, series)
			stopGracefully(t, c.Proc)
			stopGracefully(t, a.Proc)
		})
	}
}

// bedProc is a service process with its HTTP address.
type bedProc struct {
	*testbed.Proc
	addr string
}

// serviceOn starts the consumer or the analyzer of group "-name" with the
// given InfluxDB flags.
func (b *bed) serviceOn(name string, influxFlags []string, httpAddr string) *testbed.Proc {
	b.t.Helper()
	args := []string{"--kafka-brokers", b.brokers, "--topic", b.topic, "--group", b.topic + "-" + name,
		"--dlq-topic", b.topic + "-dlq", "--influx-flush-interval", "200ms", "--http-addr", httpAddr, "--log-format", "console"}
	if name == "consumer" {
		args = append(args, "--idle-flush", "2s")
	} else {
		args = append(args, "--alert-topic", b.topic+"-alerts")
	}
	return testbed.Start(b.t, name, b.bins[name], append(args, influxFlags...)...)
}
