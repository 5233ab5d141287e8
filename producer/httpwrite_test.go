package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/internal/clitest"
	"github.com/metricpipe/metricpipe/producer/client"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/service"
)

// fakeSink records the batches it acknowledges. err makes SendBatch fail;
// a non-nil release makes it wait for release (or ctx) first, after
// signalling entered.
type fakeSink struct {
	err     error
	entered chan struct{}
	release chan struct{}

	mu    sync.Mutex
	pts   []point.Point
	calls int
	log   *events
}

func (s *fakeSink) Send(ctx context.Context, p point.Point) error {
	return s.SendBatch(ctx, []point.Point{p})
}

func (s *fakeSink) SendBatch(ctx context.Context, pts []point.Point) error {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	if s.release != nil {
		close(s.entered)
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.err != nil {
		return s.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range pts {
		s.pts = append(s.pts, detach(p))
	}
	if s.log != nil {
		s.log.add("acked")
	}
	return nil
}

// detach copies p with its own strings: the handler reuses the memory of
// the points it sent.
func detach(p point.Point) point.Point {
	q := p.Clone()
	q.Measurement = strings.Clone(q.Measurement)
	for i := range q.Tags {
		q.Tags[i] = point.Tag{Key: strings.Clone(q.Tags[i].Key), Value: strings.Clone(q.Tags[i].Value)}
	}
	for i := range q.Fields {
		q.Fields[i].Key = strings.Clone(q.Fields[i].Key)
	}
	return q
}

// lines returns the acknowledged points in line protocol, one per line.
func (s *fakeSink) lines() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b []byte
	for i := range s.pts {
		b = point.AppendLine(b, &s.pts[i]) // ends with '\n'
	}
	return string(b)
}

// events is an ordered log shared by goroutines.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(s string) { e.mu.Lock(); e.list = append(e.list, s); e.mu.Unlock() }
func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.list...)
}

// counterValue reads a counter without client_golang's testutil, whose
// dependencies the module does not carry.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// received is the fixed receive time of the test handlers.
var received = time.Unix(1800000000, 123)

