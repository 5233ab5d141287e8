package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/action"
	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/retry"
)

// messageWriter is the part of kafka.Writer the analyzer publishes with.
type messageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// output is where every partition's handler sends what it found: alert
// events to the alert topic, forecasts and alerts to InfluxDB. Safe for
// concurrent use.
type output struct {
	alerts      messageWriter
	writer      *influx.Writer
	dlq         *kafkaio.DeadLetters // for what InfluxDB refuses
	actions     *action.Executor     // nil: no recovery actions
	measurement string               // of alert events in InfluxDB
	backoff     retry.Backoff        // of alert publishes
	metrics     metrics
	log         zerolog.Logger
	hotLog      zerolog.Logger
	// Totals for the summary logged on stop.
	analyzed, published atomic.Int64
}

// handler analyzes one partition's batches. The offsets of a batch are
// committed (by the group consumer, after Handle returns nil) only once the
// alert events it produced were acknowledged by Kafka and its forecasts and
// alerts written to InfluxDB. It is the partition's kafkaio.Checkpointer:
// its engine's state is checkpointed between batches and restored, then
// replayed up to the committed offset, when the partition is assigned.
// Not safe for concurrent use.
type handler struct {
	out       *output
	eng       *engine
	rules     *atomic.Pointer[ruleBook]
	now       func() time.Time
	dec       point.Decoder
	series    prometheus.Gauge
	checkedAt int64 // wall time of the last absence check

	res  results // what the batch being handled derived, until flushed
	pts  []point.Point
	msgs []kafka.Message
	buf  []byte
}

var _ kafkaio.Checkpointer = (*handler)(nil)

// absenceEvery is how often (wall time) a busy partition looks for
// series that went silent; a quiet one does it whenever it is idle.
const absenceEvery = int64(time.Second)

func (h *handler) Handle(ctx context.Context, batch []kafka.Message) error {
	h.syncRules()
	now := h.now().UnixNano()
	points := h.analyze(batch, now, false)
	h.out.metrics.points.Add(float64(points))
	h.out.analyzed.Add(int64(points))
	if now-h.checkedAt >= absenceEvery {
		h.housekeep(now)
	}
	return h.flush(ctx)
}

// analyze decodes the batch's points, stamps those without a time with
// their message's, and feeds them to the engine as arrived at now. It
// returns how many points it analyzed. Replay and Handle share it, so that
// a replay updates the state exactly as handling did; a replay does not
// count undecodable messages again.
func (h *handler) analyze(batch []kafka.Message, now int64, replay bool) (points int) {
	for i := range batch {
		m := &batch[i]
		pts, err := h.decode(m)
		if err != nil {
			if !replay {
				// The consumer dead-letters it; the analyzer only counts
				// it, so each bad message is dead-lettered once.
				h.out.metrics.undecodable.Inc()
				h.out.hotLog.Debug().Err(err).Int("partition", m.Partition).Int64("offset", m.Offset).Msg("undecodable message skipped")
			}
			continue
		}
		for j := range pts {
			h.eng.Process(&pts[j], now, &h.res)
		}
		if replay {
			h.res.Reset() // published and written before
		}
		points += len(pts)
	}
	return points
}

// newDecoder returns the decoder of the analyzer's messages, for every
// reader of the raw topic that must see what the live analyzer sees.
func newDecoder() point.Decoder { return point.Decoder{Alias: true} }

// decode decodes m's points into h's buffer, valid until the next call, and
// stamps those without a time with the message's: how the analyzer reads a
// message, live, in replays and in backtests.
func (h *handler) decode(m *kafka.Message) ([]point.Point, error) {
	pts, err := h.dec.Decode(h.pts[:0], m.Value, kafkaio.HeaderValue(m, kafkaio.HeaderContentType))
	if err != nil {
		return nil, err
	}
	h.pts = pts
	for j := range pts {
		if pts[j].Time == 0 {
			pts[j].Time = m.Time.UnixNano()
		}
	}
	return pts, nil
}

// Checkpoint appends the engine's state, as it is after the last message
// handled or replayed, to dst (kafkaio.Checkpointer).
func (h *handler) Checkpoint(dst []byte) []byte { return h.eng.Checkpoint(dst) }

// Restore replaces the engine's state with a checkpoint taken at wall time
// taken (kafkaio.Checkpointer): series resume as if the time since had not
// passed for absence rules and idle expiry. The error wraps
// stream.ErrIncompatible or stream.ErrCorrupt; the engine is then empty.
func (h *handler) Restore(state []byte, taken time.Time) error {
	h.syncRules()
	err := h.eng.Restore(state, taken.UnixNano(), h.now().UnixNano())
	h.series.Set(float64(len(h.eng.series)))
	return err
}

// Replay feeds messages handled before, after the restored checkpoint
// (kafkaio.Checkpointer): the engine's state moves exactly as Handle moved
// it, on the handler's clock, but nothing is published, written or
// counted, and no housekeeping runs.
func (h *handler) Replay(batch []kafka.Message) {
	h.syncRules()
	h.analyze(batch, h.now().UnixNano(), true)
}

// Idle looks for silent series while the partition has no traffic.
func (h *handler) Idle(ctx context.Context) error {
	h.syncRules()
	h.housekeep(h.now().UnixNano())
	return h.flush(ctx)
}

// syncRules hands the engine the rules last loaded, between batches.
func (h *handler) syncRules() {
	if b := h.rules.Load(); b != h.eng.book {
		h.eng.setRules(b)
	}
}

func (h *handler) housekeep(now int64) {
	h.checkedAt = now
	h.eng.Expire(now, &h.res)
	h.out.metrics.expired.Add(float64(h.eng.expired))
	h.out.metrics.untracked.Add(float64(h.eng.untracked))
	h.eng.expired, h.eng.untracked = 0, 0
	h.series.Set(float64(len(h.eng.series)))
}

