package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/movavg"
)

// TestHandlerDeadLettersOnlyWhatInfluxDBRefuses: InfluxDB refuses the
// moving average of one series (its field already holds strings) and every
// point of another. The first series' raw points are still written and
// only its averages are dead-lettered; the other's message is
// dead-lettered naming its refused point; every other point is written.
func TestHandlerDeadLettersOnlyWhatInfluxDBRefuses(t *testing.T) {
	var mu sync.Mutex
	var accepted []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		for _, l := range lines {
			if strings.Contains(l, "s=evil") || (strings.Contains(l, "s=avg") && strings.Contains(l, "v_sma")) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"code":"invalid","message":"partial write: field type conflict"}`)
				return
			}
		}
		mu.Lock()
		accepted = append(accepted, lines...)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	kc := kafkaio.Config{Brokers: cluster.ListenAddrs(), ClientID: "test"}
	dlq, err := kafkaio.NewDeadLetters(kc, "dlq", "consumer")
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	sink, err := influx.NewSink(influx.Config{URL: srv.URL, Bucket: "db/rp", BatchSize: 100, FlushInterval: time.Second, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	reg := prometheus.NewRegistry()
	out := &output{writer: influx.NewWriter(sink, zerolog.Nop(), reg, "consumer"), dlq: dlq, metrics: newMetrics(reg), log: zerolog.Nop(), hotLog: zerolog.Nop()}
	h, err := newHandler(out, movavg.Config{Default: movavg.Params{SMAWindow: 2}, MaxSeries: 100}, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	msg := func(offset int64, value string) kafka.Message {
		return kafka.Message{Topic: "metrics", Offset: offset, Value: []byte(value), Time: time.Unix(0, 5)}
	}
	batch := []kafka.Message{
		msg(0, "m,s=avg v=1 1\nm,s=ok v=1 1"),
		msg(1, "m,s=avg v=2 2\nm,s=ok v=3 2"), // both get v_sma: s=avg's is refused
		msg(2, "m,s=evil v=5 2\nm,s=ok v=5 3"),
	}
	if err := h.Handle(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	slices.Sort(accepted)
	accepted = slices.Compact(accepted)
	want := []string{"m,s=avg v=1 1", "m,s=avg v=2 2", "m,s=ok v=1 1", "m,s=ok v=3,v_sma=2 2", "m,s=ok v=5,v_sma=4 3"}
	if !slices.Equal(accepted, want) {
		t.Errorf("written\n%q\nwant\n%q", accepted, want)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: kc.Brokers, Topic: "dlq", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var letters []string
	for range 2 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("after %q: %v", letters, err)
		}
		letters = append(letters, strings.TrimSpace(string(m.Value))+" | "+kafkaio.HeaderValue(&m, kafkaio.HeaderError))
	}
	if !strings.HasPrefix(letters[0], "m,s=avg v_sma=1.5 2 | ") || !strings.Contains(letters[0], "field type conflict") {
		t.Errorf("first dead letter %q, want s=avg's refused average with its reason", letters[0])
	}
	if !strings.HasPrefix(letters[1], "m,s=evil v=5 2\nm,s=ok v=5 3 | point 1 of 2: ") {
		t.Errorf("second dead letter %q, want the whole message naming its refused point 1 of 2", letters[1])
	}
}

// recordingOutput is an output whose InfluxDB is a test server recording
// the lines it accepts, in order. Nothing may be dead-lettered.
func recordingOutput(t *testing.T) (*output, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var lines []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		lines = append(lines, strings.Split(strings.TrimSpace(string(body)), "\n")...)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	sink, err := influx.NewSink(influx.Config{URL: srv.URL, Bucket: "db/rp", BatchSize: 10_000, FlushInterval: time.Second, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	reg := prometheus.NewRegistry()
	out := &output{writer: influx.NewWriter(sink, zerolog.Nop(), reg, "consumer"), metrics: newMetrics(reg), log: zerolog.Nop(), hotLog: zerolog.Nop()}
	return out, func() []string {
		mu.Lock()
		defer mu.Unlock()
		got := slices.Clone(lines)
		lines = lines[:0]
		return got
	}
}

// yearsApartBatches returns batches of messages, one point each, of series
// whose times lie years apart (2011, 2013, 2015) interleaved, a series that
// stops after the 5th batch, to be flushed and forgotten by processing
// time, and one that pauses from the 5th to the 15th batch (ten seconds of
// processing time each), to be flushed but not forgotten.
func yearsApartBatches() [][]kafka.Message {
	starts := []int64{
		time.Date(2011, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano(),
		time.Date(2013, 7, 9, 12, 0, 0, 0, time.UTC).UnixNano(),
		time.Date(2015, 1, 20, 6, 0, 0, 0, time.UTC).UnixNano(),
	}
	var batches [][]kafka.Message
	offset := int64(0)
	for b := range 40 {
		var batch []kafka.Message
		for i := range 12 {
			n := b*12 + i
			s := n % len(starts)
			line := fmt.Sprintf("disk,host=h%d used=%d,io=%d %d", s, n%37, n%11, starts[s]+int64(n/3)*int64(7*time.Second))
			if b < 5 && i%4 == 0 {
				line += fmt.Sprintf("\nnet,host=z rx=%d %d", n%13, starts[0]+int64(n)*int64(time.Second))
			}
			if (b < 5 || b >= 15) && i == 1 { // pauses for 100 s: flushed, not forgotten
				line += fmt.Sprintf("\nnet,host=y rx=%d %d", n%7, starts[1]+int64(b)*int64(10*time.Second))
			}
			batch = append(batch, kafka.Message{Topic: "metrics", Offset: offset, Value: []byte(line), Time: time.Unix(1_700_000_000, 0)})
			offset++
		}
		batches = append(batches, batch)
	}
	return batches
}

// TestHandlerCheckpointRestoreWritesTheSame: a handler checkpointed after
// batch k, restored into a new handler after a downtime, that replays the
// batches handled after the checkpoint and handles the rest, writes exactly
// what an uninterrupted handler writes.
func TestHandlerCheckpointRestoreWritesTheSame(t *testing.T) {
	cfg := movavg.Config{
		Default:         movavg.Params{SMAWindow: 5, EMAAlpha: 0.3, WMAWeights: []float64{0.5, 0.3, 0.2}, Rollup: time.Minute},
		AllowedLateness: 10 * time.Second,
		MaxSeries:       100,
		IdleFlush:       30 * time.Second,
		IdleTimeout:     2 * time.Minute,
	}
	batches := yearsApartBatches()
	base := time.Unix(1_700_000_000, 0)
	// Processing time: ten seconds per batch, plus the downtime.
	newAt := func(t *testing.T, out *output, clock *time.Time) *handler {
		h, err := newHandler(out, cfg, time.Hour, 0)
		if err != nil {
			t.Fatal(err)
		}
		h.now = func() time.Time { return *clock }
		return h
	}
	handle := func(t *testing.T, h *handler, clock *time.Time, from, to int, shift time.Duration) {
		for b := from; b < to; b++ {
			*clock = base.Add(time.Duration(b)*10*time.Second + shift)
			if err := h.Handle(t.Context(), batches[b]); err != nil {
				t.Fatal(err)
			}
		}
	}

	out, written := recordingOutput(t)
	var clock time.Time
	ref := newAt(t, out, &clock)
	handle(t, ref, &clock, 0, len(batches), 0)
	want := written()
	if st := ref.stage.Stats(); st.Expired == 0 || !slices.ContainsFunc(want, func(l string) bool { return strings.Contains(l, "net,host=z rx_count=") }) {
		t.Fatalf("scenario does not exercise idle flush and expiry: %+v", st)
	}

	// After 5 to 7 batches the net series is quiet, not yet flushed (at 8).
	for _, k := range []int{1, 4, 5, 6, 7, 9, 20, 39} {
		for _, replay := range []int{0, 1, 3} {
			t.Run(fmt.Sprintf("checkpoint after %d, %d replayed", k, replay), func(t *testing.T) {
				var clock time.Time
				a := newAt(t, out, &clock)
				handle(t, a, &clock, 0, k, 0)
				taken := clock
				cp := a.Checkpoint(nil)
				resume := min(k+replay, len(batches))
				handle(t, a, &clock, k, resume, 0) // handled, then the process dies
				got := written()

				const downtime = time.Hour
				b := newAt(t, out, &clock)
				clock = taken.Add(downtime)
				if err := b.Restore(cp, taken); err != nil {
					t.Fatal(err)
				}
				// Replay stamps the series it feeds active at the processing
				// time it runs at, which drives the idle flush: pinned here to
				// when the batches were first handled (shifted by the
				// downtime), so that everything else is compared bit for bit.
				for i, batch := range batches[k:resume] {
					clock = base.Add(time.Duration(k+i)*10*time.Second + downtime)
					b.Replay(batch)
				}
				if w := written(); len(w) != 0 {
					t.Fatalf("Replay wrote %q", w)
				}
				handle(t, b, &clock, resume, len(batches), downtime)
				got = append(got, written()...)
				// A flush the dead handler did after the checkpoint is done
				// again after the restore (Replay does no housekeeping): the
				// same rollup line twice, which InfluxDB stores once. What
				// InfluxDB holds must be the same, line for line.
				if g, w := stored(got), stored(want); !maps.Equal(g, w) {
					for k, v := range w {
						if g[k] != v {
							t.Errorf("%s = %q stored, want %q", k, g[k], v)
						}
					}
					t.Fatalf("%d values stored, want %d", len(g), len(w))
				}
				if g, w := distinct(got), distinct(want); !slices.Equal(g, w) {
					t.Fatalf("%d distinct lines written, want %d:\n%q\n%q", len(g), len(w), g, w)
				}
			})
		}
	}
}

// stored returns what InfluxDB holds after lines (simple line protocol, no
// spaces or commas in keys or values): series, time and field → value, the
// last write winning.
func stored(lines []string) map[string]string {
	m := map[string]string{}
	for _, l := range lines {
		parts := strings.Split(l, " ")
		for _, f := range strings.Split(parts[1], ",") {
			k, v, _ := strings.Cut(f, "=")
			m[parts[0]+" "+parts[2]+" "+k] = v
		}
	}
	return m
}

func distinct(lines []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(lines)))
}