func newTestHandler(t *testing.T, cfg writeConfig, out sink, readyErr error) *writeHandler {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	h, err := newWriteHandler(cfg, out, func(context.Context) error { return readyErr }, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h.now = func() time.Time { return received }
	return h
}

type req struct {
	method, target string
	body           []byte
	header         map[string]string
	chunked        bool // no Content-Length, as a streaming client sends
}

func serve(h http.Handler, q req) *httptest.ResponseRecorder {
	if q.method == "" {
		q.method = http.MethodPost
	}
	r := httptest.NewRequest(q.method, q.target, bytes.NewReader(q.body))
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	if q.chunked {
		r.ContentLength = -1
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decodeAPIError(t *testing.T, rec *httptest.ResponseRecorder) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", rec.Body, err)
	}
	return e
}

func TestWriteAcceptsTelegrafBatch(t *testing.T) {
	const batch = "cpu,host=a,cpu=cpu0 usage_idle=99.5,usage_user=0.5 1700000000000000000\n" +
		"mem,host=a used=1024i,free=3u,available_percent=42.1,active=true 1700000000000000001\n" +
		"system,host=a uptime_format=\"1 day, 2:03\",load1=0.25 1700000000000000002\n" +
		"system,host=a uptime_format=\"only strings\" 1700000000000000003\n" +
		"# a comment\n" +
		"disk,path=/ used_percent=12 \n"
	const want = "cpu,cpu=cpu0,host=a usage_idle=99.5,usage_user=0.5 1700000000000000000\n" +
		"mem,host=a used=1024,free=3,available_percent=42.1,active=1 1700000000000000001\n" +
		"system,host=a load1=0.25 1700000000000000002\n" +
		"disk,path=/ used_percent=12 1800000000000000123\n" // no timestamp: receive time
	for _, target := range []string{"/api/v2/write?org=o&bucket=b", "/write?db=telegraf&rp=autogen"} {
		s := &fakeSink{}
		h := newTestHandler(t, writeConfig{}, s, nil)
		rec := serve(h, req{target: target, body: []byte(batch)})
		if rec.Code != http.StatusNoContent {
			t.Fatalf("%s: status %d %s, want 204", target, rec.Code, rec.Body)
		}
		if got := s.lines(); got != want {
			t.Fatalf("%s: acknowledged\n%s\nwant\n%s", target, got, want)
		}
		if n := counterValue(t, h.points); n != 4 {
			t.Fatalf("%s: points_total %v, want 4", target, n)
		}
		if n := counterValue(t, h.requests.WithLabelValues("204")); n != 1 {
			t.Fatalf("%s: requests_total{code=204} %v, want 1", target, n)
		}
	}
}

func TestWritePrecision(t *testing.T) {
	f := func(target string, ts, wantNS int64) {
		t.Helper()
		s := &fakeSink{}
		h := newTestHandler(t, writeConfig{}, s, nil)
		rec := serve(h, req{target: target, body: []byte("m v=1 " + strconv.FormatInt(ts, 10) + "\n")})
		if rec.Code != http.StatusNoContent {
			t.Fatalf("%s: status %d %s, want 204", target, rec.Code, rec.Body)
		}
		if len(s.pts) != 1 || s.pts[0].Time != wantNS {
			t.Fatalf("%s: points %+v, want time %d", target, s.pts, wantNS)
		}
	}
	for _, path := range []string{"/api/v2/write", "/write"} {
		f(path, 1700000000123456789, 1700000000123456789)
		f(path+"?precision=ns", 1700000000123456789, 1700000000123456789)
		f(path+"?precision=us", 1700000000123456, 1700000000123456000)
		f(path+"?precision=ms", 1700000000123, 1700000000123000000)
		f(path+"?precision=s", 1700000000, 1700000000000000000)
		f(path+"?precision=s", -5, -5000000000)
	}
	f("/write?precision=n", 17, 17)
	f("/write?precision=u", 17, 17000)
	f("/write?precision=m", 2, 120000000000)
	f("/write?precision=h", 1, 3600000000000)

	bad := func(target, body string) {
		t.Helper()
		s := &fakeSink{}
		rec := serve(newTestHandler(t, writeConfig{}, s, nil), req{target: target, body: []byte(body)})
		if rec.Code != http.StatusBadRequest || decodeAPIError(t, rec).Code != "invalid" || s.calls != 0 {
			t.Fatalf("%s %q: status %d %s, sink calls %d; want 400 invalid, none", target, body, rec.Code, rec.Body, s.calls)
		}
	}
	bad("/api/v2/write?precision=h", "m v=1 1\n") // v1 only
	bad("/api/v2/write?precision=x", "m v=1 1\n")
	bad("/write?precision=d", "m v=1 1\n")
	bad("/write?precision=h", "m v=1 9000000000\n") // overflows int64 ns
}

func TestWriteGzip(t *testing.T) {
	s := &fakeSink{}
	h := newTestHandler(t, writeConfig{}, s, nil)
	body := gz(t, []byte("m,t=x v=1 1\nm,t=y v=2 2\n"))
	rec := serve(h, req{target: "/api/v2/write", body: body, header: map[string]string{"Content-Encoding": "gzip"}})
	if rec.Code != http.StatusNoContent || s.lines() != "m,t=x v=1 1\nm,t=y v=2 2\n" {
		t.Fatalf("status %d %s, acknowledged %q", rec.Code, rec.Body, s.lines())
	}

	rec = serve(h, req{target: "/api/v2/write", body: []byte("not gzip"), header: map[string]string{"Content-Encoding": "gzip"}})
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("broken gzip: status %d %s, want 400", rec.Code, rec.Body)
	}
	rec = serve(h, req{target: "/api/v2/write", body: []byte("m v=1 1"), header: map[string]string{"Content-Encoding": "br"}})
	if rec.Code != http.StatusUnsupportedMediaType {
		t.Fatalf("br: status %d %s, want 415", rec.Code, rec.Body)
	}
}

