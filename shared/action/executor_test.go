package action

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/rules"
)

// recorder is a Publisher that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	recs []Record
}

func (r *recorder) Publish(_ context.Context, recs []Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, recs...)
	return nil
}

func (r *recorder) snapshot() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs)
}

// wait polls until n records arrived (deadline-bound) and returns them.
func (r *recorder) wait(t *testing.T, n int) []Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := r.snapshot()
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d audit records, want %d: %+v", len(recs), n, recs)
		}
		time.Sleep(5 * time.Millisecond) // a deadline-bound poll
	}
}

// clock is a settable time for cooldowns and rate limits.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// start runs an executor with one worker (so that actions run in order)
// and a fake clock until the test ends.
func start(t *testing.T, queue int) (*Executor, *recorder, *clock) {
	t.Helper()
	pub := &recorder{}
	cfg := Config{Workers: 1, Queue: queue, Backoff: retry.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}, Tracked: 1000}
	x, err := New(cfg, zerolog.Nop(), prometheus.NewRegistry(), pub)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	x.now = clk.now
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); x.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return x, pub, clk
}

// ruleSet parses one rule named r with the given actions YAML.
func ruleSet(t *testing.T, dir, actions string) *rules.Set {
	t.Helper()
	src := "rules:\n  - name: r\n    threshold: {above: 1}\n    actions:\n" + actions
	set, err := rules.ParseWith("rules.yaml", []byte(src), rules.Options{ActionsDir: dir, ResolveExec: true})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func event(fp string, state alert.State, startSec int) alert.Event {
	return alert.Event{Fingerprint: fp, Rule: "r", State: state, Severity: "warning", Series: "cpu,host=a usage",
		Labels: map[string]string{"service": "api", "namespace": "prod"}, Value: 93,
		StartsAt: time.Unix(int64(startSec), 0).UTC()}
}

func outcomes(recs []Record) string {
	var b []string
	for _, r := range recs {
		s := string(r.Outcome)
		if r.Retrying {
			s += "(retrying)"
		}
		b = append(b, s)
	}
	return strings.Join(b, " ")
}

func TestWebhook(t *testing.T) {
	const secret = "s3cret"
	t.Setenv("HOOK_SECRET", secret)
	t.Setenv("HOOK_TOKEN", "Bearer t")
	f := func(name string, statuses []int, hang bool, options, want string, wantRequests int) {
		t.Run(name, func(t *testing.T) {
			var requests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(requests.Add(1))
				body, _ := io.ReadAll(r.Body)
				// The receiver's side: check the signature and the event.
				got := []byte(r.Header.Get(SignatureHeader))
				if !hmac.Equal(got, []byte(Sign([]byte(secret), body))) {
					http.Error(w, "bad signature", http.StatusUnauthorized)
					return
				}
				ev, err := alert.Decode(body)
				if err != nil || ev.Fingerprint != "fp1" || r.Header.Get("X-Team") != "ops" || r.Header.Get("Authorization") != "Bearer t" {
					http.Error(w, fmt.Sprintf("bad request: %v %+v %v", err, ev, r.Header), http.StatusBadRequest)
					return
				}
				if hang {
					<-r.Context().Done()
					return
				}
				status := statuses[min(n, len(statuses))-1]
				if status/100 == 3 {
					w.Header().Set("Location", "/moved")
				}
				w.WriteHeader(status)
			}))
			defer srv.Close()
			x, pub, _ := start(t, 10)
			set := ruleSet(t, "", "      - webhook: {url: "+srv.URL+", secret_env: HOOK_SECRET, headers: {X-Team: ops}, headers_env: {Authorization: HOOK_TOKEN}"+options+"}\n")
			x.Submit(set, []alert.Event{event("fp1", alert.Firing, 1)})
			n := len(strings.Fields(want))
			recs := pub.wait(t, n)
			if got := outcomes(recs); got != want || int(requests.Load()) != wantRequests {
				t.Errorf("outcomes %q after %d requests, want %q after %d", got, requests.Load(), want, wantRequests)
			}
			last := recs[len(recs)-1]
			if last.Kind != "webhook" || last.Target != strings.TrimPrefix(srv.URL, "http://") || last.Attempt != n || last.Rule != "r" {
				t.Errorf("last record %+v", last)
			}
			if got := counterValue(x.metrics.total.WithLabelValues("r", "webhook", string(last.Outcome))); got != 1 {
				t.Errorf("metricpipe_actions_total{outcome=%s} = %g, want 1 (final outcomes only)", last.Outcome, got)
			}
		})
	}
	f("ok", []int{200}, false, "", "ok", 1)
	f("500 then ok", []int{500, 502, 200}, false, "", "failed(retrying) failed(retrying) ok", 3)
	f("400 is not retried", []int{400}, false, "", "failed", 1)
	f("retries run out", []int{500}, false, ", retries: 1", "failed(retrying) failed", 2)
	f("timeout", nil, true, ", retries: 0, timeout: 50ms", "failed", 1)
	f("redirects are not followed", []int{307}, false, "", "failed", 1)

	t.Run("unset secret", func(t *testing.T) {
		x, pub, _ := start(t, 10)
		set := ruleSet(t, "", "      - webhook: {url: http://127.0.0.1:1, secret_env: METRICPIPE_TEST_UNSET_SECRET}\n")
		x.Submit(set, []alert.Event{event("fp1", alert.Firing, 1)})
		if r := pub.wait(t, 1)[0]; r.Outcome != Failed || r.Attempt != 0 || !strings.Contains(r.Error, "METRICPIPE_TEST_UNSET_SECRET is not set") {
			t.Errorf("record %+v", r)
		}
	})
}

