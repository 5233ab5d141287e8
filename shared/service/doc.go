// Package service holds the conventions every metricpipe service follows:
// flag and environment-variable naming, logging, the one HTTP listener with
// /healthz, /readyz and /metrics, the version stamp, and graceful start and
// stop around a service's Run function.
package service