func TestWriteBadLineNamesLineAndByte(t *testing.T) {
	body := []byte("cpu v=1 1\ncpu v=oops 2\nmem v=3 3\n")
	_, derr := point.Decoder{}.DecodeLine(nil, body)
	s := &fakeSink{}
	rec := serve(newTestHandler(t, writeConfig{}, s, nil), req{target: "/api/v2/write", body: body})
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d %s, want 400", rec.Code, rec.Body)
	}
	e := decodeAPIError(t, rec)
	if e.Code != "invalid" || e.Message != derr.Error() || !strings.Contains(e.Message, "line 2, byte 16") {
		t.Fatalf("error %+v, want code invalid and message %q naming line 2, byte 16", e, derr)
	}
	if s.calls != 0 {
		t.Fatal("a batch with a bad line reached the sink")
	}
}

func TestWriteWithoutPoints(t *testing.T) {
	s := &fakeSink{}
	h := newTestHandler(t, writeConfig{}, s, nil)
	for _, body := range []string{"", " \n", "# only a comment\n", "system uptime_format=\"1 day\"\n"} {
		if rec := serve(h, req{target: "/api/v2/write", body: []byte(body)}); rec.Code != http.StatusBadRequest || decodeAPIError(t, rec).Code != "invalid" {
			t.Fatalf("%q: status %d %s, want 400 invalid", body, rec.Code, rec.Body)
		}
	}
	if s.calls != 0 {
		t.Fatalf("sink called %d times, want 0", s.calls)
	}
}

func TestWriteTooLarge(t *testing.T) {
	const limit = 100
	line := []byte("m,host=a v=1 1\n") // 15 bytes
	fits := bytes.Repeat(line, limit/len(line))
	over := bytes.Repeat(line, limit/len(line)+1)
	bomb := gz(t, bytes.Repeat(line, 200))
	if len(bomb) > limit {
		t.Fatalf("compressed test body is %d bytes; want it under the %d-byte limit", len(bomb), limit)
	}
	gzipped := map[string]string{"Content-Encoding": "gzip"}
	f := func(name string, q req, want int) {
		t.Helper()
		s := &fakeSink{}
		q.target = "/api/v2/write"
		rec := serve(newTestHandler(t, writeConfig{MaxBodyBytes: limit, MaxPoints: 6}, s, nil), q)
		if rec.Code != want {
			t.Fatalf("%s: status %d %s, want %d", name, rec.Code, rec.Body, want)
		}
		if want == http.StatusRequestEntityTooLarge && (decodeAPIError(t, rec).Code != "request too large" || s.calls != 0) {
			t.Fatalf("%s: body %s, sink calls %d", name, rec.Body, s.calls)
		}
	}
	f("fits", req{body: fits}, http.StatusNoContent)
	f("raw over", req{body: over}, http.StatusRequestEntityTooLarge)
	f("raw over, chunked", req{body: over, chunked: true}, http.StatusRequestEntityTooLarge)
	f("over after gunzip", req{body: bomb, header: gzipped}, http.StatusRequestEntityTooLarge)
	f("over after gunzip, chunked", req{body: bomb, header: gzipped, chunked: true}, http.StatusRequestEntityTooLarge)
	// Concatenated gzip members: each tiny when decompressed, together over
	// the limit compressed.
	multi := bytes.Repeat(gz(t, []byte("m v=1 1\n")), 5)
	if len(multi) <= limit {
		t.Fatalf("multi-member body is %d bytes; want it over %d", len(multi), limit)
	}
	f("compressed over", req{body: multi, header: gzipped, chunked: true}, http.StatusRequestEntityTooLarge)
	f("compressed over, with length", req{body: multi, header: gzipped}, http.StatusRequestEntityTooLarge)
	f("too many points", req{body: bytes.Repeat([]byte("m v=1 1\n"), 6+1)}, http.StatusRequestEntityTooLarge)
}

