package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/movavg"
	"github.com/metricpipe/metricpipe/shared/point"
)

// output is where every partition's handler writes: InfluxDB, and the
// dead-letter topic for what InfluxDB refuses or cannot be decoded. Safe
// for concurrent use.
type output struct {
	writer  *influx.Writer
	dlq     *kafkaio.DeadLetters
	metrics metrics
	log     zerolog.Logger
	hotLog  zerolog.Logger
}

// handler turns a batch of one partition's messages into one InfluxDB write
// of their raw points and of what the moving-average stage derived from
// them. Messages that cannot be decoded, and those whose points InfluxDB
// rejects for good, go to the dead-letter topic; everything else is retried
// until written. One handler per partition assignment, so its stage needs
// no locks; not safe for concurrent use. It is a kafkaio.Checkpointer: its
// state is the stage's.
type handler struct {
	out       *output
	dec       point.Decoder
	stage     *movavg.Stage
	maxFuture int64
	series    prometheus.Gauge
	stats     movavg.Stats     // last seen, to turn the stage's totals into counter increments
	now       func() time.Time // processing time: drives the stage's housekeeping only
	expiredAt int64            // processing time of the last Expire

	pts     []point.Point // raw points of the batch, reused
	lines   []point.Point // what is written for pts[i]: pts[i] with its derived fields merged in
	fields  []point.Field // backing store of the merged points' fields
	derived []point.Point // rollup points of the batch, valid until stage.Reset
	spans   []span
}

// What the group consumer may ask of a handler.
var (
	_ kafkaio.Checkpointer = (*handler)(nil)
	_ kafkaio.Warmer       = (*handler)(nil)
	_ kafkaio.Idler        = (*handler)(nil)
	_ kafkaio.OffsetHolder = (*handler)(nil)
)

// span is the points one message decoded to: pts[from:to] came from batch[msg].
type span struct{ msg, from, to int }

func newHandler(out *output, cfg movavg.Config, maxFuture time.Duration, partition int) (*handler, error) {
	stage, err := movavg.New(cfg)
	if err != nil {
		return nil, err
	}
	// The batch's points are dropped once it is written: their tags and
	// fields can share an arena, reset with the next batch.
	return &handler{out: out, dec: point.Decoder{Alias: true, Arena: &point.Arena{}}, stage: stage, maxFuture: int64(maxFuture),
		series: out.metrics.series.WithLabelValues(strconv.Itoa(partition)), now: time.Now}, nil
}

// expireEvery is the processing time between two looks for idle series:
// Expire scans every series, and --idle-flush and --series-idle-timeout are
// minutes, not seconds.
const expireEvery = int64(5 * time.Second)

func (h *handler) Handle(ctx context.Context, batch []kafka.Message) error {
	h.pts, h.lines, h.fields, h.derived, h.spans = h.pts[:0], h.lines[:0], h.fields[:0], h.derived[:0], h.spans[:0]
	h.dec.Arena.Reset()
	now := h.now().UnixNano()
	for i := range batch {
		m := &batch[i]
		from := len(h.pts)
		pts, err := h.dec.Decode(h.pts, m.Value, kafkaio.HeaderValue(m, kafkaio.HeaderContentType))
		if err != nil {
			if err := h.out.deadLetter(ctx, m, "decode", err); err != nil {
				return err
			}
			continue
		}
		h.pts = pts
		h.spans = append(h.spans, span{msg: i, from: from, to: len(pts)})
		h.derive(m, pts[from:], now)
	}
	// Processing-time housekeeping: series quiet for --idle-flush close
	// their windows, those quiet for --series-idle-timeout are forgotten.
	// Replay does not do it, which only matters for series idle then.
	if now-h.expiredAt >= expireEvery {
		h.derived = h.stage.Expire(now, h.derived)
		h.expiredAt = now
	}
	h.observeStage()
	h.out.metrics.pointsIn.Add(float64(len(h.pts)))

	if err := h.writeRaw(ctx, batch); err != nil {
		return err
	}
	if err := h.out.writeDerived(ctx, h.derived); err != nil {
		return err
	}
	h.stage.Reset() // the derived points were written: their memory may be reused
	return nil
}

// derive stamps the points of m with m's time when they carry none, feeds
// them to the stage and appends to h.lines what is written for each: the
// point with its moving averages merged in as extra fields (one line instead
// of two for the same series and time, which InfluxDB stores identically).
// now is the processing time.
func (h *handler) derive(m *kafka.Message, pts []point.Point, now int64) {
	msgTime := m.Time.UnixNano()
	h.stage.Mark(m.Offset)
	for j := range pts {
		p := &pts[j]
		if !h.stamp(p, msgTime) {
			h.out.metrics.future.Inc()
			h.out.hotLog.Warn().Str("topic", m.Topic).Int("partition", m.Partition).Int64("offset", m.Offset).
				Time("point_time", time.Unix(0, p.Time)).Msg("point stamped too far in the future; not averaged")
			h.lines = append(h.lines, *p)
			continue
		}
		var res movavg.Result
		h.derived, res = h.stage.ProcessResult(p, now, h.derived)
		if res.Untracked {
			h.out.hotLog.Warn().Str("measurement", p.Measurement).Msg("--max-series reached; new series written raw only")
		}
		line := *p
		if res.Derived {
			d := h.derived[len(h.derived)-1]
			h.derived = h.derived[:len(h.derived)-1]
			from := len(h.fields)
			h.fields = append(append(h.fields, p.Fields...), d.Fields...)
			// Earlier lines keep the old array when append moves h.fields.
			line.Fields = h.fields[from:len(h.fields):len(h.fields)]
		}
		h.lines = append(h.lines, line)
	}
}

