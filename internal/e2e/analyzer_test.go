package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
)

// analyzer starts an analyzer in group g with the given rule file.
func (b *bed) analyzer(g, rulesFile, httpAddr string, extra ...string) *testbed.Proc {
	b.t.Helper()
	args := append([]string{"--kafka-brokers", b.brokers, "--topic", b.topic, "--group", b.topic + "-" + g,
		"--alert-topic", b.topic + "-alerts", "--rules", rulesFile, "--influx-url", b.influxURL, "--influx-bucket", b.bucket,
		"--http-addr", httpAddr, "--log-format", "console"}, extra...)
	return testbed.Start(b.t, "analyzer-"+g, b.bins["analyzer"], args...)
}

// alertEvents reads every event on the bed's alert topic (see
// alertEventsOn).
func (b *bed) alertEvents() []alert.Event { return b.alertEventsOn(b.topic + "-alerts") }

type groundTruth struct {
	Series  string `json:"series"`
	Kind    string `json:"kind"`
	StartNS int64  `json:"start_ns"`
	EndNS   int64  `json:"end_ns"`
}

// readJSONLines reads a file of one JSON object per line, such as the
// producer's ground truth.
func readJSONLines[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		out = append(out, v)
	}
	return out
}

// TestAnalyzerDetectsInjectedAnomalies: synthetic series with injected
// anomalies flow through Kafka to the analyzer, whose alerts on the alert
// topic are scored against the ground truth the producer recorded: recall
// of spikes and level shifts, false alerts per normal point, and one firing
// and one resolution per detected anomaly.
func TestAnalyzerDetectsInjectedAnomalies(t *testing.T) {
	const (
		series   = 100
		points   = 200_000 // 2,000 one-second steps per series
		interval = time.Second
		warmUp   = 40 // steps before an anomaly can be judged: forecaster start plus --warm-up
		// An alert belongs to an anomaly when it starts in its window or
		// within slack after it (a level shift's return is part of it).
		slack      = 5 * interval
		keepFiring = 90 * time.Second
	)
	b := newBed(t, "analyze")
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.yaml")
	// keep_firing_for bridges a level shift and its return (at most 60
	// steps apart), so one shift is one alert.
	writeFile(t, rulesFile, `rules:
  - name: synthetic_anomaly
    match: {measurement: synthetic}
    anomaly: {z: 8}
    keep_firing_for: `+keepFiring.String()+`
    severity: warning
`)
	truthFile := filepath.Join(dir, "truth.jsonl")
	p := b.produce(points, "--anomaly-rate", "0.0005", "--ground-truth", truthFile, "--seed", "11", "--interval", interval.String())
	if err := p.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v\n%s", err, p.Output())
	}
	a := b.analyzer("a", rulesFile, testbed.FreeAddr(t), "--warm-up", "30")
	b.waitCommitted(b.topic+"-a", 3*time.Minute)
	stopGracefully(t, a)

	labels := readJSONLines[groundTruth](t, truthFile)
	events := b.alertEvents()
	origin := b.firstPointTime()
	type verdict struct{ firing, resolved int }
	matched := make([]verdict, len(labels))
	falseAlerts := 0
	perFingerprint := map[string][]alert.Event{}
	for _, e := range events {
		perFingerprint[e.Fingerprint] = append(perFingerprint[e.Fingerprint], e)
	}
	for _, e := range events {
		if e.State != alert.Firing {
			continue
		}
		series := strings.TrimSuffix(e.Series, " value")
		hit := false
		for i, l := range labels {
			if l.Series == series && e.StartsAt.UnixNano() >= l.StartNS && e.StartsAt.UnixNano() <= l.EndNS+int64(slack) {
				matched[i].firing++
				hit = true
				break
			}
		}
		if !hit {
			falseAlerts++
			t.Logf("alert outside every anomaly: %s at %s (value %.2f expected %v)", e.Series, e.StartsAt.Format(time.RFC3339), e.Value, deref(e.Expected))
		}
	}
	for _, evs := range perFingerprint {
		for _, e := range evs {
			if e.State != alert.Resolved {
				continue
			}
			series := strings.TrimSuffix(e.Series, " value")
			for i, l := range labels {
				if l.Series == series && e.StartsAt.UnixNano() >= l.StartNS && e.StartsAt.UnixNano() <= l.EndNS+int64(slack) {
					matched[i].resolved++
					break
				}
			}
		}
	}
	var judged, found int
	for i, l := range labels {
		if l.Kind != "spike" && l.Kind != "level_shift" {
			continue
		}
		if l.StartNS-origin < warmUp*int64(interval) {
			continue
		}
		judged++
		m := matched[i]
		if m.firing > 0 {
			found++
		}
		// An alert resolves keep_firing_for after its anomaly, if the
		// series goes on that long.
		resolvable := l.EndNS+int64(2*keepFiring) < origin+int64(points/series)*int64(interval)
		if m.firing > 1 || resolvable && m.resolved != m.firing {
			t.Errorf("%s on %s at %s: fired %d times, resolved %d times; want once each", l.Kind, l.Series, time.Unix(0, l.StartNS).UTC().Format(time.RFC3339), m.firing, m.resolved)
		}
		if m.firing == 0 {
			t.Logf("missed %s on %s at %s", l.Kind, l.Series, time.Unix(0, l.StartNS).UTC().Format(time.RFC3339))
		}
	}
	anomalous := 0
	for _, l := range labels {
		anomalous += int((l.EndNS-l.StartNS)/int64(interval)) + 1
	}
	normal := points - anomalous
	recall := float64(found) / float64(judged)
	perTenK := float64(falseAlerts) / float64(normal) * 10_000
	t.Logf("%d anomalies injected; spikes and level shifts judged %d, detected %d: recall %.3f; %d false alerts in %d normal points (%.2f per 10,000); %d alert events",
		len(labels), judged, found, recall, falseAlerts, normal, perTenK, len(events))
	if judged < 20 {
		t.Fatalf("only %d spikes and level shifts injected: too few to judge recall", judged)
	}
	if recall < 0.9 {
		t.Errorf("recall %.3f, want ≥ 0.9", recall)
	}
	if perTenK > 1 {
		t.Errorf("%.2f false alerts per 10,000 normal points, want ≤ 1", perTenK)
	}
	// The forecasts and alerts reached InfluxDB too.
	if n, err := b.count("synthetic", "value_forecast"); err != nil || n < points/2 {
		t.Errorf("InfluxDB holds %d value_forecast points (err %v), want most of %d", n, err, points)
	}
	if n, err := b.count("metricpipe_alerts", "value"); err != nil || n != int64(len(events)) {
		t.Errorf("InfluxDB holds %d alert events (err %v), want the %d published", n, err, len(events))
	}
}