func TestWriteToken(t *testing.T) {
	f := func(target string, header map[string]string, want int) {
		t.Helper()
		s := &fakeSink{}
		rec := serve(newTestHandler(t, writeConfig{Token: "s3cret"}, s, nil), req{target: target, body: []byte("m v=1 1\n"), header: header})
		if rec.Code != want {
			t.Fatalf("%s %v: status %d %s, want %d", target, header, rec.Code, rec.Body, want)
		}
		if want == http.StatusUnauthorized && (decodeAPIError(t, rec).Code != "unauthorized" || s.calls != 0) {
			t.Fatalf("%s %v: body %s, sink calls %d", target, header, rec.Body, s.calls)
		}
	}
	auth := func(v string) map[string]string { return map[string]string{"Authorization": v} }
	for _, path := range []string{"/api/v2/write", "/write"} {
		f(path, nil, 401)
		f(path, auth("Token wrong"), 401)
		f(path, auth("Token "), 401)
		f(path, auth("s3cret"), 401)
		f(path, auth("Token s3cret"), 204)
		f(path, auth("Bearer s3cret"), 204)
		f(path, auth("Bearer wrong"), 401)
	}
	basic := func(user, pass string) map[string]string {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.SetBasicAuth(user, pass)
		return auth(r.Header.Get("Authorization"))
	}
	f("/write?u=telegraf&p=s3cret", nil, 204)
	f("/write?u=telegraf&p=wrong", nil, 401)
	f("/write", basic("telegraf", "s3cret"), 204)
	f("/write", basic("telegraf", "wrong"), 401)
	f("/api/v2/write?p=s3cret", nil, 401) // p= is InfluxDB 1 only
	f("/api/v2/write", basic("telegraf", "s3cret"), 401)

	// No token configured: everything is accepted.
	rec := serve(newTestHandler(t, writeConfig{}, &fakeSink{}, nil), req{target: "/api/v2/write", body: []byte("m v=1 1\n"), header: auth("Token anything")})
	if rec.Code != http.StatusNoContent {
		t.Fatalf("no token configured: status %d", rec.Code)
	}
}

func TestWriteKafkaUnavailable(t *testing.T) {
	f := func(name string, s *fakeSink, readyErr error, wantCalls int) {
		t.Helper()
		h := newTestHandler(t, writeConfig{}, s, readyErr)
		rec := serve(h, req{target: "/api/v2/write", body: []byte("m v=1 1\n")})
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" || decodeAPIError(t, rec).Code != "unavailable" {
			t.Fatalf("%s: status %d, Retry-After %q, body %s; want 503, 1, unavailable", name, rec.Code, rec.Header().Get("Retry-After"), rec.Body)
		}
		if s.calls != wantCalls || len(s.pts) != 0 || counterValue(t, h.points) != 0 {
			t.Fatalf("%s: sink calls %d, acknowledged %d, counted %v", name, s.calls, len(s.pts), counterValue(t, h.points))
		}
		if n := counterValue(t, h.requests.WithLabelValues("503")); n != 1 {
			t.Fatalf("%s: requests_total{code=503} %v, want 1", name, n)
		}
	}
	f("not ready", &fakeSink{}, errors.New("kafka metadata: connection refused"), 0)
	f("send fails", &fakeSink{err: errors.New("kafka: leader not available")}, nil, 1)
	f("buffer full", &fakeSink{err: client.ErrBufferFull}, nil, 1)
}

func TestWriteAnswersOnlyAfterAcknowledgement(t *testing.T) {
	ev := &events{}
	s := &fakeSink{entered: make(chan struct{}), release: make(chan struct{}), log: ev}
	srv := httptest.NewServer(newTestHandler(t, writeConfig{}, s, nil))
	defer srv.Close()
	done := make(chan int, 1)
	go func() {
		resp, err := http.Post(srv.URL+"/api/v2/write", "text/plain", strings.NewReader("m v=1 1\n"))
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		ev.add("response")
		done <- resp.StatusCode
	}()
	<-s.entered
	select {
	case code := <-done:
		t.Fatalf("response %d before Kafka acknowledged", code)
	default:
	}
	close(s.release)
	if code := <-done; code != http.StatusNoContent {
		t.Fatalf("status %d, want 204", code)
	}
	if got := ev.get(); len(got) != 2 || got[0] != "acked" || got[1] != "response" {
		t.Fatalf("events %v, want [acked response]", got)
	}
}

