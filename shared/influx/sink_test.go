package influx

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/point"
)

func testConfig(url, bucket string) Config {
	return Config{URL: url, Org: "", Bucket: bucket, BatchSize: 1000, FlushInterval: time.Second, Timeout: 5 * time.Second}
}

func TestConfigValidate(t *testing.T) {
	err := Config{URL: "localhost:8086", BatchSize: 0, FlushInterval: 0, Timeout: 0}.Validate()
	for _, flag := range []string{"--influx-url", "--influx-bucket", "--influx-batch-size", "--influx-flush-interval", "--influx-timeout"} {
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("error does not name %s: %v", flag, err)
		}
	}
	if err := testConfig("https://influx.example:8086", "db/rp").Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestWriteClassifiesFailures(t *testing.T) {
	f := func(status int, want Cause) {
		t.Helper()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"code":"x","message":"status %d"}`, status)
		}))
		defer srv.Close()
		s, err := NewSink(testConfig(srv.URL, "db/rp"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		err = s.Write(t.Context(), []point.Point{{Measurement: "m", Fields: []point.Field{{Key: "v", Value: 1}}, Time: 1}})
		var we *WriteError
		if !errors.As(err, &we) || we.Status != status || we.Cause != want || CauseOf(err) != want {
			t.Fatalf("HTTP %d: err = %v (%+v), want cause %s", status, err, we, want)
		}
	}
	f(http.StatusInternalServerError, Unavailable)
	f(http.StatusBadGateway, Unavailable)
	f(http.StatusServiceUnavailable, Unavailable)
	f(http.StatusTooManyRequests, Throttled)
	f(http.StatusBadRequest, Refused)
	f(http.StatusUnprocessableEntity, Refused)
	f(http.StatusUnauthorized, Misconfigured)
	f(http.StatusForbidden, Misconfigured)
	f(http.StatusNotFound, Misconfigured)
	f(http.StatusRequestEntityTooLarge, Misconfigured)

	// No server at all: retryable.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	s, _ := NewSink(testConfig(url, "db/rp"))
	defer s.Close()
	err := s.Write(t.Context(), []point.Point{{Measurement: "m", Fields: []point.Field{{Key: "v", Value: 1}}, Time: 1}})
	if err == nil || CauseOf(err) != Unavailable {
		t.Fatalf("connection refused: err = %v, want cause unavailable", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("Ping succeeded with no server")
	}
}

// TestSinkOnRealInfluxDB writes through the v2 API of the test bed's
// InfluxDB 1.8 in several requests and reads the points back with Flux.
func TestSinkOnRealInfluxDB(t *testing.T) {
	base := testbed.InfluxURL(t)
	t.Logf("InfluxDB %s", testbed.InfluxVersion(t, base))
	bucket := testbed.CreateDatabase(t, base, testbed.UniqueName("sink_"))
	cfg := testConfig(base, bucket)
	cfg.BatchSize = 700 // several requests for 2,500 points
	s, err := NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	pts := make([]point.Point, 2500)
	start := time.Now().Add(-time.Hour).UnixNano()
	for i := range pts {
		pts[i] = point.Point{Measurement: "cpu", Tags: []point.Tag{{Key: "host", Value: fmt.Sprintf("h%d", i%5)}},
			Fields: []point.Field{{Key: "usage", Value: float64(i)}}, Time: start + int64(i)*int64(time.Millisecond)}
	}
	if err := s.Write(t.Context(), pts); err != nil {
		t.Fatal(err)
	}
	// Rewriting the same points (a replay) must not add any.
	if err := s.Write(t.Context(), pts[:1000]); err != nil {
		t.Fatal(err)
	}
	flux := fmt.Sprintf(`from(bucket: %q) |> range(start: -2h) |> filter(fn: (r) => r._measurement == "cpu") |> group() |> count()`, bucket)
	n, _, err := testbed.FluxInt(t.Context(), base, flux)
	if err != nil || n != 2500 {
		t.Fatalf("count = %d, %v; want 2500", n, err)
	}
	sum := fmt.Sprintf(`from(bucket: %q) |> range(start: -2h) |> filter(fn: (r) => r.host == "h3") |> group() |> count()`, bucket)
	if n, _, err := testbed.FluxInt(t.Context(), base, sum); err != nil || n != 500 {
		t.Fatalf("h3 count = %d, %v; want 500", n, err)
	}

	// A field type conflict (another writer made "state" a string field)
	// refuses the point: not worth retrying.
	raw := fmt.Sprintf("cpu,host=h0 state=\"up\" %d\n", start)
	resp, err := http.Post(fmt.Sprintf("%s/api/v2/write?bucket=%s&precision=ns", base, bucket), "text/plain", strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("string field write: HTTP %d", resp.StatusCode)
	}
	err = s.Write(t.Context(), []point.Point{{Measurement: "cpu", Tags: []point.Tag{{Key: "host", Value: "h0"}},
		Fields: []point.Field{{Key: "state", Value: 1}}, Time: start + 1}})
	var we *WriteError
	if !errors.As(err, &we) || we.Status != http.StatusBadRequest || CauseOf(err) != Refused {
		t.Fatalf("type conflict: err = %v, want a refused HTTP 400 WriteError", err)
	}
	t.Logf("type conflict rejected as expected: %v", err)
}
