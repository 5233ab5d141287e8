package kafkaio

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Brokers: []string{"127.0.0.1:9092"}}
	f := func(mutate func(*Config), wantErrs ...string) {
		t.Helper()
		c := ok
		mutate(&c)
		err := c.Validate()
		if len(wantErrs) == 0 {
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("want errors %q, got nil", wantErrs)
		}
		for _, w := range wantErrs {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q does not mention %q", err, w)
			}
		}
	}
	f(func(*Config) {})
	f(func(c *Config) { c.Brokers = nil }, "--kafka-brokers")
	f(func(c *Config) { c.Brokers = []string{"localhost"} }, `--kafka-brokers "localhost"`)
	f(func(c *Config) { c.TLSCertFile = "c.pem" }, "--kafka-tls-cert-file and --kafka-tls-key-file", "--kafka-tls is off")
	f(func(c *Config) { c.TLS, c.TLSCertFile, c.TLSKeyFile = true, "c.pem", "k.pem" })
	f(func(c *Config) { c.SASLMechanism = "gssapi" }, `--kafka-sasl-mechanism "gssapi"`)
	f(func(c *Config) { c.SASLMechanism = SASLScramSHA512 }, "--kafka-sasl-username")
	f(func(c *Config) { c.SASLUsername = "u" }, "--kafka-sasl-mechanism is empty")
	f(func(c *Config) { c.SASLMechanism, c.SASLUsername, c.SASLPassword = SASLPlain, "u", "p" })
	// Every problem at once, so an operator fixes all in one pass.
	f(func(c *Config) { c.Brokers = []string{"x"}; c.SASLMechanism = "md5"; c.TLSInsecureSkipVerify = true },
		"--kafka-brokers", "--kafka-sasl-mechanism", "--kafka-tls is off")
}

func TestClientsFromConfig(t *testing.T) {
	base := Config{Brokers: []string{"127.0.0.1:9092"}, ClientID: "test"}
	for _, mech := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		c := base
		c.SASLMechanism, c.SASLUsername, c.SASLPassword = mech, "user", "pw"
		tr, err := c.Transport()
		if err != nil || tr.SASL == nil || tr.ClientID != "test" {
			t.Fatalf("%s transport: %+v, %v", mech, tr, err)
		}
		d, err := c.Dialer()
		if err != nil || d.SASLMechanism == nil {
			t.Fatalf("%s dialer: %v", mech, err)
		}
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := base
	c.TLS, c.TLSCAFile = true, bad
	if _, err := c.Transport(); err == nil || !strings.Contains(err.Error(), "--kafka-tls-ca-file") {
		t.Fatalf("bad CA file: err = %v", err)
	}
	c.TLSCAFile = ""
	c.TLSInsecureSkipVerify = true
	tr, err := c.Transport()
	if err != nil || tr.TLS == nil || !tr.TLS.InsecureSkipVerify {
		t.Fatalf("TLS transport: %+v, %v", tr, err)
	}
}

// The fetch policy flags come with GroupFlags, default to the zero
// FetchPolicy's meaning, and are set by flag or environment variable.
func TestFetchPolicyFlags(t *testing.T) {
	f := func(args []string, env map[string]string, want FetchPolicy) {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		var got FetchPolicy
		app := &cli.App{Flags: GroupFlags("g"), Action: func(c *cli.Context) error {
			got = FetchPolicyFromCLI(c)
			return nil
		}}
		if err := app.Run(append([]string{"test"}, args...)); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("args %q, env %v: %+v, want %+v", args, env, got, want)
		}
	}
	f(nil, nil, FetchPolicy{ResetOffset: ResetEarliest, OnCorruptBatch: CorruptStop, IsolationLevel: ReadCommitted})
	f([]string{"--on-corrupt-batch", "skip", "--isolation-level", "read_uncommitted"}, map[string]string{"METRICPIPE_RESET_OFFSET": "latest"},
		FetchPolicy{ResetOffset: ResetLatest, OnCorruptBatch: CorruptSkip, IsolationLevel: ReadUncommitted})

	g := GroupConfig{Topic: "t", Group: "g", BatchSize: 1, BatchWait: time.Second, DrainTimeout: time.Second, Fetch: FetchPolicy{ResetOffset: "none"}}
	if err := g.Validate(); err == nil || !strings.Contains(err.Error(), `--reset-offset "none"`) {
		t.Errorf("Validate = %v, want --reset-offset named", err)
	}
}