// stamp gives p its message's time when it carries none, and reports
// whether the stage may have it: one point stamped far ahead would move its
// series' watermark and close its rollup windows early, so it is stored,
// not averaged.
func (h *handler) stamp(p *point.Point, msgTime int64) bool {
	if p.Time == 0 {
		p.Time = msgTime
	}
	return p.Time-msgTime <= h.maxFuture
}

// Warm rebuilds the moving averages from messages an earlier owner of the
// partition already wrote (see kafkaio.Warmer): their points go to the
// stage as in Handle, and nowhere else. It is the fallback (--state-replay)
// for when no checkpoint can be restored.
func (h *handler) Warm(batch []kafka.Message) {
	now := h.now().UnixNano()
	h.rebuild(batch, func(p *point.Point) { h.stage.Warm(p, now) })
	h.observeStage()
}

// rebuild decodes and stamps, as Handle does, the points of messages handled
// before, and gives to feed those the stage may have. Messages that do not
// decode were dead-lettered then and are skipped now.
func (h *handler) rebuild(batch []kafka.Message, feed func(p *point.Point)) {
	h.dec.Arena.Reset()
	for i := range batch {
		m := &batch[i]
		pts, err := h.dec.Decode(h.pts[:0], m.Value, kafkaio.HeaderValue(m, kafkaio.HeaderContentType))
		if err != nil {
			continue
		}
		h.pts = pts
		msgTime := m.Time.UnixNano()
		h.stage.Mark(m.Offset)
		for j := range pts {
			if h.stamp(&pts[j], msgTime) {
				feed(&pts[j])
			}
		}
	}
	h.pts = h.pts[:0]
}

// Checkpoint appends the partition's state, the stage's, to dst (see
// kafkaio.Checkpointer).
func (h *handler) Checkpoint(dst []byte) []byte { return h.stage.Checkpoint(dst) }

// Restore replaces the stage's state with a checkpoint taken at wall time
// taken; its processing-time clocks skip the downtime. The error wraps
// stream.ErrIncompatible or stream.ErrCorrupt; the stage is then empty.
func (h *handler) Restore(state []byte, taken time.Time) error {
	err := h.stage.Restore(state, taken.UnixNano(), h.now().UnixNano())
	h.absorbStats()
	return err
}

// Replay feeds messages handled (and written) before, after the restored
// checkpoint, to the stage exactly as Handle does (same decoding, stamping,
// positions and Process calls) and discards what it derives: nothing is
// written, dead-lettered or counted. It does no housekeeping (Expire).
func (h *handler) Replay(batch []kafka.Message) {
	now := h.now().UnixNano()
	h.rebuild(batch, func(p *point.Point) { h.derived = h.stage.Process(p, now, h.derived[:0]) })
	h.derived = h.derived[:0]
	h.stage.Reset()
	h.absorbStats()
}

// absorbStats takes the stage's counters as they are without counting
// them: what Replay and Restore did was counted when first handled.
func (h *handler) absorbStats() {
	h.stats = h.stage.Stats()
	h.series.Set(float64(h.stats.Series))
}

func (h *handler) observeStage() {
	st := h.stage.Stats()
	m := h.out.metrics
	m.untracked.Add(float64(st.Untracked - h.stats.Untracked))
	m.droppedLate.Add(float64(st.DroppedLate - h.stats.DroppedLate))
	m.expired.Add(float64(st.Expired - h.stats.Expired))
	h.series.Set(float64(st.Series))
	h.stats = st
}

// Idle closes the open rollup windows of a partition that went quiet and
// writes them, so its commits need not wait for event time to move on.
// Later points for those windows count as dropped-late.
func (h *handler) Idle(ctx context.Context) error {
	h.derived = h.stage.Flush(h.derived[:0])
	if err := h.out.writeDerived(ctx, h.derived); err != nil {
		return err
	}
	h.stage.Reset()
	return nil
}

// HeldFrom holds the partition's commit back to the first message of a
// rollup window still open: a restart replays from there and rebuilds it.
func (h *handler) HeldFrom() (int64, bool) { return h.stage.OldestOpen() }

