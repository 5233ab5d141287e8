package influx

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
	"github.com/rs/zerolog"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/service"
)

func newTestWriter(t *testing.T, url, bucket string, batch int) (*Writer, *prometheus.Registry) {
	t.Helper()
	cfg := testConfig(url, bucket)
	cfg.BatchSize = batch
	s, err := NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	reg := prometheus.NewRegistry()
	w := NewWriter(s, zerolog.Nop(), reg, "test")
	w.backoff = retry.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}
	return w, reg
}

// gauge returns the value of the unlabelled gauge name in reg.
func gauge(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func pointsNamed(names ...string) []point.Point {
	pts := make([]point.Point, len(names))
	for i, n := range names {
		pts[i] = point.Point{Measurement: n, Fields: []point.Field{{Key: "v", Value: float64(i)}}, Time: int64(i + 1)}
	}
	return pts
}

// TestWriterIsolatesRefusedPoints: InfluxDB refuses every request holding
// a "bad" point (400, as 1.8 answers a field type conflict). The writer
// returns exactly the bad points and writes every other one.
func TestWriterIsolatesRefusedPoints(t *testing.T) {
	var mu sync.Mutex
	accepted := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), "bad") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"code":"invalid","message":"partial write: field type conflict"}`)
			return
		}
		mu.Lock()
		for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
			accepted[l[:strings.IndexByte(l, ' ')]] = true
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	f := func(batch int, names ...string) {
		t.Helper()
		clear(accepted)
		w, _ := newTestWriter(t, srv.URL, "db/rp", batch)
		refused, err := w.Write(t.Context(), pointsNamed(names...))
		if err != nil {
			t.Fatal(err)
		}
		var got, want []int
		for _, r := range refused {
			got = append(got, r.Index)
			if CauseOf(r.Err) != Refused {
				t.Errorf("refusal %d: cause %s", r.Index, CauseOf(r.Err))
			}
		}
		for i, n := range names {
			if strings.HasPrefix(n, "bad") {
				want = append(want, i)
			} else if !accepted[n] {
				t.Errorf("batch %d: good point %s not written", batch, n)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("batch %d, %v: refused %v, want %v", batch, names, got, want)
		}
	}
	f(100, "a", "b", "c")
	f(100, "bad0")
	f(100, "a", "b", "bad2", "d", "e", "f", "g", "bad7", "i")
	f(3, "bad0", "b", "c", "d", "bad4", "bad5", "g")
	f(100, "bad0", "bad1", "bad2", "bad3")

	// A batch refused whole ("dropped=n" for all n points) is refused in
	// one request, as one run.
	requests := 0
	whole := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"code":"invalid","message":"partial write: field type conflict dropped=%d"}`, strings.Count(string(body), "\n"))
	}))
	defer whole.Close()
	w, _ := newTestWriter(t, whole.URL, "db/rp", 100)
	refused, err := w.Write(t.Context(), pointsNamed("a", "b", "c", "d", "e"))
	var runs int
	_ = Runs(refused, func(run []Refusal) error { runs++; return nil })
	if err != nil || len(refused) != 5 || requests != 1 || runs != 1 {
		t.Fatalf("whole batch refused: %d refusals in %d runs, %d requests, %v; want 5 in 1 run, 1 request", len(refused), runs, requests, err)
	}

	// Lines as well as points.
	clear(accepted)
	w, _ = newTestWriter(t, srv.URL, "db/rp", 100)
	refused, err = w.WriteLines(t.Context(), []byte("a v=1 1\nbad1 v=1 1\nc v=\"s\" 1\n"))
	if err != nil || len(refused) != 1 || refused[0].Index != 1 || !accepted["a"] || !accepted["c"] {
		t.Fatalf("WriteLines: refused %v, %v; accepted %v", refused, err, accepted)
	}
}

