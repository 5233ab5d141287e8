package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/metricpipe/metricpipe/shared/point"
)

// BenchmarkWriteHandler measures the points/s the write handler decodes
// and hands to its sink, in process, without HTTP or Kafka: 200,000 lines
// as BenchmarkHTTPWrite makes them, in bodies of 5,000 lines (Telegraf's
// batches; one chunk each) and of 50,000 (several chunks), plain and
// gzipped. The sink encodes as client.Producer does. The baseline in the
// same iteration reads each body whole, decodes it in one piece and sends
// it to the same sink, as the handler did before it streamed; ratio is
// baseline time over handler time.
func BenchmarkWriteHandler(b *testing.B) {
	const total = 200_000
	base := time.Now().Add(-time.Hour).UnixNano()
	for _, batch := range []int{5_000, 50_000} {
		for _, gzipped := range []bool{false, true} {
			b.Run(fmt.Sprintf("lines=%d/gzip=%v", batch, gzipped), func(b *testing.B) {
				bodies := make([][]byte, total/batch)
				for i := range bodies {
					var buf bytes.Buffer
					for j := range batch {
						n := i*batch + j
						fmt.Fprintf(&buf, "http_bench,host=h%d,dc=eu usage=%d.5,idle=%di %d\n", n%50, n%100, n%7, base+int64(n))
					}
					bodies[i] = buf.Bytes()
					if gzipped {
						bodies[i] = gz(b, bodies[i])
					}
				}
				s := &countingSink{}
				h, err := newWriteHandler(writeConfig{Listen: "127.0.0.1:0", MaxBodyBytes: defaultMaxBodyBytes}, s,
					func(context.Context) error { return nil }, zerolog.Nop(), prometheus.NewRegistry())
				if err != nil {
					b.Fatal(err)
				}
				var handler, whole time.Duration
				for b.Loop() {
					start := time.Now()
					for _, body := range bodies {
						r := httptest.NewRequest(http.MethodPost, "/api/v2/write", bytes.NewReader(body))
						if gzipped {
							r.Header.Set("Content-Encoding", "gzip")
						}
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, r)
						if rec.Code != http.StatusNoContent {
							b.Fatalf("status %d %s", rec.Code, rec.Body)
						}
					}
					handler += time.Since(start)

					start = time.Now()
					for _, body := range bodies {
						var rd io.Reader = bytes.NewReader(body)
						if gzipped {
							zr, err := gzip.NewReader(rd)
							if err != nil {
								b.Fatal(err)
							}
							rd = zr
						}
						text, err := io.ReadAll(io.LimitReader(rd, defaultMaxBodyBytes+1))
						if err != nil {
							b.Fatal(err)
						}
						pts, err := point.Decoder{MaxMessageBytes: defaultMaxBodyBytes}.DecodeLine(nil, text)
						if err != nil {
							b.Fatal(err)
						}
						if err := s.SendBatch(b.Context(), pts); err != nil {
							b.Fatal(err)
						}
					}
					whole += time.Since(start)
				}
				n := float64(total * b.N)
				b.ReportMetric(n/handler.Seconds(), "handler-points/s")
				b.ReportMetric(n/whole.Seconds(), "whole-points/s")
				b.ReportMetric(whole.Seconds()/handler.Seconds(), "ratio")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
