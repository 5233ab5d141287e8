// Package clitest checks, in each service's tests, the command-line
// conventions every metricpipe service follows.
package clitest

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/service"
)

// NewApp is a service's app constructor.
type NewApp func(stdout, stderr io.Writer) *cli.App

// CheckFlagEnv fails t unless every flag of the app has the environment
// variable derived from its name, and at least minFlags flags were found.
func CheckFlagEnv(t *testing.T, newApp NewApp, minFlags int) {
	t.Helper()
	app := newApp(io.Discard, io.Discard)
	if err := service.CheckFlagEnv(app); err != nil {
		t.Fatal(err)
	}
	if n := len(service.Options(app)); n < minFlags {
		t.Fatalf("only %d options found, want ≥ %d: the flag walk is broken", n, minFlags)
	}
}

// CheckRejects runs the app with args and fails t unless it exits 1 with a
// message naming every flag in want: Validate reports all problems at once.
func CheckRejects(t *testing.T, newApp NewApp, args []string, want ...string) {
	t.Helper()
	var errOut bytes.Buffer
	if code := service.Main(newApp(io.Discard, &errOut), args); code != 1 {
		t.Fatalf("exit code %d, want 1; stderr: %s", code, errOut.String())
	}
	for _, flag := range want {
		if !strings.Contains(errOut.String(), flag) {
			t.Errorf("stderr does not name %s:\n%s", flag, errOut.String())
		}
	}
}
