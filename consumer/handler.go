package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/movavg"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/retry"
)

// output is where every partition's handler writes: InfluxDB, and the
// dead-letter topic for what cannot be written. Safe for concurrent use.
type output struct {
	writes  *influx.Writes
	dlq     *kafkaio.DeadLetters
	backoff retry.Backoff // of dead-letter publishes
	metrics metrics
	log     zerolog.Logger
	hotLog  zerolog.Logger
}

// handler turns a batch of one partition's messages into one InfluxDB write
// of their raw points and of what the moving-average stage derived from
// them. Messages that cannot be decoded, and those whose points InfluxDB
// rejects for good, go to the dead-letter topic; everything else is retried
// until written. One handler per partition assignment, so its stage needs
// no locks; not safe for concurrent use.
type handler struct {
	out       *output
	dec       point.Decoder
	stage     *movavg.Stage
	maxFuture int64
	series    prometheus.Gauge
	stats     movavg.Stats // last seen, to turn the stage's totals into counter increments
	expiredAt int64        // watermark of the last Expire

	pts     []point.Point // raw points of the batch, reused
	lines   []point.Point // what is written for pts[i]: pts[i] with its derived fields merged in
	fields  []point.Field // backing store of the merged points' fields
	derived []point.Point // rollup points of the batch, valid until stage.Reset
	spans   []span
}

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
		series: out.metrics.series.WithLabelValues(strconv.Itoa(partition))}, nil
}

// expireEvery is how far the watermark (event time) must move before idle
// series are looked for again: Expire scans every series.
const expireEvery = int64(time.Minute)

func (h *handler) Handle(ctx context.Context, batch []kafka.Message) error {
	h.pts, h.lines, h.fields, h.derived, h.spans = h.pts[:0], h.lines[:0], h.fields[:0], h.derived[:0], h.spans[:0]
	h.dec.Arena.Reset()
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
		h.derive(m, pts[from:])
	}
	if st := h.stage.Stats(); st.Watermark-h.expiredAt >= expireEvery {
		h.derived = h.stage.Expire(st.Watermark, h.derived)
		h.expiredAt = st.Watermark
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
func (h *handler) derive(m *kafka.Message, pts []point.Point) {
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
		h.derived, res = h.stage.Process(p, h.derived)
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
// whether the stage may have it: one point stamped far ahead would move the
// partition's watermark and close every rollup window early, so it is
// stored, not averaged.
func (h *handler) stamp(p *point.Point, msgTime int64) bool {
	if p.Time == 0 {
		p.Time = msgTime
	}
	return p.Time-msgTime <= h.maxFuture
}

// Warm rebuilds the moving averages from messages an earlier owner of the
// partition already wrote (see kafkaio.Warmer): their points go to the
// stage as in Handle, and nowhere else. Messages that do not decode were
// dead-lettered then and are skipped now.
func (h *handler) Warm(batch []kafka.Message) {
	h.dec.Arena.Reset()
	for i := range batch {
		m := &batch[i]
		pts, err := h.dec.Decode(h.pts[:0], m.Value, kafkaio.HeaderValue(m, kafkaio.HeaderContentType))
		if err != nil {
			continue
		}
		h.pts = pts
		msgTime := m.Time.UnixNano()
		for j := range pts {
			if h.stamp(&pts[j], msgTime) {
				h.stage.Warm(&pts[j])
			}
		}
	}
	h.pts = h.pts[:0]
	h.observeStage()
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

// writeRaw writes the batch's points with their moving averages. When
// InfluxDB refuses the batch for good (a field type conflict, say), it
// writes the raw points message by message to find the ones responsible,
// dead-letters those, and writes the moving averages of the others apart.
func (h *handler) writeRaw(ctx context.Context, batch []kafka.Message) error {
	err := h.out.write(ctx, h.lines)
	if err == nil {
		h.out.metrics.pointsWritten.Add(float64(len(h.pts)))
		return nil
	}
	if !retry.IsPermanent(err) {
		return err
	}
	h.out.log.Warn().Err(err).Int("messages", len(h.spans)).Msg("batch rejected; writing message by message to isolate the bad points")
	var averages []point.Point
	for _, s := range h.spans {
		err := h.out.write(ctx, h.pts[s.from:s.to])
		switch {
		case err == nil:
			h.out.metrics.pointsWritten.Add(float64(s.to - s.from))
			for i := s.from; i < s.to; i++ {
				if extra := h.lines[i].Fields[len(h.pts[i].Fields):]; len(extra) > 0 {
					p := h.pts[i]
					p.Fields = extra
					averages = append(averages, p)
				}
			}
		case retry.IsPermanent(err):
			err = h.out.deadLetter(ctx, &batch[s.msg], "rejected", err)
		}
		if err != nil {
			return err
		}
	}
	return h.out.writeDerived(ctx, averages)
}

// writeDerived writes the stage's output. Derived points belong to no single
// message, so one InfluxDB refuses for good cannot be dead-lettered: the
// batch is retried point by point and the refused ones are counted and
// logged.
func (o *output) writeDerived(ctx context.Context, pts []point.Point) error {
	err := o.write(ctx, pts)
	if err == nil {
		o.metrics.derivedWritten.Add(float64(len(pts)))
		return nil
	}
	if !retry.IsPermanent(err) {
		return err
	}
	for i := range pts {
		err := o.write(ctx, pts[i:i+1])
		switch {
		case err == nil:
			o.metrics.derivedWritten.Inc()
		case retry.IsPermanent(err):
			o.metrics.derivedDropped.Inc()
			o.hotLog.Warn().Err(err).Str("measurement", pts[i].Measurement).Msg("derived point rejected; dropped")
		default:
			return err
		}
	}
	return nil
}

// write writes pts, retrying transient failures until ctx is done. A
// permanent rejection comes back marked retry.Permanent.
func (o *output) write(ctx context.Context, pts []point.Point) error {
	if len(pts) == 0 {
		return nil
	}
	start := time.Now()
	if err := o.writes.Do(ctx, func(ctx context.Context) error { return o.writes.Sink.Write(ctx, pts) }); err != nil {
		return err
	}
	o.metrics.writeSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// deadLetter publishes m with its reason, retrying until the dead-letter
// topic took it: the message's offset must not be committed before that.
func (o *output) deadLetter(ctx context.Context, m *kafka.Message, kind string, reason error) error {
	o.hotLog.Warn().Err(reason).Str("topic", m.Topic).Int("partition", m.Partition).Int64("offset", m.Offset).Str("reason", kind).Msg("dead-lettering message")
	err := retry.Do(ctx, o.backoff, func(ctx context.Context) error {
		return o.dlq.Publish(ctx, *m, reason)
	}, func(attempt int, delay time.Duration, err error) {
		o.log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", delay).Msg("dead-letter publish failed; retrying")
	})
	if err != nil {
		return fmt.Errorf("dead-letter: %w", err)
	}
	o.metrics.deadLettered.WithLabelValues(kind).Inc()
	return nil
}
