package movavg

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/point"
)

// seriesPoints returns one single-field point per series, tagged like a
// typical host metric.
func seriesPoints(n int) []point.Point {
	pts := make([]point.Point, n)
	for i := range pts {
		pts[i] = point.Point{
			Measurement: "cpu",
			Tags:        []point.Tag{{Key: "host", Value: fmt.Sprintf("host-%06d", i)}, {Key: "region", Value: "eu-west-1"}},
			Fields:      []point.Field{{Key: "usage", Value: 0}},
		}
	}
	return pts
}

// benchStage feeds points of 10,000 series round-robin, each series one point
// per second of event time, calling Reset every 5,000 points as after a
// batch write. The stage is warmed up (every series tracked, its averages
// warm, windows closed and opened) before the timer starts.
func benchStage(b *testing.B, p Params, warmRounds int) {
	const nSeries, batch = 10_000, 5_000
	s := mustNew(b, Config{Default: p, AllowedLateness: 5 * time.Second, MaxSeries: nSeries})
	pts := seriesPoints(nSeries)
	out := make([]point.Point, 0, batch+nSeries+1) // room for a batch and a burst of rollups
	n := 0
	step := func() {
		pt := &pts[n%nSeries]
		pt.Time = t0 + int64(n/nSeries)*int64(time.Second)
		pt.Fields[0].Value = float64(n % 1013)
		out, _ = s.ProcessResult(pt, 0, out)
		if n++; n%batch == 0 {
			s.Reset()
			out = out[:0]
		}
	}
	for range warmRounds * nSeries {
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		step()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkStage: SMA(30), EMA and WMA(3 weights).
func BenchmarkStage(b *testing.B) {
	benchStage(b, Params{SMAWindow: 30, EMAAlpha: 0.1, WMAWeights: []float64{0.5, 0.3, 0.2}}, 40)
}

// BenchmarkStageWithRollups: the same with 1-minute rollups (5s lateness).
// Every 600,000 points a minute ends and one Process call emits the 10,000
// series' rollups.
func BenchmarkStageWithRollups(b *testing.B) {
	benchStage(b, Params{SMAWindow: 30, EMAAlpha: 0.1, WMAWeights: []float64{0.5, 0.3, 0.2}, Rollup: time.Minute}, 130)
}

// bytesPerSeries measures the heap a tracked series costs, with 100,000
// series of one field each, in the worst case of two open windows per
// series (lateness keeps the previous minute open).
func bytesPerSeries(tb testing.TB, p Params) float64 {
	tb.Helper()
	const n = 100_000
	pts := seriesPoints(n) // allocated before the baseline
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := mustNew(tb, Config{Default: p, AllowedLateness: 30 * time.Second, MaxSeries: n})
	var out []point.Point
	for round := range 2 {
		for i := range pts {
			pts[i].Time = t0 + int64(round)*int64(time.Minute) + int64(i)*int64(time.Microsecond)
			out, _ = s.ProcessResult(&pts[i], 0, out[:0])
		}
		s.Reset()
	}
	out = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	if st, open := s.Stats(), openWindows(s); st.Series != n || open < n {
		tb.Fatalf("scenario broken: %+v, %d windows open", st, open)
	}
	runtime.KeepAlive(s)
	runtime.KeepAlive(pts)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
}

// openWindows counts the windows open in s.
func openWindows(s *Stage) int {
	n := 0
	for i := range s.series {
		for j := range s.series[i].fields {
			n += len(s.series[i].fields[j].wins)
		}
	}
	return n
}

// BenchmarkMemoryPerSeries reports bytes per tracked series with SMA window
// 30 and 1-minute rollups (target ≤ 1 KiB).
func BenchmarkMemoryPerSeries(b *testing.B) {
	var sum float64
	for range b.N {
		sum += bytesPerSeries(b, Params{SMAWindow: 30, Rollup: time.Minute})
	}
	b.ReportMetric(sum/float64(b.N), "bytes/series")
	b.ReportMetric(0, "ns/op")
}

// TestMemoryPerSeries holds the memory bound: at most 1 KiB per series.
func TestMemoryPerSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100,000 series")
	}
	for name, p := range map[string]Params{
		"SMA(30) + rollups":                {SMAWindow: 30, Rollup: time.Minute},
		"SMA(30) + EMA + WMA(3) + rollups": {SMAWindow: 30, EMAAlpha: 0.1, WMAWeights: []float64{0.5, 0.3, 0.2}, Rollup: time.Minute},
	} {
		per := bytesPerSeries(t, p)
		t.Logf("%s: %.0f bytes per tracked series", name, per)
		if per > 1024 {
			t.Errorf("%s: %.0f bytes per series, want ≤ 1024", name, per)
		}
	}
}

// checkpointStage returns a stage of n series of one field, SMA window 30
// and 1-minute rollups, each with two windows open (the worst case of
// bytesPerSeries), and the points that built it.
func checkpointStage(tb testing.TB, n int) *Stage {
	tb.Helper()
	pts := seriesPoints(n)
	s := mustNew(tb, Config{Default: Params{SMAWindow: 30, Rollup: time.Minute}, AllowedLateness: 30 * time.Second, MaxSeries: n})
	var out []point.Point
	for round := range 31 { // averages warm, two windows open
		for i := range pts {
			pts[i].Time = t0 + int64(round)*int64(time.Second) + int64(i)*int64(time.Microsecond)
			if round == 30 { // the next minute; lateness keeps this one open
				pts[i].Time = t0 + int64(time.Minute) + int64(i)*int64(time.Microsecond)
			}
			pts[i].Fields[0].Value = float64((round*7 + i) % 101)
			out = s.Process(&pts[i], int64(round), out[:0])
		}
		s.Reset()
	}
	if st, open := s.Stats(), openWindows(s); st.Series != n || open != 2*n {
		tb.Fatalf("scenario broken: %+v, %d windows open", st, open)
	}
	return s
}

// BenchmarkCheckpoint: the checkpoint of 100,000 series (SMA 30, two
// rollup windows open each), into a reused buffer as the group consumer's.
func BenchmarkCheckpoint(b *testing.B) {
	const n = 100_000
	s := checkpointStage(b, n)
	buf := s.Checkpoint(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		buf = s.Checkpoint(buf[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/checkpoint")
	b.ReportMetric(float64(len(buf)), "bytes")
	b.ReportMetric(float64(len(buf))/n, "bytes/series")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "series/s")
}

// BenchmarkRestore: restoring that checkpoint into a fresh Stage, as on a
// partition's assignment.
func BenchmarkRestore(b *testing.B) {
	const n = 100_000
	src := checkpointStage(b, n).Checkpoint(nil)
	cfg := Config{Default: Params{SMAWindow: 30, Rollup: time.Minute}, AllowedLateness: 30 * time.Second, MaxSeries: n}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s := mustNew(b, cfg)
		if err := s.Restore(src, 0, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/restore")
	b.ReportMetric(float64(len(src)), "bytes")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "series/s")
}
