package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/action"
	"github.com/metricpipe/metricpipe/shared/retry"
)

// failingWriter is an alert topic that refuses every publish.
type failingWriter struct{}

func (failingWriter) WriteMessages(context.Context, ...kafka.Message) error {
	return errors.New("broker down")
}

// actionsTotal sums metricpipe_actions_total for outcome.
func actionsTotal(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "metricpipe_actions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelIs(m, "outcome", outcome) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

// A rule's webhook that hangs never holds up the partition: the handler
// hands the published events to the executor and goes on; what its queue
// cannot take is dropped and counted. Events that were not published run
// no action.
func TestHandlerActionsDoNotBlock(t *testing.T) {
	var requests atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	reg := prometheus.NewRegistry()
	out := testOutput(t, &captured{}, reg)
	x, err := action.New(action.Config{Workers: 1, Queue: 1, Backoff: retry.DefaultBackoff(), Tracked: 100}, zerolog.Nop(), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	out.actions = x
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); x.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Every series fires at its first point.
	rulesYAML := "rules:\n  - name: all\n    threshold: {above: -1e300}\n    actions:\n      - webhook: {url: " + srv.URL + ", timeout: 1m}\n"
	var clock atomic.Int64
	msgs, _ := synthMessages()

	// Not published: no action.
	failing := testOutput(t, &captured{}, prometheus.NewRegistry())
	failing.alerts, failing.actions, failing.backoff = failingWriter{}, x, retry.Backoff{Initial: time.Millisecond, Max: time.Millisecond}
	hctx, hcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err = testHandler(t, failing, testAnalysis(), rulesYAML, &clock).Handle(hctx, msgs[:10])
	hcancel()
	if err == nil || !strings.Contains(err.Error(), "broker down") {
		t.Fatalf("Handle with the alert topic down: %v", err)
	}
	if n := actionsTotal(t, reg, "dropped"); n != 0 || x.Queued() != 0 || requests.Load() != 0 {
		t.Fatalf("unpublished events ran actions: %g dropped, %d queued, %d requests", n, x.Queued(), requests.Load())
	}

	h := testHandler(t, out, testAnalysis(), rulesYAML, &clock)
	start := time.Now()
	for i := 0; i < 40; i += 10 {
		if err := h.Handle(context.Background(), msgs[i:i+10]); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Handle took %s with a hanging webhook", d)
	}
	fired := float64(out.published.Load())
	if fired < 5 {
		t.Fatalf("%g alerts published, want every series' (≥ 5)", fired)
	}
	// One at the hanging webhook or queued, one queued; the rest dropped.
	if n := actionsTotal(t, reg, "dropped"); n < fired-2 || n > fired-1 {
		t.Errorf("%g actions dropped of %g, want all but one or two", n, fired)
	}
}

func TestAuditWriter(t *testing.T) {
	var c captured
	recs := []action.Record{{Rule: "r", Fingerprint: "fp1", Kind: "exec", Outcome: action.OK}, {Rule: "r", Fingerprint: "fp2", Kind: "webhook", Outcome: action.Dropped}}
	if err := (auditWriter{&c}).Publish(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	got := c.take()
	if len(got) != 2 || !strings.HasPrefix(got[0], `alert fp1 {"time":"0001-01-01T00:00:00Z","rule":"r","fingerprint":"fp1",`) ||
		!strings.Contains(got[1], `"outcome":"dropped"`) {
		t.Errorf("published %q", got)
	}
	if err := (auditWriter{failingWriter{}}).Publish(context.Background(), recs); err == nil || !strings.Contains(err.Error(), "publish 2 audit records: broker down") {
		t.Errorf("Publish to a failing topic: %v", err)
	}
	if got := actionsTopic("", "metrics-alerts"); got != "metrics-alerts-actions" {
		t.Errorf("default actions topic %q", got)
	}
}
