package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/retry"
)

// captured is what the handlers under test published and wrote: alert
// events (their JSON, as on the alert topic) and InfluxDB lines, in order.
type captured struct {
	mu    sync.Mutex
	lines []string
}

func (c *captured) add(s ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, s...)
}

// take returns what was captured since the last take.
func (c *captured) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lines
	c.lines = nil
	return l
}

// WriteMessages is the alert topic.
func (c *captured) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	for _, m := range msgs {
		c.add(fmt.Sprintf("alert %s %s", m.Key, m.Value))
	}
	return nil
}

// testOutput is an output to c: InfluxDB is an HTTP server that accepts
// every line.
func testOutput(t *testing.T, c *captured, reg *prometheus.Registry) *output {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
			c.add("influx " + l)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	sink, err := influx.NewSink(influx.Config{URL: srv.URL, Bucket: "db", BatchSize: 100_000, FlushInterval: time.Second, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sink.Close)
	return &output{alerts: c, writer: influx.NewWriter(sink, zerolog.Nop(), reg, "analyzer"), measurement: "metricpipe_alerts",
		backoff: retry.DefaultBackoff(), metrics: newMetrics(reg), log: zerolog.Nop(), hotLog: zerolog.Nop()}
}

// testHandler is a partition's handler as run builds it, on the clock
// *now.
func testHandler(t *testing.T, out *output, a *analysis, rulesYAML string, now *atomic.Int64) *handler {
	t.Helper()
	eng := testEngine(t, a, rulesYAML).engine
	var book atomic.Pointer[ruleBook]
	book.Store(eng.book)
	return &handler{out: out, dec: point.Decoder{Alias: true}, eng: eng, rules: &book,
		now:    func() time.Time { return time.Unix(0, now.Load()) },
		series: prometheus.NewGauge(prometheus.GaugeOpts{Name: "series"})}
}

// synthMessages puts the synthetic stream in messages of three points;
// every 10th message leaves its points' time to the message's, and one
// does not decode.
func synthMessages() (msgs []kafka.Message, firstPoint []int) {
	pts := synthStream(5, 900)
	for i := 0; i < len(pts); i += 3 {
		var v []byte
		m := kafka.Message{Offset: int64(len(msgs)), Time: time.Unix(0, pts[i].Time)}
		for j := i; j < min(i+3, len(pts)); j++ {
			p := pts[j]
			if len(msgs)%10 == 9 && j == i {
				p.Time = 0 // stamped with the message's time
			}
			v = point.AppendLine(v, &p)
		}
		if len(msgs) == 77 {
			v = []byte("app,host=h0 lat=oops 1\n")
		}
		m.Value = v
		msgs = append(msgs, m)
		firstPoint = append(firstPoint, i)
	}
	return msgs, firstPoint
}

// batchBounds cuts n messages into batches of varied sizes, with a bound
// at each of cuts.
func batchBounds(n int, cuts ...int) []int {
	sizes := []int{1, 7, 20, 3, 50, 2}
	slices.Sort(cuts)
	bounds := []int{0}
	for i, at := 0, 0; at < n; i++ {
		at = min(at+sizes[i%len(sizes)], n)
		for _, c := range cuts {
			if c > bounds[len(bounds)-1] && c < at {
				bounds = append(bounds, c)
			}
		}
		bounds = append(bounds, at)
	}
	return bounds
}

// TestHandlerCheckpointRestore is issue 14's analyzer crash at handler
// level: a handler checkpoints after message k, dies after handling (and
// writing) up to message c ≥ k; a new handler restores the checkpoint,
// replays [k, c) and handles the rest. Every alert event it publishes and
// every line it writes (forecasts with their bands and scores, alerts) is
// byte for byte what the handler that never died published and wrote for
// the same messages. The replay publishes, writes and counts nothing.
func TestHandlerCheckpointRestore(t *testing.T) {
	msgs, firstPoint := synthMessages()
	a := synthAnalysis()
	// The splits are clear of h2's silence (messages 1083 to 1350): replay
	// runs no housekeeping, so an absence alert pending or firing while
	// messages are replayed would move (see Replay); splits inside it
	// replay nothing.
	splits := [][2]int{{0, 0}, {0, 25}, {10, 40}, {300, 333}, {700, 1000}, {1100, 1100}, {1200, 1200}, {1360, 1400}, {len(msgs) - 1, len(msgs)}}
	var cuts []int
	for _, s := range splits {
		cuts = append(cuts, s[0], s[1])
	}
	bounds := batchBounds(len(msgs), cuts...)
	// The clock of a batch: its first point's arrival. Batches are more
	// than a second apart, so every Handle runs the housekeeping.
	clockAt := func(msg int) int64 { return arrival(firstPoint[min(msg, len(msgs)-1)]) }

	var ref captured
	var clock atomic.Int64
	h := testHandler(t, testOutput(t, &ref, prometheus.NewRegistry()), a, synthRules, &clock)
	want := map[int][]string{} // by first message of the batch
	for b := 1; b < len(bounds); b++ {
		clock.Store(clockAt(bounds[b-1]))
		if err := h.Handle(t.Context(), msgs[bounds[b-1]:bounds[b]]); err != nil {
			t.Fatal(err)
		}
		want[bounds[b-1]] = ref.take()
	}
	var all []string
	for _, w := range want {
		all = append(all, w...)
	}
	if joined := strings.Join(all, "\n"); strings.Count(joined, "alert ") < 50 || !strings.Contains(joined, `"rule":"silent","state":"firing"`) {
		t.Fatalf("%d alert events, absence firing %v: the stream should fire the rules more", strings.Count(joined, "alert "), strings.Contains(joined, `"rule":"silent"`))
	}

	for _, s := range splits {
		k, c := s[0], s[1]
		var before, after captured
		reg := prometheus.NewRegistry()
		h := testHandler(t, testOutput(t, &before, prometheus.NewRegistry()), a, synthRules, &clock)
		var state []byte
		var taken time.Time
		if k == 0 {
			state, taken = h.Checkpoint(nil), time.Unix(0, clockAt(0))
		}
		for b := 1; b < len(bounds) && bounds[b-1] < c; b++ {
			clock.Store(clockAt(bounds[b-1]))
			if err := h.Handle(t.Context(), msgs[bounds[b-1]:bounds[b]]); err != nil {
				t.Fatal(err)
			}
			if bounds[b] == k { // between batches, as the group consumer does
				state, taken = h.Checkpoint(nil), time.Unix(0, clock.Load())
			}
		}
		if state == nil {
			t.Fatalf("split %d/%d: no checkpoint taken", k, c)
		}
		// kill -9; a new handler is assigned the partition.
		out := testOutput(t, &after, reg)
		r := testHandler(t, out, a, synthRules, &clock)
		if err := r.Restore(state, taken); err != nil {
			t.Fatalf("split %d/%d: %v", k, c, err)
		}
		for b := 1; b < len(bounds) && bounds[b-1] < c; b++ {
			if bounds[b-1] >= k {
				clock.Store(clockAt(bounds[b-1]))
				r.Replay(msgs[bounds[b-1]:bounds[b]])
			}
		}
		if got := after.take(); len(got) > 0 || counterValue(out.metrics.points) != 0 || counterValue(out.metrics.undecodable) != 0 {
			t.Fatalf("split %d/%d: the replay published or wrote %d lines, counted %v points and %v undecodable messages",
				k, c, len(got), counterValue(out.metrics.points), counterValue(out.metrics.undecodable))
		}
		compared := 0
		for b := 1; b < len(bounds); b++ {
			if bounds[b-1] < c {
				continue
			}
			clock.Store(clockAt(bounds[b-1]))
			if err := r.Handle(t.Context(), msgs[bounds[b-1]:bounds[b]]); err != nil {
				t.Fatal(err)
			}
			got := after.take()
			if first, n := firstDiff(got, want[bounds[b-1]]); n > 0 {
				t.Fatalf("split %d/%d, batch at message %d: %d of %d lines differ from the uninterrupted run; first %s",
					k, c, bounds[b-1], n, len(want[bounds[b-1]]), first)
			}
			compared += len(got)
		}
		t.Logf("split at %d, replayed to %d: %d lines identical", k, c, compared)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// stampedWriter records the Kafka timestamps of the alert messages.
type stampedWriter struct{ times []time.Time }

func (w *stampedWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	for _, m := range msgs {
		w.times = append(w.times, m.Time)
	}
	return nil
}

// TestAlertMessagesCarryPublishTime: an alert event's Kafka timestamp is
// when it was published, not its event time. Alerts of a backfill or a
// replay of old data have event times years ago; with those as timestamps,
// the alert topic's time-based retention deletes them at once, and
// `alerts tail --since` never finds them.
func TestAlertMessagesCarryPublishTime(t *testing.T) {
	msgs, _ := synthMessages()
	var clock atomic.Int64
	var c captured
	out := testOutput(t, &c, prometheus.NewRegistry())
	w := &stampedWriter{}
	out.alerts = w
	h := testHandler(t, out, synthAnalysis(), synthRules, &clock)
	start := time.Now()
	for i := 0; i < len(msgs); i += 50 {
		clock.Store(time.Now().UnixNano())
		if err := h.Handle(t.Context(), msgs[i:min(i+50, len(msgs))]); err != nil {
			t.Fatal(err)
		}
	}
	if len(w.times) == 0 {
		t.Fatal("no alert published: the stream does not exercise the timestamps")
	}
	for _, ts := range w.times {
		if !ts.IsZero() && ts.Before(start) { // zero: the writer stamps it when it sends it
			t.Fatalf("an alert message stamped %s, before it was published (%s)", ts, start)
		}
	}
}
