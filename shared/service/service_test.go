package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"
)

func TestEnvVars(t *testing.T) {
	f := func(flag, want string) {
		t.Helper()
		if got := EnvVars(flag); len(got) != 1 || got[0] != want {
			t.Fatalf("EnvVars(%q) = %v, want [%s]", flag, got, want)
		}
	}
	f("kafka-brokers", "METRICPIPE_KAFKA_BROKERS")
	f("http-addr", "METRICPIPE_HTTP_ADDR")
	f("kafka-tls-insecure-skip-verify", "METRICPIPE_KAFKA_TLS_INSECURE_SKIP_VERIFY")
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	err := Config{LogFormat: "xml", LogLevel: "loud", HTTPAddr: "nowhere"}.Validate()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, flag := range []string{"--log-format", "--log-level", "--http-addr"} {
		if !strings.Contains(err.Error(), flag) {
			t.Errorf("error does not name %s: %v", flag, err)
		}
	}
	if err := (Config{LogFormat: "json", LogLevel: "debug", HTTPAddr: ":9101"}).Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s := Secret("hunter2")
	var buf bytes.Buffer
	log := NewLogger(&buf, Config{LogFormat: "json", LogLevel: "info"}, "test")
	log.Info().Interface("cfg", struct{ Password Secret }{s}).Stringer("pw", s).Msg("config")
	b, _ := json.Marshal(s)
	for _, out := range []string{buf.String(), string(b), s.String()} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret leaked: %s", out)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Fatal("Reveal must return the secret")
	}
}

func TestLoadSecret(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := LoadSecret("kafka-sasl-password", "", file); err != nil || s.Reveal() != "s3cret" {
		t.Fatalf("from file: %q, %v", s.Reveal(), err)
	}
	if s, err := LoadSecret("kafka-sasl-password", "direct", ""); err != nil || s.Reveal() != "direct" {
		t.Fatalf("from value: %q, %v", s.Reveal(), err)
	}
	if _, err := LoadSecret("kafka-sasl-password", "direct", file); err == nil || !strings.Contains(err.Error(), "--kafka-sasl-password-file") {
		t.Fatalf("both set: err = %v", err)
	}
	if _, err := LoadSecret("influx-token", "", filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "--influx-token-file") {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestHandlerEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	kafkaDown := errors.New("dial tcp: connection refused")
	var kafkaErr error
	h := Handler(reg,
		Check{Name: "kafka", Probe: func(context.Context) error { return kafkaErr }},
		Check{Name: "influxdb", Probe: func(context.Context) error { return nil }},
	)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		body, _ := io.ReadAll(rec.Body)
		return rec.Code, string(body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with all checks passing = %d", code)
	}
	kafkaErr = kafkaDown
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "kafka: dial tcp") {
		t.Fatalf("/readyz with kafka down = %d %q", code, body)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "metricpipe_test_total 3") {
		t.Fatalf("/metrics = %d %q", code, body)
	}
}

func TestMainExitCodesAndVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	app := NewApp("svc", "test", &out, &errOut)
	app.Action = func(*cli.Context) error { return errors.New("--topic is empty") }
	if code := Main(app, []string{"svc"}); code != 1 || !strings.Contains(errOut.String(), "svc: --topic is empty") {
		t.Fatalf("failing action: code %d, stderr %q", code, errOut.String())
	}
	// A usage error is one line saying where to look, not the whole help.
	errOut.Reset()
	app.Commands = []*cli.Command{{Name: "sub", Action: func(*cli.Context) error { return nil }}}
	for _, args := range [][]string{{"svc", "--nosuch"}, {"svc", "sub", "--nosuch"}} {
		errOut.Reset()
		code := Main(app, args)
		if lines := strings.Count(errOut.String(), "\n"); code != 1 || lines != 1 || !strings.Contains(errOut.String(), "-nosuch") ||
			!strings.Contains(errOut.String(), "see "+strings.Join(args[:len(args)-1], " ")+" --help") || out.Len() > 0 {
			t.Fatalf("%v: code %d, %d lines: stderr %q, stdout %q", args, code, lines, errOut.String(), out.String())
		}
	}
	out.Reset()
	if code := Main(app, []string{"svc", "--version"}); code != 0 || !strings.Contains(out.String(), Version()) {
		t.Fatalf("--version: code %d, stdout %q", code, out.String())
	}
}

// TestReadyzAnswersWithinASecond: two dependencies hang, one ignoring its
// context. /readyz still answers 503 naming both within a second, in
// simulated time.
func TestReadyzAnswersWithinASecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		h := Handler(prometheus.NewRegistry(),
			Check{Name: "kafka", Probe: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
			Check{Name: "influxdb", Probe: func(context.Context) error { <-release; return nil }},
		)
		start := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		took := time.Since(start)
		close(release)
		body := rec.Body.String()
		if rec.Code != http.StatusServiceUnavailable || took >= time.Second || !strings.Contains(body, "kafka") || !strings.Contains(body, "influxdb: no answer") {
			t.Fatalf("/readyz = %d %q after %s; want 503 naming both within 1 s", rec.Code, body, took)
		}
	})
}

func TestPendingCheck(t *testing.T) {
	c, set := Pending("later")
	if err := c.Probe(t.Context()); err != nil || c.Name != "later" {
		t.Fatalf("before set: %v", err)
	}
	set(Check{Name: "real", Probe: func(context.Context) error { return errors.New("stuck") }})
	if err := c.Probe(t.Context()); err == nil || err.Error() != "stuck" {
		t.Fatalf("after set: %v, want the real check's error", err)
	}
}
