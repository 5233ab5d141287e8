package influx

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/service"
)

// Refusal is one point InfluxDB refused as a point: Index is its position
// in what was written, Err InfluxDB's answer.
type Refusal struct {
	Index int
	Err   error
}

// Writer is the one output path to InfluxDB that the consumer and the
// analyzer share. It tells the sink's failures from the data's:
//   - While InfluxDB is unreachable, slow, throttling or misconfigured (a
//     missing bucket, a refused token) a write waits and retries for as
//     long as its ctx allows: the points are good and must not be
//     dead-lettered, nor their offsets committed. Meanwhile Check fails
//     naming the cause, an error is logged at most every logEvery saying
//     what to fix, and metricpipe_influx_sink_failing is 1.
//   - When InfluxDB refuses points as points, the batch is bisected until
//     the refused points are isolated; every other point is written and
//     the refused ones are returned for the caller to dead-letter.
//
// Safe for concurrent use.
type Writer struct {
	sink    *Sink
	backoff retry.Backoff
	log     zerolog.Logger
	m       writerMetrics

	mu      sync.Mutex
	failing *failure // nil while writes succeed
	logged  time.Time
}

// failure is the state of a sink whose writes fail.
type failure struct {
	cause    Cause
	err      error
	since    time.Time
	attempts int
}

type writerMetrics struct {
	seconds  prometheus.Histogram
	retries  *prometheus.CounterVec
	refused  prometheus.Counter
	failing  prometheus.Gauge
	failedAt prometheus.Gauge
}

// logEvery spaces the error logs of a sink that keeps failing: once per
// cause change, then a reminder, rather than one per partition and retry.
const logEvery = 30 * time.Second

// NewWriter returns a Writer to sink whose metrics, metricpipe_influx_*
// labelled with service, are registered in reg.
func NewWriter(sink *Sink, log zerolog.Logger, reg prometheus.Registerer, service string) *Writer {
	labels := prometheus.Labels{"service": service}
	m := writerMetrics{
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "metricpipe_influx_write_seconds", ConstLabels: labels,
			Help: "Latency of one InfluxDB write request, retries included.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metricpipe_influx_write_retries_total", ConstLabels: labels,
			Help: "InfluxDB write attempts that failed and are retried, by cause (unavailable, throttled, misconfigured)."}, []string{"cause"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_influx_points_refused_total", ConstLabels: labels,
			Help: "Points InfluxDB refused as points (unparsable, field type conflict, outside retention), isolated from their batch."}),
		failing: prometheus.NewGauge(prometheus.GaugeOpts{Name: "metricpipe_influx_sink_failing", ConstLabels: labels,
			Help: "1 while InfluxDB writes fail and are being retried (see /readyz for the cause)."}),
		failedAt: prometheus.NewGauge(prometheus.GaugeOpts{Name: "metricpipe_influx_sink_failing_since_seconds", ConstLabels: labels,
			Help: "Unix time the current run of failing InfluxDB writes began; 0 while writes succeed."}),
	}
	reg.MustRegister(m.seconds, m.retries, m.refused, m.failing, m.failedAt)
	return &Writer{sink: sink, backoff: retry.DefaultBackoff(), log: log, m: m}
}

// Bucket returns the bucket written to.
func (w *Writer) Bucket() string { return w.sink.Bucket() }

// Write writes pts and returns the points InfluxDB refused, in order,
// once every other point is written. It blocks while the sink fails; its
// error is then ctx's, joined with the last failure. The caller must set
// every point's time (see Sink.Write).
func (w *Writer) Write(ctx context.Context, pts []point.Point) ([]Refusal, error) {
	var refused []Refusal
	for from := 0; from < len(pts); from += w.sink.cfg.BatchSize {
		to := min(len(pts), from+w.sink.cfg.BatchSize)
		err := w.isolate(ctx, from, to, func(ctx context.Context, lo, hi int) error {
			return w.sink.Write(ctx, pts[lo:hi])
		}, &refused)
		if err != nil {
			return refused, err
		}
	}
	return refused, nil
}

