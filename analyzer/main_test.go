package main

import (
	"testing"

	"github.com/metricpipe/metricpipe/internal/clitest"
)

func TestEveryFlagHasItsEnvVar(t *testing.T) { clitest.CheckFlagEnv(t, newApp, 15) }

func TestInvalidConfigNamesEveryBadFlag(t *testing.T) {
	clitest.CheckRejects(t, newApp,
		[]string{"analyzer", "--log-format", "xml", "--kafka-brokers", "nohost", "--partitions", "0", "--max-series", "0"},
		"--log-format", "--kafka-brokers", "--partitions", "--max-series")
}