// flush publishes the alert events, then writes forecasts and alerts to
// InfluxDB, waiting while it fails (see influx.Writer) until each is done
// or ctx ends. What InfluxDB refuses is dead-lettered, never dropped.
func (h *handler) flush(ctx context.Context) error {
	defer h.res.Reset()
	events := h.res.events
	if err := h.publish(ctx, events); err != nil {
		return err
	}
	// Only published events run actions. Submit never blocks, and runs an
	// event's actions once should a retried batch publish it again.
	if h.out.actions != nil && len(events) > 0 {
		h.out.actions.Submit(h.eng.book.set, events)
	}
	pts := h.res.points
	refused, err := h.out.writer.Write(ctx, pts)
	if err != nil {
		return err
	}
	err = influx.Runs(refused, func(run []influx.Refusal) error {
		h.buf = h.buf[:0]
		for _, r := range run {
			h.buf = point.AppendLine(h.buf, &pts[r.Index])
		}
		return h.out.deadLetter(ctx, h.buf, len(run), run[0].Err)
	})
	if err != nil || len(events) == 0 {
		return err
	}
	h.buf = h.buf[:0]
	for i := range events {
		h.buf = appendAlertLine(h.buf, h.out.measurement, &events[i])
	}
	if refused, err = h.out.writer.WriteLines(ctx, h.buf); err != nil {
		return err
	}
	return influx.Runs(refused, func(run []influx.Refusal) error {
		var lines []byte
		for _, r := range run {
			lines = appendAlertLine(lines, h.out.measurement, &events[r.Index])
		}
		return h.out.deadLetter(ctx, lines, len(run), run[0].Err)
	})
}

// publish sends events to the alert topic keyed by fingerprint, so every
// event of one alert lands on one partition in order.
func (h *handler) publish(ctx context.Context, events []alert.Event) error {
	if len(events) == 0 {
		return nil
	}
	h.msgs = h.msgs[:0]
	for i := range events {
		e := &events[i]
		v, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode alert %s: %w", e.Fingerprint, err)
		}
		// No Time: the writer stamps the publish time. The event time, in
		// the event, may lie years back (a backfill), and the topic's
		// time-based retention would delete the event at once.
		h.msgs = append(h.msgs, kafka.Message{Key: []byte(e.Fingerprint), Value: v,
			Headers: []kafka.Header{{Key: kafkaio.HeaderContentType, Value: []byte("application/json")}}})
		h.out.log.Info().Str("rule", e.Rule).Str("fingerprint", e.Fingerprint).Str("series", e.Series).
			Str("state", string(e.State)).Str("severity", e.Severity).Float64("value", e.Value).Msg("alert")
	}
	start := time.Now()
	err := retry.Do(ctx, h.out.backoff, func(ctx context.Context) error {
		return h.out.alerts.WriteMessages(ctx, h.msgs...)
	}, func(attempt int, delay time.Duration, err error) {
		h.out.metrics.retries.WithLabelValues("kafka").Inc()
		h.out.log.Warn().Err(err).Int("attempt", attempt).Stringer("retry_in", delay).Int("alerts", len(h.msgs)).Msg("alert publish failed; retrying")
	})
	if err != nil {
		return fmt.Errorf("publish %d alerts: %w", len(h.msgs), err)
	}
	h.out.metrics.publishSeconds.Observe(time.Since(start).Seconds())
	h.out.published.Add(int64(len(events)))
	for i := range events {
		h.out.metrics.alerts.WithLabelValues(string(events[i].State), events[i].Severity).Inc()
	}
	return nil
}

// deadLetter publishes n lines InfluxDB refused for one reason to the
// dead-letter topic, as one message.
func (o *output) deadLetter(ctx context.Context, lines []byte, n int, reason error) error {
	o.hotLog.Warn().Err(reason).Int("points", n).Msg("influxdb refused analyzer output; dead-lettering it")
	if err := o.dlq.PublishLines(ctx, lines, reason); err != nil {
		return err
	}
	o.metrics.refused.Add(float64(n))
	return nil
}

// appendAlertLine encodes e as one line of the alerts measurement: tags
// fingerprint, rule, severity and state; numeric fields value, threshold,
// expected, score (line protocol by package point), then the fields the
// point model has no type for: firing (bool), series and summary (strings,
// the Grafana annotation text). Its time is the event time.
func appendAlertLine(b []byte, measurement string, e *alert.Event) []byte {
	p := point.Point{Measurement: measurement, Fields: []point.Field{{Key: "value", Value: e.Value}}}
	for _, t := range [...]point.Tag{{Key: "fingerprint", Value: e.Fingerprint}, {Key: "rule", Value: e.Rule},
		{Key: "severity", Value: e.Severity}, {Key: "state", Value: string(e.State)}} { // sorted by key
		if t.Value != "" {
			p.Tags = append(p.Tags, t)
		}
	}
	for _, f := range [...]struct {
		k string
		v *float64
	}{{"threshold", e.Threshold}, {"expected", e.Expected}, {"score", e.Score}} {
		if f.v != nil {
			p.Fields = append(p.Fields, point.Field{Key: f.k, Value: *f.v})
		}
	}
	b = point.AppendLine(b, &p) // without a time: it comes after the string fields
	b = b[:len(b)-1]
	b = append(b, ",firing="...)
	b = strconv.AppendBool(b, e.State == alert.Firing)
	b = append(b, ",series="...)
	b = appendLPString(b, e.Series)
	b = append(b, ",summary="...)
	b = appendLPString(b, e.Summary)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.EventTime.UnixNano(), 10)
	return append(b, '\n')
}

// appendLPString quotes s as a line-protocol string field.
func appendLPString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}