func TestPingHealthAndRouting(t *testing.T) {
	f := func(h http.Handler, method, target string, want int) *httptest.ResponseRecorder {
		t.Helper()
		rec := serve(h, req{method: method, target: target})
		if rec.Code != want {
			t.Fatalf("%s %s: status %d %s, want %d", method, target, rec.Code, rec.Body, want)
		}
		return rec
	}
	up := newTestHandler(t, writeConfig{Token: "t"}, &fakeSink{}, nil) // probes need no token
	down := newTestHandler(t, writeConfig{}, &fakeSink{}, errors.New("no brokers"))
	f(up, http.MethodGet, "/ping", 204)
	f(up, http.MethodHead, "/ping", 204)
	f(down, http.MethodGet, "/ping", 204) // the process is up
	f(up, http.MethodPost, "/ping", 405)

	var body struct{ Status string }
	if err := json.Unmarshal(f(up, http.MethodGet, "/health", 200).Body.Bytes(), &body); err != nil || body.Status != "pass" {
		t.Fatalf("health up: %+v %v", body, err)
	}
	if err := json.Unmarshal(f(down, http.MethodGet, "/health", 503).Body.Bytes(), &body); err != nil || body.Status != "fail" {
		t.Fatalf("health down: %+v %v", body, err)
	}

	if rec := f(up, http.MethodGet, "/api/v2/write", 405); rec.Header().Get("Allow") != "POST" {
		t.Fatalf("405 Allow %q, want POST", rec.Header().Get("Allow"))
	}
	f(up, http.MethodPut, "/write", 405)
	f(up, http.MethodPost, "/api/v2/query", 404)
	f(up, http.MethodGet, "/", 404)
}

func TestReadyCacheReusesProbe(t *testing.T) {
	now := time.Unix(0, 0)
	probes := 0
	c := &readyCache{probe: func(context.Context) error { probes++; return nil }, now: func() time.Time { return now }}
	for range 3 {
		if err := c.check(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(readyTTL)
	_ = c.check(context.Background())
	if probes != 2 {
		t.Fatalf("%d probes, want 2 (one per TTL)", probes)
	}
}

func TestWriteConfigValidate(t *testing.T) {
	err := writeConfig{Listen: "nocolon", MaxBodyBytes: 0, MaxPoints: -1, MaxInflightBytes: 1000}.Validate()
	for _, want := range []string{"--listen", "--max-body-bytes 0", "--max-points-per-request -1", "--max-inflight-bytes 1000"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v does not name %s", err, want)
		}
	}
	if err := (writeConfig{Listen: "127.0.0.1:8186", MaxBodyBytes: defaultMaxBodyBytes}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestServeWritesDrainsInFlightRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	s := &fakeSink{entered: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveWrites(ctx, ln, newTestHandler(t, writeConfig{}, s, nil), zerolog.Nop()) }()

	done := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+addr+"/write", "text/plain", strings.NewReader("m v=1 1\n"))
		if err != nil {
			done <- -1
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-s.entered
	cancel()
	// Shutdown has begun once new connections are refused.
	deadline := time.Now().Add(time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still open a second after the stop")
		}
		time.Sleep(time.Millisecond) // deadline-bound poll
	}
	select {
	case err := <-served:
		t.Fatalf("serveWrites returned %v with a request in flight", err)
	default:
	}
	close(s.release)
	if code := <-done; code != http.StatusNoContent {
		t.Fatalf("in-flight request: status %d, want 204", code)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// newHTTPApp is the producer app with only the http command, so these tests
// do not depend on how main.go lists its commands.
func newHTTPApp(stdout, stderr io.Writer) *cli.App {
	app := service.NewApp("producer", "test", stdout, stderr)
	app.Commands = []*cli.Command{httpCommand(stderr)}
	return app
}

func TestHTTPCommandFlags(t *testing.T) {
	clitest.CheckFlagEnv(t, newHTTPApp, 15)
	clitest.CheckRejects(t, newHTTPApp,
		[]string{"producer", "http", "--listen", "nocolon", "--max-body-bytes", "0", "--max-points-per-request", "-1",
			"--max-inflight-bytes", "-1", "--token", "a", "--token-file", "/nonexistent", "--kafka-brokers", "nohost", "--log-format", "xml"},
		"--listen", "--max-body-bytes", "--max-points-per-request", "--max-inflight-bytes", "--token", "--kafka-brokers", "--log-format")
}