// WriteLines writes lines of line protocol ending in '\n' (for what the
// point model cannot carry: string fields) as Write writes points; a
// Refusal's Index counts lines.
func (w *Writer) WriteLines(ctx context.Context, lines []byte) ([]Refusal, error) {
	n := bytes.Count(lines, []byte{'\n'})
	var starts []int // of each line, and the end; only found once a line is refused
	bounds := func(lo, hi int) []byte {
		if lo == 0 && hi == n {
			return lines
		}
		if starts == nil {
			starts = make([]int, 0, n+1)
			for i := 0; i < len(lines); {
				starts = append(starts, i)
				i += bytes.IndexByte(lines[i:], '\n') + 1
			}
			starts = append(starts, len(lines))
		}
		return lines[starts[lo]:starts[hi]]
	}
	var refused []Refusal
	err := w.isolate(ctx, 0, n, func(ctx context.Context, lo, hi int) error {
		return w.sink.WriteLines(ctx, bounds(lo, hi), hi-lo)
	}, &refused)
	return refused, err
}

// isolate writes items [lo, hi) with write, halving a refused range until
// the refused items stand alone. A batch with k refused points among n
// costs about 2k·log₂(n) requests; rewriting the accepted ones is
// harmless, as InfluxDB stores a point again identically.
func (w *Writer) isolate(ctx context.Context, lo, hi int, write func(ctx context.Context, lo, hi int) error, refused *[]Refusal) error {
	if lo >= hi {
		return nil
	}
	err := w.do(ctx, func(ctx context.Context) error { return write(ctx, lo, hi) })
	switch {
	case err == nil:
		return nil
	case CauseOf(err) != Refused:
		return err
	case hi-lo == 1 || droppedAll(err, hi-lo):
		w.m.refused.Add(float64(hi - lo))
		for i := lo; i < hi; i++ {
			*refused = append(*refused, Refusal{Index: i, Err: err})
		}
		return nil
	}
	mid := lo + (hi-lo)/2
	if err := w.isolate(ctx, lo, mid, write, refused); err != nil {
		return err
	}
	return w.isolate(ctx, mid, hi, write, refused)
}

// droppedAll reports whether err is a partial write that dropped all n
// points ("… dropped=n", as 1.8 and 2.x say): then every point is refused
// for the same reason, and bisecting would cost 2n requests to learn it.
func droppedAll(err error, n int) bool {
	msg := err.Error()
	i := strings.LastIndex(msg, "dropped=")
	if i < 0 {
		return false
	}
	digits := msg[i+len("dropped="):]
	end := 0
	for end < len(digits) && digits[end] >= '0' && digits[end] <= '9' {
		end++
	}
	dropped, perr := strconv.Atoi(digits[:end])
	return perr == nil && dropped == n
}

// Runs calls fn with each run of refusals that share one error (a batch
// InfluxDB refused whole), so that each run can be dead-lettered as one
// message; it stops at fn's first error.
func Runs(refused []Refusal, fn func(run []Refusal) error) error {
	for len(refused) > 0 {
		n := 1
		for n < len(refused) && refused[n].Err == refused[0].Err {
			n++
		}
		if err := fn(refused[:n]); err != nil {
			return err
		}
		refused = refused[n:]
	}
	return nil
}

// do runs one write request until InfluxDB answers it with success or a
// refusal of the points, or ctx ends.
func (w *Writer) do(ctx context.Context, write func(ctx context.Context) error) error {
	start := time.Now()
	var last error // the sink's last failure, rather than ctx's own
	for attempt := 0; ; attempt++ {
		err := write(ctx)
		cause := CauseOf(err)
		if err == nil || cause == Refused {
			w.recovered()
			w.m.seconds.Observe(time.Since(start).Seconds())
			return err
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), cmp.Or(last, err))
		}
		last = err
		delay := w.backoff.Delay(attempt)
		w.failed(cause, err, delay)
		if retry.Sleep(ctx, delay) != nil {
			return errors.Join(ctx.Err(), err)
		}
	}
}

