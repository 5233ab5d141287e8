package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metricpipe/metricpipe/shared/service"
)

// partitionHealth is what one partition's fetcher and its handler loop
// share with the metrics and the readiness check: the partition's end and
// the next offset to handle, whose difference is the lag, and whether the
// partition is stuck. The fetcher sets the end from every response, so a
// backlog behind a handler that cannot write shows as it grows. Safe for
// concurrent use; no method blocks.
type partitionHealth struct {
	id         int
	lag        prometheus.Gauge
	stuckGauge prometheus.Gauge

	mu         sync.Mutex
	end        int64 // high-water mark, or last stable offset under read_committed; -1: unknown
	next       int64 // next offset to handle; -1: unknown
	stuckSince time.Time
	stuckAt    int64
	stuckErr   error
}

func newPartitionHealth(id int, lag, stuck prometheus.Gauge) *partitionHealth {
	stuck.Set(0)
	return &partitionHealth{id: id, lag: lag, stuckGauge: stuck, end: -1, next: -1}
}

// setEnd records the partition's end from a fetch response.
func (h *partitionHealth) setEnd(end int64) {
	h.mu.Lock()
	h.end = end
	h.updateLag()
	h.mu.Unlock()
}

// setNext records the next offset to handle: after a handled batch, or a
// jump of the fetch offset.
func (h *partitionHealth) setNext(next int64) {
	h.mu.Lock()
	h.next = next
	h.updateLag()
	h.mu.Unlock()
}

// initNext sets the next offset to handle when none is known yet: a
// partition with no committed offset starts at the log start.
func (h *partitionHealth) initNext(next int64) {
	h.mu.Lock()
	if h.next < 0 {
		h.next = next
		h.updateLag()
	}
	h.mu.Unlock()
}

func (h *partitionHealth) updateLag() {
	if h.end >= 0 && h.next >= 0 {
		h.lag.Set(float64(max(0, h.end-h.next)))
	}
}

// setStuck marks the partition stuck at offset because of err, and reports
// whether it was not stuck already.
func (h *partitionHealth) setStuck(now time.Time, offset int64, err error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stuckAt, h.stuckErr = offset, err
	if !h.stuckSince.IsZero() {
		return false
	}
	h.stuckSince = now
	h.stuckGauge.Set(float64(now.Unix()))
	return true
}

// clearStuck marks the partition fine, and reports whether it was stuck.
func (h *partitionHealth) clearStuck() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stuckSince.IsZero() {
		return false
	}
	h.stuckSince, h.stuckErr = time.Time{}, nil
	h.stuckGauge.Set(0)
	return true
}

// stuck returns why the partition is stuck, nil when it is not.
func (h *partitionHealth) stuck() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stuckSince.IsZero() {
		return nil
	}
	return fmt.Errorf("partition %d stuck at offset %d since %s: %w", h.id, h.stuckAt, h.stuckSince.UTC().Format(time.RFC3339), h.stuckErr)
}

// Check returns a readiness check that fails while any partition assigned
// to c is stuck (a corrupt batch under --on-corrupt-batch stop), naming
// each with its offset and cause. Its probe reads state the fetchers keep:
// it never blocks or talks to Kafka. It may be called before Run, and is
// safe for concurrent use.
func (c *GroupConsumer) Check() service.Check {
	return service.Check{Name: "kafka partitions", Probe: func(context.Context) error { return c.stuckPartitions() }}
}

func (c *GroupConsumer) stuckPartitions() error {
	c.partsMu.Lock()
	ids := make([]int, 0, len(c.parts))
	for id := range c.parts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var errs []error
	for _, id := range ids {
		if err := c.parts[id].stuck(); err != nil {
			errs = append(errs, err)
		}
	}
	c.partsMu.Unlock()
	return errors.Join(errs...)
}

// track registers a partition's health while it is assigned; the returned
// function forgets it and drops its per-partition gauges.
func (c *GroupConsumer) track(id int) (*partitionHealth, func()) {
	pl := strconv.Itoa(id)
	h := newPartitionHealth(id, c.metrics.lag.WithLabelValues(pl), c.metrics.stuckSince.WithLabelValues(pl))
	c.partsMu.Lock()
	c.parts[id] = h
	c.partsMu.Unlock()
	return h, func() {
		c.partsMu.Lock()
		if c.parts[id] == h {
			delete(c.parts, id)
		}
		c.partsMu.Unlock()
		c.metrics.lag.DeleteLabelValues(pl)
		c.metrics.stuckSince.DeleteLabelValues(pl)
	}
}

// partitionMetrics are one partition's fetch counters.
type partitionMetrics struct {
	errors  *prometheus.CounterVec // by code
	resets  *prometheus.CounterVec // by reason
	skipped *prometheus.CounterVec // by reason
}

func (m consumerMetrics) partition(id int) partitionMetrics {
	l := prometheus.Labels{"partition": strconv.Itoa(id)}
	return partitionMetrics{errors: m.fetchErrors.MustCurryWith(l), resets: m.offsetResets.MustCurryWith(l), skipped: m.skipped.MustCurryWith(l)}
}