// hook returns a server counting its requests.
func hook(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestCooldownAndRateLimit(t *testing.T) {
	srv, requests := hook(t)
	x, pub, clk := start(t, 10)
	set := ruleSet(t, "", "      - webhook: {url: "+srv.URL+"}\n        cooldown: 10m\n        rate_limit: 3/h\n")
	type step struct {
		advance time.Duration
		ev      alert.Event
		want    Outcome
	}
	steps := []step{
		{0, event("a", alert.Firing, 1), OK},
		{time.Minute, event("a", alert.Firing, 2), SkippedCooldown}, // fired again within 10m
		{0, event("b", alert.Firing, 1), OK},                        // another alert: its own cooldown
		{0, event("a", alert.Resolved, 1), ""},                      // on: firing only: nothing
		{10 * time.Minute, event("a", alert.Firing, 3), OK},         // cooled down; the third token
		{0, event("c", alert.Firing, 1), SkippedRate},               // 3/h spent
		{20 * time.Minute, event("d", alert.Firing, 1), OK},         // one token back after 20m
		{0, event("a", alert.Firing, 3), ""},                        // the same event again: run once
		{20 * time.Minute, event("e", alert.Firing, 1), OK},         // (one worker: after the above)
	}
	n := 0
	for i, s := range steps {
		clk.add(s.advance)
		x.Submit(set, []alert.Event{s.ev})
		if s.want == "" {
			continue
		}
		n++
		if r := pub.wait(t, n)[n-1]; r.Outcome != s.want || r.Fingerprint != s.ev.Fingerprint {
			t.Errorf("step %d: %s %s: outcome %s, want %s", i, s.ev.Fingerprint, s.ev.State, r.Outcome, s.want)
		}
	}
	if got := requests.Load(); got != 5 {
		t.Errorf("webhook saw %d requests, want 5", got)
	}
	if recs := pub.snapshot(); len(recs) != n {
		t.Errorf("got %d records, want %d: %s", len(recs), n, outcomes(recs))
	}
}

// script writes an executable shell script into dir.
func script(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestExec(t *testing.T) {
	dir, out := t.TempDir(), filepath.Join(t.TempDir(), "calls")
	script(t, dir, "restart-deployment", `printf '%s|' "$@" "$METRICPIPE_ALERT_FINGERPRINT" >> `+out+"\necho restarted\n")
	script(t, dir, "fail", "echo boom >&2\nexit 3\n")
	script(t, dir, "hang", "sleep 30\n")
	f := func(actions string, ev alert.Event, want Outcome, check func(r Record)) {
		t.Helper()
		x, pub, _ := start(t, 10)
		x.Submit(ruleSet(t, dir, actions), []alert.Event{ev})
		r := pub.wait(t, 1)[0]
		if r.Outcome != want || r.Kind != "exec" {
			t.Errorf("%s: outcome %s (%s), want %s", actions, r.Outcome, r.Error, want)
		}
		check(r)
	}
	f("      - exec: {command: restart-deployment, args: [\"deployment/{{ .Labels.service }}\", \"--namespace\", \"{{ .Labels.namespace }}\"]}\n",
		event("fp1", alert.Firing, 1), OK, func(r Record) {
			b, err := os.ReadFile(out)
			if string(b) != "deployment/api|--namespace|prod|fp1|" || err != nil {
				t.Errorf("the script recorded %q (%v)", b, err)
			}
			if *r.ExitCode != 0 || r.Output != "restarted\n" || r.Target != "restart-deployment" || !slices.Equal(r.Args, []string{"deployment/api", "--namespace", "prod"}) {
				t.Errorf("record %+v", r)
			}
		})
	f("      - exec: {command: fail}\n", event("fp1", alert.Firing, 1), Failed, func(r Record) {
		if *r.ExitCode != 3 || r.Output != "boom\n" {
			t.Errorf("record %+v", r)
		}
	})
	f("      - exec: {command: hang, timeout: 100ms}\n", event("fp1", alert.Firing, 1), Failed, func(r Record) {
		if !strings.Contains(r.Error, "killed after the timeout 100ms") || *r.ExitCode != -1 || r.Duration > 5 {
			t.Errorf("record %+v", r)
		}
	})
	// A label the event lacks: the program does not run on "<no value>".
	os.Remove(out)
	ev := event("fp1", alert.Firing, 1)
	delete(ev.Labels, "namespace")
	f("      - exec: {command: restart-deployment, args: [\"{{ .Labels.namespace }}\"]}\n", ev, Failed, func(r Record) {
		if _, err := os.Stat(out); err == nil || !strings.Contains(r.Error, `map has no entry for key "namespace"`) {
			t.Errorf("ran without its label: record %+v", r)
		}
	})
	// A program outside the allow-list directory is refused when the
	// rules load (see also shared/rules' TestParseActionErrors).
	src := "rules:\n  - name: r\n    threshold: {above: 1}\n    actions:\n      - exec: {command: sh}\n"
	if _, err := rules.ParseWith("rules.yaml", []byte(src), rules.Options{ActionsDir: dir, ResolveExec: true}); err == nil ||
		!strings.Contains(err.Error(), `rules.yaml:5: rules[0] (r): actions[0].exec.command: "sh" is not in the actions directory`) {
		t.Errorf("sh outside the directory: %v", err)
	}
}

func TestDryRun(t *testing.T) {
	srv, requests := hook(t)
	dir, out := t.TempDir(), filepath.Join(t.TempDir(), "ran")
	script(t, dir, "restart-deployment", "touch "+out+"\n")
	x, pub, _ := start(t, 10)
	set := ruleSet(t, dir, "      - webhook: {url: "+srv.URL+"}\n        dry_run: true\n"+
		"      - exec: {command: restart-deployment, args: [\"{{ .Labels.service }}\"]}\n        dry_run: true\n")
	x.Submit(set, []alert.Event{event("fp1", alert.Firing, 1)})
	recs := pub.wait(t, 2)
	if got := outcomes(recs); got != "dry_run dry_run" {
		t.Errorf("outcomes %q", got)
	}
	if !slices.Equal(recs[1].Args, []string{"api"}) {
		t.Errorf("dry run of exec: args %q, want [api]", recs[1].Args)
	}
	if _, err := os.Stat(out); requests.Load() != 0 || err == nil {
		t.Errorf("dry run ran something: %d requests, script ran: %v", requests.Load(), err == nil)
	}
}

// A webhook that hangs holds one worker; Submit still returns at once and
// drops, audits and counts what the queue cannot hold.
func TestBlockedWebhookDoesNotBlock(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	x, pub, _ := start(t, 2)
	set := ruleSet(t, "", "      - webhook: {url: "+srv.URL+", timeout: 1m}\n")
	events := make([]alert.Event, 10)
	for i := range events {
		events[i] = event(fmt.Sprint("fp", i), alert.Firing, 1)
	}
	start := time.Now()
	x.Submit(set, events)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Submit blocked for %s", d)
	}
	// One in the worker (or still queued), two queued: seven or eight dropped.
	recs := pub.wait(t, 7)
	dropped := 0
	for _, r := range recs {
		if r.Outcome == Dropped && strings.Contains(r.Error, "queue full") {
			dropped++
		}
	}
	if dropped < 7 || dropped > 8 {
		t.Errorf("%d dropped, want 7 or 8: %s", dropped, outcomes(recs))
	}
	if got := counterValue(x.metrics.total.WithLabelValues("r", "webhook", "dropped")); int(got) != dropped {
		t.Errorf("metricpipe_actions_total{outcome=dropped} = %g, want %d", got, dropped)
	}
}

func TestRecordJSON(t *testing.T) {
	code := 0
	r := Record{Time: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), Rule: "r", Fingerprint: "fp", On: "firing",
		StartsAt: time.Date(2026, 12, 3, 11, 59, 0, 0, time.UTC), Kind: "exec", Target: "restart-deployment",
		Outcome: OK, Attempt: 1, ExitCode: &code, Duration: 0.25, Args: []string{"api"}}
	b, err := json.Marshal(r)
	want := `{"time":"2026-12-03T12:00:00Z","rule":"r","fingerprint":"fp","on":"firing","starts_at":"2026-12-03T11:59:00Z","kind":"exec","target":"restart-deployment","outcome":"ok","attempt":1,"exit_code":0,"duration_seconds":0.25,"args":["api"]}`
	if err != nil || string(b) != want {
		t.Errorf("JSON\n%s\nwant\n%s", b, want)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Workers: 0, Queue: 0, Backoff: retry.DefaultBackoff(), Tracked: 1}.Validate()
	for _, want := range []string{"--actions-workers 0", "--actions-queue 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