// TestWriterHoldsWhileTheSinkFails: a missing bucket (404), a refused token
// (401), throttling and 5xx are the sink's fault. The writer retries,
// refuses nothing, and its check names the cause and the fix until a write
// goes through.
func TestWriterHoldsWhileTheSinkFails(t *testing.T) {
	f := func(status int, message, wantInCheck string) {
		t.Helper()
		var calls, failFor atomic.Int32
		failFor.Store(1 << 30)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ping" {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if calls.Add(1) <= failFor.Load() {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				fmt.Fprintf(w, `{"code":"x","message":%q}`, message)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		w, reg := newTestWriter(t, srv.URL, "nosuchdb/autogen", 100)
		check := w.Check()
		done := make(chan error, 1)
		var refused []Refusal
		go func() {
			var err error
			refused, err = w.Write(t.Context(), pointsNamed("a", "b"))
			done <- err
		}()
		deadline := time.Now().Add(5 * time.Second)
		for calls.Load() < 5 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		err := check.Probe(t.Context())
		if err == nil || !strings.Contains(err.Error(), wantInCheck) {
			t.Errorf("HTTP %d: check = %v, want it to mention %q", status, err, wantInCheck)
		}
		if gauge(reg, "metricpipe_influx_sink_failing") != 1 {
			t.Errorf("HTTP %d: metricpipe_influx_sink_failing is not 1 while writes fail", status)
		}
		select {
		case err := <-done:
			t.Fatalf("HTTP %d: Write returned %v while the sink kept failing", status, err)
		default:
		}
		failFor.Store(calls.Load()) // the next attempt succeeds
		if err := <-done; err != nil || len(refused) != 0 {
			t.Fatalf("HTTP %d: Write = %v, refused %v; want success", status, err, refused)
		}
		if err := check.Probe(t.Context()); err != nil {
			t.Errorf("HTTP %d: check after recovery: %v", status, err)
		}
		if gauge(reg, "metricpipe_influx_sink_failing") != 0 {
			t.Errorf("HTTP %d: metricpipe_influx_sink_failing is not 0 after recovery", status)
		}
	}
	f(http.StatusNotFound, `database not found: "nosuchdb"`, "create it")
	f(http.StatusUnauthorized, "unauthorized access", "--influx-token")
	f(http.StatusForbidden, "insufficient permissions", "write access")
	f(http.StatusRequestEntityTooLarge, "request too large", "--influx-batch-size")
	f(http.StatusTooManyRequests, "slow down", "throttl")
	f(http.StatusServiceUnavailable, "unavailable", "unreachable or failing")
	f(http.StatusBadRequest, "Please provide either orgID or org", "--influx-org") // 2.x without --influx-org
}

// TestWriterStopsWithItsContext: a write held by a failing sink returns
// ctx's error when ctx ends, so a stop or a revocation is not stuck.
func TestWriterStopsWithItsContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	defer srv.Close()
	w, _ := newTestWriter(t, srv.URL, "db/rp", 100)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := w.Write(ctx, pointsNamed("a")); err == nil || ctx.Err() == nil {
		t.Fatalf("Write = %v before its context ended", err)
	}
}

// TestWriterOnRealInfluxDB: the classification holds for the real servers,
// 1.8 and 2.x: a missing bucket holds the write; a field type conflict
// refuses just the conflicting point while the rest of its batch is
// stored; on 2.x a token that may write to one bucket is all a writer
// needs, and one that may not is held, not refused.
func TestWriterOnRealInfluxDB(t *testing.T) {
	for _, db := range testbed.Influxes(t) {
		t.Run(db.Name, func(t *testing.T) {
			t.Logf("InfluxDB %s", db.Version(t))
			writer := func(bucket, token string) *Writer {
				w, _ := newTestWriter(t, db.URL, bucket, 100)
				if db.V2 {
					cfg := w.sink.cfg
					cfg.Org, cfg.Token = db.Org, service.Secret(token)
					s, err := NewSink(cfg)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(s.Close)
					w.sink = s
				}
				return w
			}
			held := func(w *Writer, wantInCheck string) {
				t.Helper()
				ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
				defer cancel()
				refused, err := w.Write(ctx, pointsNamed("m"))
				if cause := CauseOf(err); len(refused) != 0 || cause != Misconfigured {
					t.Fatalf("refused %v, err %v (cause %s); want held as misconfigured", refused, err, cause)
				}
				if err := w.Check().Probe(t.Context()); err == nil || !strings.Contains(err.Error(), wantInCheck) {
					t.Fatalf("check = %v, want it to mention %q", err, wantInCheck)
				}
			}
			held(writer(testbed.UniqueName("missing_")+"/autogen", db.Token), "create it")

			bucket := db.CreateBucket(t, testbed.UniqueName("writer_"))
			token := db.WriteToken(t, bucket) // 2.x: may write to bucket, nothing else
			w := writer(bucket, token)
			start := time.Now().Add(-time.Hour).UnixNano()
			if _, err := w.WriteLines(t.Context(), []byte(fmt.Sprintf("cpu,host=h0 state=\"up\" %d\n", start))); err != nil {
				t.Fatal(err)
			}
			pts := make([]point.Point, 50)
			for i := range pts {
				pts[i] = point.Point{Measurement: "cpu", Tags: []point.Tag{{Key: "host", Value: fmt.Sprintf("h%d", i)}},
					Fields: []point.Field{{Key: "usage", Value: float64(i)}}, Time: start + int64(i)}
			}
			pts[17].Fields = []point.Field{{Key: "state", Value: 1}} // conflicts with the string field
			refused, err := w.Write(t.Context(), pts)
			if err != nil || len(refused) != 1 || refused[0].Index != 17 {
				t.Fatalf("refused %v, %v; want point 17 alone", refused, err)
			}
			flux := fmt.Sprintf(`from(bucket: %q) |> range(start: -2h) |> filter(fn: (r) => r._field == "usage") |> group() |> count()`, bucket)
			if n, _, err := db.FluxInt(t.Context(), flux); err != nil || n != 49 {
				t.Fatalf("usage values stored = %d, %v; want the 49 others", n, err)
			}
			t.Logf("missing bucket held; type conflict refused point 17 alone: %v", refused[0].Err)
			if db.V2 {
				other := db.CreateBucket(t, testbed.UniqueName("other_"))
				held(writer(other, token), "write access")
			}
		})
	}
}
