package main

import (
	"testing"

	"github.com/metricpipe/metricpipe/internal/clitest"
)

func TestEveryFlagHasItsEnvVar(t *testing.T) { clitest.CheckFlagEnv(t, newApp, 30) }

func TestInvalidConfigNamesEveryBadFlag(t *testing.T) {
	clitest.CheckRejects(t, newApp,
		[]string{"consumer", "--log-format", "xml", "--kafka-brokers", "nohost", "--partitions", "0", "--influx-url", "ftp://x",
			"--sma-window", "1", "--wma-weights", "0,0", "--stage-override", "cpu:sma=1"},
		"--log-format", "--kafka-brokers", "--partitions", "--influx-url", "--wma-weights", "--stage-override")
}
