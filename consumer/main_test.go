package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/metricpipe/metricpipe/shared/service"
)

func TestEveryFlagHasItsEnvVar(t *testing.T) {
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	if err := service.CheckFlagEnv(app); err != nil {
		t.Fatal(err)
	}
	if n := len(service.Options(app)); n < 15 {
		t.Fatalf("only %d options found: the flag walk is broken", n)
	}
}

func TestInvalidConfigNamesEveryBadFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	code := service.Main(newApp(&out, &errOut), []string{"consumer", "--log-format", "xml", "--kafka-brokers", "nohost", "--partitions", "0", "--influx-url", "ftp://x"})
	if code != 1 {
		t.Fatalf("exit code %d, want 1; stderr: %s", code, errOut.String())
	}
	for _, flag := range []string{"--log-format", "--kafka-brokers", "--partitions", "--influx-url"} {
		if !strings.Contains(errOut.String(), flag) {
			t.Errorf("stderr does not name %s:\n%s", flag, errOut.String())
		}
	}
}
