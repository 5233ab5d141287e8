package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/service"
)

// countingSink counts the points it acknowledges. Like client.Producer's
// SendBatch it encodes each batch into one buffer first, so that a test
// measuring memory sees what the real sink costs per batch.
type countingSink struct {
	points  atomic.Int64
	batches atomic.Int64
}

func (s *countingSink) Send(ctx context.Context, p point.Point) error {
	return s.SendBatch(ctx, []point.Point{p})
}

func (s *countingSink) SendBatch(_ context.Context, pts []point.Point) error {
	var buf []byte
	for i := range pts {
		buf, _ = point.AppendLineKeyed(buf, &pts[i])
	}
	s.points.Add(int64(len(pts)))
	s.batches.Add(1)
	return nil
}

// countingReader counts the bytes read through it and, once abort is set,
// fails every read: a test that already failed stops the requests it sent.
type countingReader struct {
	r     io.Reader
	n     atomic.Int64
	abort *atomic.Bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.abort != nil && c.abort.Load() {
		return 0, errors.New("test aborted")
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// heapInUse samples the heap's in-use bytes (MemStats.HeapInuse, read
// without stopping the world) every millisecond and records the peak.
type heapInUse struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func sampleHeap(over uint64, onOver func()) *heapInUse {
	h := &heapInUse{stop: make(chan struct{}), done: make(chan struct{})}
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(samples)
			v := samples[0].Value.Uint64() + samples[1].Value.Uint64()
			if v > h.peak.Load() {
				h.peak.Store(v)
			}
			if v > over {
				onOver()
			}
			select {
			case <-tick.C:
			case <-h.stop:
				return
			}
		}
	}()
	return h
}

func (h *heapInUse) finish() uint64 {
	close(h.stop)
	<-h.done
	return h.peak.Load()
}

// bombLines is how many "a v=1\n" lines fit the default body limit: 25 MiB
// of them, 4.4 M points, gzip to a few tens of KB.
const bombLines = defaultMaxBodyBytes / len("a v=1\n")

// TestWriteMemoryStaysBounded is the gzip bomb of issue 13: one 38 KB
// request of 25 MiB of "a v=1\n" took 458 MiB of heap, and the producer's
// pod has 256 Mi. Twenty of them and a plain 25 MiB body at once must keep
// the heap under 256 MiB; every request the budget admits is written
// entirely, the others are told to retry.
func TestWriteMemoryStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 35 M points")
	}
	const limit = 256 << 20
	plain := bytes.Repeat([]byte("a v=1\n"), bombLines)
	bomb := gz(t, plain)
	t.Logf("bomb: %d bytes gzipped, %d after gunzip", len(bomb), len(plain))
	s := &countingSink{}
	// The point cap is raised: this test is about memory, not the cap.
	h := newTestHandler(t, writeConfig{MaxBodyBytes: defaultMaxBodyBytes, MaxPoints: 2 * bombLines}, s, nil)

	var abort atomic.Bool
	heap := sampleHeap(limit, func() { abort.Store(true) })
	type result struct {
		code       int
		retryAfter string
		body       string
	}
	results := make([]result, 21)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			body, header := bomb, map[string]string{"Content-Encoding": "gzip"}
			if i == len(results)-1 {
				body, header = plain, nil
			}
			r := httptest.NewRequest(http.MethodPost, "/api/v2/write", &countingReader{r: bytes.NewReader(body), abort: &abort})
			r.ContentLength = int64(len(body))
			for k, v := range header {
				r.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			results[i] = result{rec.Code, rec.Header().Get("Retry-After"), rec.Body.String()}
		})
	}
	wg.Wait()
	peak := heap.finish()
	t.Logf("peak heap in use %.1f MiB; %d points in %d batches", float64(peak)/(1<<20), s.points.Load(), s.batches.Load())
	if peak > limit {
		t.Fatalf("peak heap in use %.1f MiB, want under %d MiB", float64(peak)/(1<<20), limit>>20)
	}
	var accepted int64
	for i, r := range results {
		switch {
		case r.code == http.StatusNoContent:
			accepted++
		case (r.code == http.StatusTooManyRequests || r.code == http.StatusServiceUnavailable) && r.retryAfter != "":
		default:
			t.Errorf("request %d: status %d, Retry-After %q, body %s; want 204, or 429/503 with Retry-After", i, r.code, r.retryAfter, strings.TrimSpace(r.body))
		}
	}
	// 64 MiB of budget at 8 MiB for each request of unknown decoded size.
	if accepted < 8 {
		t.Errorf("%d requests accepted, want at least 8", accepted)
	}
	if got, want := s.points.Load(), accepted*int64(bombLines); got != want {
		t.Errorf("%d points acknowledged, want %d: all of the %d accepted requests and none of the others", got, want, accepted)
	}
}

