// Package stream is the contract between a stateful stage, the consumer's
// moving averages or the analyzer's predictions, and the code that feeds it
// one Kafka partition's points: decoding, dead-lettering, metrics and
// checkpointing wrap a Stage and know nothing of what it computes.
//
// A stage's results depend on its state and on the points it is fed, in
// partition order, and on nothing else: not on batching, not on other
// series, not on wall time (wall time, "now", only drives Expire and what a
// stage documents as processing-time housekeeping). That is what makes a
// checkpoint taken after offset N, restored and fed the messages after N,
// continue exactly as an uninterrupted run.
package stream

import (
	"github.com/metricpipe/metricpipe/shared/point"
)

// Stage is the state of one partition's series. Out is where a stage puts
// what it derives (points, alert events); each call appends to out and
// returns it, so that a caller reuses its buffers. A Stage is not safe for
// concurrent use: one partition worker owns it.
type Stage[Out any] interface {
	// Process feeds p, a valid point with its Time set, that arrived at
	// processing time now (Unix ns).
	Process(p *point.Point, now int64, out Out) Out
	// Expire does the stage's processing-time housekeeping at now: closing
	// what idle series hold open, forgetting series idle for too long.
	Expire(now int64, out Out) Out
	// Checkpoint appends the stage's whole state to dst, in a versioned
	// format that records the configuration it depends on.
	Checkpoint(dst []byte) []byte
	// Restore replaces the stage's state with one Checkpoint wrote, taken at
	// processing time taken and restored at now: processing-time clocks
	// resume as if the downtime had not been. A checkpoint of another format
	// version or configuration is refused with an error wrapping
	// ErrIncompatible, a damaged one with ErrCorrupt; the stage is then
	// left empty.
	Restore(src []byte, taken, now int64) error
}
