package e2e

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/action"
)

// TestAnalyzerRunsRecoveryActions: the live analyzer runs a rule's actions
// for the alerts it published: an allow-listed program with templated
// arguments and a signed webhook, each within its rate limit, and a dry-run
// webhook that calls nothing; every outcome is audited on the actions
// topic.
func TestAnalyzerRunsRecoveryActions(t *testing.T) {
	b := newBed(t, "actions")
	dir, calls := t.TempDir(), filepath.Join(t.TempDir(), "calls")
	if err := os.WriteFile(filepath.Join(dir, "record"), []byte("#!/bin/sh\necho \"$1 $METRICPIPE_ALERT_RULE\" >> "+calls+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const secret = "e2e-secret"
	t.Setenv("E2E_HOOK_SECRET", secret) // the analyzer inherits the environment
	var hooks, unsigned atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !hmac.Equal([]byte(r.Header.Get(action.SignatureHeader)), []byte(action.Sign([]byte(secret), body))) {
			unsigned.Add(1)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		hooks.Add(1)
	}))
	defer srv.Close()
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, rulesFile, `rules:
  - name: always
    threshold: {above: -1e12}
    actions:
      - exec: {command: record, args: ["{{ .Series }}"]}
        rate_limit: 10/h
      - webhook: {url: "`+srv.URL+`", secret_env: E2E_HOOK_SECRET}
        rate_limit: 5/h
      - webhook: {url: "`+srv.URL+`/dry"}
        dry_run: true
`)
	a := b.analyzer("a", rulesFile, testbed.FreeAddr(t), "--actions-dir", dir)
	p := b.produce(1000)
	if err := p.Wait(time.Minute); err != nil {
		t.Fatalf("producer: %v\n%s", err, p.Output())
	}
	b.waitCommitted(b.topic+"-a", time.Minute)

	// The synthetic producer's 100 series each fire once: 3 actions each.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.brokers}, Topic: b.topic + "-alerts-actions", GroupID: b.topic + "-audit",
		StartOffset: kafka.FirstOffset, MaxWait: 500 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	counts := map[string]int{}
	for n := 0; n < 300; n++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("after %d audit records %v: %v", n, counts, err)
		}
		var rec action.Record
		if err := json.Unmarshal(m.Value, &rec); err != nil || rec.Rule != "always" || string(m.Key) != rec.Fingerprint {
			t.Fatalf("audit record %s (key %s): %v", m.Value, m.Key, err)
		}
		counts[rec.Kind+" "+rec.Target+" "+string(rec.Outcome)]++
	}
	stopGracefully(t, a)
	host := strings.TrimPrefix(srv.URL, "http://")
	want := map[string]int{
		"exec record ok": 10, "exec record skipped_rate": 90,
		"webhook " + host + " ok": 5, "webhook " + host + " skipped_rate": 95, "webhook " + host + " dry_run": 100,
	}
	if len(counts) != len(want) {
		t.Errorf("audit outcomes %v, want %v", counts, want)
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: %d audit records, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
	if hooks.Load() != 5 || unsigned.Load() != 0 {
		t.Errorf("webhook got %d signed and %d unsigned requests, want 5 and 0 (the dry run calls nothing)", hooks.Load(), unsigned.Load())
	}
	data, err := os.ReadFile(calls)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if err != nil || len(lines) != 10 || !strings.HasSuffix(lines[0], " always") || !strings.Contains(lines[0], " ") {
		t.Errorf("the program recorded %q (%v), want 10 series", data, err)
	}
}