// TestWritePointCapStopsDecoding: a body over --max-points-per-request
// fails as soon as the cap is passed, without reading the rest of it.
func TestWritePointCapStopsDecoding(t *testing.T) {
	const maxPoints = 100_000
	body := bytes.Repeat([]byte("a v=1\n"), bombLines)
	s := &countingSink{}
	h := newTestHandler(t, writeConfig{MaxBodyBytes: defaultMaxBodyBytes, MaxPoints: maxPoints}, s, nil)
	cr := &countingReader{r: bytes.NewReader(body)}
	r := httptest.NewRequest(http.MethodPost, "/api/v2/write", cr)
	r.ContentLength = int64(len(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d %s, want 413", rec.Code, rec.Body)
	}
	if e := decodeAPIError(t, rec); e.Code != "request too large" || !strings.Contains(e.Message, "100000") {
		t.Fatalf("error %+v, want code request too large naming the limit 100000", e)
	}
	if n := s.points.Load(); n > maxPoints {
		t.Fatalf("%d points written, more than the cap of %d", n, maxPoints)
	}
	// The cap is passed after 600 kB of lines; chunks are at most 1 MiB.
	if n := cr.n.Load(); n > 2<<20 {
		t.Fatalf("%d of %d bytes read: decoding went on past the cap", n, len(body))
	}
}

// holdSink is a countingSink that holds a batch of measurement "hold"
// until release is closed, after closing entered.
type holdSink struct {
	countingSink
	entered, release chan struct{}
}

func (s *holdSink) SendBatch(ctx context.Context, pts []point.Point) error {
	if pts[0].Measurement == "hold" {
		close(s.entered)
		<-s.release
	}
	return s.countingSink.SendBatch(ctx, pts)
}

func TestWriteOverBudgetIsRefused(t *testing.T) {
	s := &holdSink{entered: make(chan struct{}), release: make(chan struct{})}
	// Room for one request of unknown size and a few small ones.
	h := newTestHandler(t, writeConfig{MaxInflightBytes: requestReserve + 1<<20}, s, nil)
	gzipped := map[string]string{"Content-Encoding": "gzip"}
	held := make(chan int, 1)
	go func() {
		held <- serve(h, req{target: "/api/v2/write", body: gz(t, []byte("hold v=1 1\n")), header: gzipped}).Code
	}()
	<-s.entered
	if n := h.budget.inUse(); n != requestReserve {
		t.Fatalf("a gzipped request holds %d bytes, want %d", n, requestReserve)
	}

	rec := serve(h, req{target: "/api/v2/write", body: gz(t, []byte("m v=1 1\n")), header: gzipped})
	if e := decodeAPIError(t, rec); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" ||
		e.Code != "too many requests" || !strings.Contains(e.Message, "--max-inflight-bytes") {
		t.Fatalf("second gzipped request: status %d, Retry-After %q, body %s; want 429, 1, naming --max-inflight-bytes", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	// A small plain body takes what its length needs, and fits.
	if rec := serve(h, req{target: "/write", body: []byte("m v=1 1\n")}); rec.Code != http.StatusNoContent {
		t.Fatalf("small plain request: status %d %s, want 204", rec.Code, rec.Body)
	}
	if n := counterValue(t, h.requests.WithLabelValues("429")); n != 1 {
		t.Fatalf("requests_total{code=429} %v, want 1", n)
	}

	close(s.release)
	if code := <-held; code != http.StatusNoContent {
		t.Fatalf("held request: status %d, want 204", code)
	}
	if rec := serve(h, req{target: "/api/v2/write", body: gz(t, []byte("m v=1 1\n")), header: gzipped}); rec.Code != http.StatusNoContent {
		t.Fatalf("gzipped request after the release: status %d %s, want 204", rec.Code, rec.Body)
	}
	if n := h.budget.inUse(); n != 0 || s.points.Load() != 3 {
		t.Fatalf("%d bytes still held, %d points written; want 0, 3", n, s.points.Load())
	}
}

func TestWritePlan(t *testing.T) {
	f := func(budget, length int64, gzipped bool, want readPlan) {
		t.Helper()
		h := newTestHandler(t, writeConfig{MaxBodyBytes: defaultMaxBodyBytes, MaxInflightBytes: budget}, &countingSink{}, nil)
		if got := h.plan(length, gzipped); got != want {
			t.Fatalf("budget %d, length %d, gzip %v: plan %+v, want %+v", budget, length, gzipped, got, want)
		}
	}
	const full, buf = requestReserve, requestReserve / 8
	unknown := readPlan{reserve: full, buf: 64 << 10, bufMax: buf, maxCost: full - requestOverhead - 2*buf}
	f(0, -1, false, unknown)    // chunked
	f(0, 100, true, unknown)    // gzip: any size after gunzip
	f(0, 30<<10, true, unknown) // gzip: the length is the compressed one
	f(0, 100, false, readPlan{reserve: requestOverhead + 101 + 196*101, buf: 101, bufMax: 101, maxCost: 196 * 101})
	f(0, 42<<10, false, readPlan{reserve: full, buf: 42<<10 + 1, bufMax: buf, maxCost: unknown.maxCost}) // its worst case is more than the full share
	f(0, 5<<20, false, unknown)                                                                          // longer than the buffer
	// A budget under 8 MiB is one request's share, and shortens lines.
	f(2<<20, -1, false, readPlan{reserve: 2 << 20, buf: 64 << 10, bufMax: 256 << 10, maxCost: 2<<20 - requestOverhead - 512<<10})
}

func TestWritePartialWriteNamesLines(t *testing.T) {
	// 100,000 lines are several chunks: the ones before the bad line's
	// chunk are written, and the answer says which.
	good := strings.Repeat("a v=1 1\n", 100_000)
	body := good + "a v=oops 2\n" + good
	_, wantErr := wholeBody([]byte(body))
	s := &countingSink{}
	rec := serve(newTestHandler(t, writeConfig{MaxBodyBytes: defaultMaxBodyBytes}, s, nil), req{target: "/api/v2/write", body: []byte(body)})
	n := s.points.Load()
	if want := fmt.Sprintf("%s; partial write: the %d points on lines 1 to %d were written", wantErr, n, n); rec.Code != http.StatusBadRequest || decodeAPIError(t, rec).Message != want {
		t.Fatalf("status %d %s, want 400 %q", rec.Code, rec.Body, want)
	}
	if n == 0 || n >= 100_000 {
		t.Fatalf("%d points written, want those of the chunks before line 100,001", n)
	}

	// Over the point cap: the chunks under it are written.
	s = &countingSink{}
	rec = serve(newTestHandler(t, writeConfig{MaxBodyBytes: defaultMaxBodyBytes, MaxPoints: 50_000}, s, nil), req{target: "/api/v2/write", body: []byte(good)})
	n = s.points.Load()
	if want := fmt.Sprintf("more than 50000 points, the limit per request; partial write: the %d points on lines 1 to %d were written", n, n); rec.Code != http.StatusRequestEntityTooLarge || decodeAPIError(t, rec).Message != want {
		t.Fatalf("status %d %s, want 413 %q", rec.Code, rec.Body, want)
	}
	if n == 0 || n > 50_000 {
		t.Fatalf("%d points written, want some, at most 50,000", n)
	}
}

func TestWarnUnauthenticated(t *testing.T) {
	f := func(ip string, token service.Secret, warn bool) {
		t.Helper()
		var buf bytes.Buffer
		warnUnauthenticated(zerolog.New(&buf), &net.TCPAddr{IP: net.ParseIP(ip), Port: 8186}, token)
		if got := strings.Count(buf.String(), `"level":"warn"`); got != map[bool]int{false: 0, true: 1}[warn] {
			t.Fatalf("%s, token %v: logged %q, want a warning: %v", ip, token != "", buf.String(), warn)
		}
	}
	f("127.0.0.1", "", false)
	f("127.0.0.2", "", false)
	f("::1", "", false)
	f("0.0.0.0", "", true)
	f("::", "", true)
	f("10.1.2.3", "", true)
	f("0.0.0.0", "s3cret", false)
	f("10.1.2.3", "s3cret", false)
}