// failed records a failed attempt; it logs when the cause changed, or
// logEvery after the last log.
func (w *Writer) failed(cause Cause, err error, delay time.Duration) {
	w.m.retries.WithLabelValues(cause.String()).Inc()
	now := time.Now()
	w.mu.Lock()
	f := w.failing
	if f == nil {
		f = &failure{since: now}
		w.failing = f
		w.m.failing.Set(1)
		w.m.failedAt.Set(float64(now.Unix()))
	}
	changed := f.cause != cause
	f.cause, f.err = cause, err
	f.attempts++
	attempts, since := f.attempts, f.since
	logNow := changed || now.Sub(w.logged) >= logEvery
	if logNow {
		w.logged = now
	}
	w.mu.Unlock()
	if logNow {
		w.log.Error().Err(err).Str("bucket", w.Bucket()).Str("cause", cause.String()).Int("attempts", attempts).
			Str("failing_for", now.Sub(since).Round(time.Second).String()).Str("retry_in", delay.Round(time.Millisecond).String()).
			Str("fix", w.hint(cause, err)).Msg("influxdb writes failing; holding the stream (nothing is committed or dead-lettered)")
	}
}

// recovered clears the failure state after InfluxDB answered.
func (w *Writer) recovered() {
	w.mu.Lock()
	f := w.failing
	w.failing = nil
	w.mu.Unlock()
	if f == nil {
		return
	}
	w.m.failing.Set(0)
	w.m.failedAt.Set(0)
	w.log.Info().Str("bucket", w.Bucket()).Int("attempts", f.attempts).Str("failed_for", time.Since(f.since).Round(time.Second).String()).
		Msg("influxdb writes succeed again")
}

// hint says what an operator can do about a failure.
func (w *Writer) hint(cause Cause, err error) string {
	status := 0
	if we, ok := errors.AsType[*WriteError](err); ok {
		status = we.Status
	}
	cfg := w.sink.cfg
	switch {
	case status == 404:
		db, _, _ := strings.Cut(cfg.Bucket, "/")
		return fmt.Sprintf("InfluxDB has no bucket %q in org %q that the token can see: create it (1.8: CREATE DATABASE %q; 2.x: influx bucket create), correct --influx-bucket/--influx-org, or give the token write access to it",
			cfg.Bucket, cfg.Org, db)
	case status == 401:
		return "InfluxDB refused the credentials: check --influx-token (2.x: an API token; 1.8 with auth: user:password)"
	case status == 403:
		return fmt.Sprintf("the token may not write to bucket %q: grant it write access to that bucket", cfg.Bucket)
	case status == 400: // only a missing org reaches here (see classify)
		return "InfluxDB 2.x needs the organization: set --influx-org"
	case status == 413:
		return "InfluxDB refused a request as too large: lower --influx-batch-size"
	case cause == Throttled:
		return "InfluxDB is throttling writes (429): writes continue at the pace it allows"
	}
	return fmt.Sprintf("InfluxDB at %s is unreachable or failing: writes resume when it answers", cfg.URL)
}

// Check is the readiness check "influxdb". It answers from the writes'
// state while they fail, naming the cause and the fix, and otherwise pings
// InfluxDB within the probe's deadline.
func (w *Writer) Check() service.Check {
	return service.Check{Name: "influxdb", Probe: func(ctx context.Context) error {
		w.mu.Lock()
		f := w.failing
		var desc string
		if f != nil {
			desc = fmt.Sprintf("writes to bucket %q failing for %s (%d attempts, %s): %v; fix: %s", w.Bucket(),
				time.Since(f.since).Round(time.Second), f.attempts, f.cause, f.err, w.hint(f.cause, f.err))
		}
		w.mu.Unlock()
		if f != nil {
			return errors.New(desc)
		}
		return w.sink.Ping(ctx)
	}}
}