// firstPointTime is the event time of the first point on the bed's topic:
// where every synthetic series starts.
func (b *bed) firstPointTime() int64 {
	b.t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.brokers}, Topic: b.topic, Partition: 0})
	defer r.Close()
	m, err := r.FetchMessage(b.t.Context())
	if err != nil {
		b.t.Fatal(err)
	}
	var dec point.Decoder
	pts, err := dec.Decode(nil, m.Value, kafkaio.HeaderValue(&m, kafkaio.HeaderContentType))
	if err != nil || len(pts) == 0 {
		b.t.Fatalf("first message: %v", err)
	}
	return pts[0].Time
}

func deref(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *p)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAnalyzerRulesReload: SIGHUP rereads the rule file; an invalid
// version is reported with file:line and the running rules stay; a valid
// one takes effect on the next points. A rule file invalid at the start
// stops the analyzer with the same message.
func TestAnalyzerRulesReload(t *testing.T) {
	b := newBed(t, "reload")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "rules:\n  - name: x\n    threshold: {above: ninety}\n")
	start := testbed.Start(t, "analyzer-bad", b.bins["analyzer"], "--kafka-brokers", b.brokers, "--topic", b.topic,
		"--rules", bad, "--influx-url", b.influxURL, "--influx-bucket", b.bucket, "--http-addr", testbed.FreeAddr(t))
	if err := start.Wait(30 * time.Second); err == nil || !strings.Contains(start.Output(), "bad.yaml:3: rules[0] (x): threshold.above") {
		t.Fatalf("analyzer with an invalid rule file: %v\n%s", err, start.Output())
	}

	rulesFile := filepath.Join(dir, "rules.yaml")
	writeFile(t, rulesFile, "rules:\n  - name: never\n    threshold: {above: 1e12}\n")
	// --rules-poll is long so only SIGHUP can reload.
	a := b.analyzer("a", rulesFile, testbed.FreeAddr(t), "--rules-poll", "1h")
	p := b.produce(1000)
	if err := p.Wait(time.Minute); err != nil {
		t.Fatalf("producer: %v\n%s", err, p.Output())
	}
	b.waitCommitted(b.topic+"-a", time.Minute)

	writeFile(t, rulesFile, "rules:\n  - name: always\n    threshold: {above: -1e12}\n  - name: broken\n    for: soon\n")
	if err := a.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 30*time.Second, "the invalid rule file reported", func() (bool, string) {
		return strings.Contains(a.Output(), "rules.yaml:5: rules[1] (broken)"), "not yet"
	})
	writeFile(t, rulesFile, "rules:\n  - name: always\n    threshold: {above: -1e12}\n    severity: info\n")
	if err := a.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 30*time.Second, "the new rules loaded", func() (bool, string) {
		return strings.Contains(a.Output(), "rules reloaded"), "not yet"
	})
	p = b.produce(1000, "--seed", "2")
	if err := p.Wait(time.Minute); err != nil {
		t.Fatalf("producer: %v\n%s", err, p.Output())
	}
	b.waitCommitted(b.topic+"-a", time.Minute)
	stopGracefully(t, a)
	events := b.alertEvents()
	series := map[string]bool{}
	for _, e := range events {
		if e.Rule != "always" || e.State != alert.Firing || e.Severity != "info" {
			t.Fatalf("unexpected alert %+v", e)
		}
		series[e.Series] = true
	}
	// The synthetic producer's 100 series each fire once, on their first
	// point after the reload.
	if len(series) != 100 || len(events) != 100 {
		t.Errorf("%d alerts on %d series, want one on each of 100", len(events), len(series))
	}
}