// writeRaw writes the batch's points with their moving averages. A point
// InfluxDB refuses (influx.Writer isolates it) is tried again without its
// averages: if InfluxDB takes it so, only its averages are dead-lettered;
// if not, its message is, naming the refused points. A sink that fails
// holds the batch (see influx.Writer): nothing is dead-lettered for it.
func (h *handler) writeRaw(ctx context.Context, batch []kafka.Message) error {
	refused, err := h.out.writer.Write(ctx, h.lines)
	if err != nil {
		return err
	}
	h.out.metrics.pointsWritten.Add(float64(len(h.lines) - len(refused)))
	if len(h.lines) > 0 {
		n := 0
		for i := range h.lines {
			n += len(h.lines[i].Fields)
		}
		h.out.metrics.fieldValues.Add(float64(n))
		h.out.metrics.fieldsPerPoint.Set(float64(n) / float64(len(h.lines)))
	}
	if len(refused) == 0 {
		return nil
	}
	bad, err := h.retryWithoutAverages(ctx, refused)
	if err != nil {
		return err
	}
	// The refused points of each message, in batch order.
	for i := 0; i < len(refused); {
		s := h.spanOf(refused[i].Index)
		var reasons []error
		for ; i < len(refused) && refused[i].Index < s.to; i++ {
			if bad[i] {
				reasons = append(reasons, fmt.Errorf("point %d of %d: %w", refused[i].Index-s.from+1, s.to-s.from, refused[i].Err))
			}
		}
		if len(reasons) > 0 {
			if err := h.out.deadLetter(ctx, &batch[s.msg], "rejected", errors.Join(reasons...)); err != nil {
				return err
			}
		}
	}
	return nil
}

// retryWithoutAverages writes again, without their moving averages, the
// refused points that carried some; it dead-letters the averages of those
// InfluxDB now takes, and reports which refusals still stand.
func (h *handler) retryWithoutAverages(ctx context.Context, refused []influx.Refusal) (bad []bool, err error) {
	bad = make([]bool, len(refused))
	var retried []point.Point // refused points that carried averages, without them
	var origin []int          // index in refused of each retried point
	for i, r := range refused {
		bad[i] = true
		if len(h.lines[r.Index].Fields) > len(h.pts[r.Index].Fields) {
			retried = append(retried, h.pts[r.Index])
			origin = append(origin, i)
		}
	}
	again, err := h.out.writer.Write(ctx, retried)
	if err != nil {
		return nil, err
	}
	for i, j := 0, 0; i < len(retried); i++ {
		if j < len(again) && again[j].Index == i {
			j++
			continue
		}
		r := refused[origin[i]]
		bad[origin[i]] = false
		h.out.metrics.pointsWritten.Inc()
		avg := h.pts[r.Index]
		avg.Fields = h.lines[r.Index].Fields[len(avg.Fields):]
		if err := h.out.deadLetterDerived(ctx, []point.Point{avg}, r.Err); err != nil {
			return nil, err
		}
	}
	return bad, nil
}

// spanOf returns the span of the message point i was decoded from.
func (h *handler) spanOf(i int) span {
	k, _ := slices.BinarySearchFunc(h.spans, i, func(s span, i int) int {
		if s.to <= i {
			return -1
		}
		if s.from > i {
			return 1
		}
		return 0
	})
	return h.spans[k]
}

// writeDerived writes the stage's output. A derived point belongs to no
// single message: one InfluxDB refuses is dead-lettered as line protocol
// with its reason.
func (o *output) writeDerived(ctx context.Context, pts []point.Point) error {
	refused, err := o.writer.Write(ctx, pts)
	if err != nil {
		return err
	}
	o.metrics.derivedWritten.Add(float64(len(pts) - len(refused)))
	return influx.Runs(refused, func(run []influx.Refusal) error {
		refusedPts := make([]point.Point, len(run))
		for i, r := range run {
			refusedPts[i] = pts[r.Index]
		}
		return o.deadLetterDerived(ctx, refusedPts, run[0].Err)
	})
}

// deadLetterDerived dead-letters derived points InfluxDB refused for one
// reason, as one message.
func (o *output) deadLetterDerived(ctx context.Context, pts []point.Point, reason error) error {
	o.hotLog.Warn().Err(reason).Int("points", len(pts)).Msg("influxdb refused derived points; dead-lettering them")
	if err := o.dlq.PublishLines(ctx, point.AppendLines(nil, pts), reason); err != nil {
		return err
	}
	o.metrics.derivedRefused.Add(float64(len(pts)))
	return nil
}

// deadLetter publishes m with its reason, retrying until the dead-letter
// topic took it: the message's offset must not be committed before that.
func (o *output) deadLetter(ctx context.Context, m *kafka.Message, kind string, reason error) error {
	o.hotLog.Warn().Err(reason).Str("topic", m.Topic).Int("partition", m.Partition).Int64("offset", m.Offset).Str("reason", kind).Msg("dead-lettering message")
	if err := o.dlq.Publish(ctx, *m, reason); err != nil {
		return err
	}
	o.metrics.deadLettered.WithLabelValues(kind).Inc()
	return nil
}
