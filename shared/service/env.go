package service

import "strings"

// EnvPrefix starts the environment variable of every flag.
const EnvPrefix = "METRICPIPE_"

// EnvVars returns the environment variable that sets the flag named name:
// "kafka-brokers" is METRICPIPE_KAFKA_BROKERS. Every flag of every service
// derives its variable here, so the documented rule cannot drift.
func EnvVars(name string) []string {
	return []string{EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
}