// TestAnalyzerCommitsOnlyWhatItWrote: with InfluxDB down from the start the
// analyzer commits nothing; once InfluxDB is back it writes every forecast
// and commits to the end.
func TestAnalyzerCommitsOnlyWhatItWrote(t *testing.T) {
	const points, series = 5000, 100
	b := newBed(t, "hold")
	stopInflux, startInflux := b.ownInflux()
	stopInflux()
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, rulesFile, "rules: []\n")
	addr := testbed.FreeAddr(t)
	a := b.analyzer("a", rulesFile, addr)
	p := b.produce(points)
	if err := p.Wait(time.Minute); err != nil {
		t.Fatalf("producer: %v\n%s", err, p.Output())
	}
	testbed.Eventually(t, 30*time.Second, "the analyzer retrying its writes", func() (bool, string) {
		return strings.Contains(a.Output(), "influxdb writes failing; holding the stream") && ready(addr) == 503, "not yet"
	})
	committed, err := b.admin.CommittedOffsets(t.Context(), b.topic+"-a", b.topic)
	if err != nil {
		t.Fatal(err)
	}
	for part, off := range committed {
		if off > 0 {
			t.Fatalf("partition %d committed to %d while InfluxDB was down", part, off)
		}
	}
	startInflux()
	b.waitCommitted(b.topic+"-a", 2*time.Minute)
	// Every point but each series' first two (the forecaster's start) has
	// its forecast.
	b.waitCount("synthetic", "value_forecast", points-2*series, time.Minute)
	stopGracefully(t, a)
}
