package forecast

import (
	"fmt"
	"runtime"
	"testing"
)

// benchConfigs returns one default-ish Config per kind, Season 24.
func benchConfigs() []Config {
	var cs []Config
	for _, k := range []Kind{Holt, HoltWinters, AR, Auto} {
		c := DefaultConfig()
		c.Kind = k
		if k == HoltWinters || k == Auto {
			c.Season = 24
		}
		cs = append(cs, c)
	}
	return cs
}

// BenchmarkUpdatePredict: one Predict and one Update per op, on a noisy
// seasonal series, warm.
func BenchmarkUpdatePredict(b *testing.B) {
	cs := benchConfigs()
	noSeason := DefaultConfig()
	cs = append(cs, noSeason)
	for _, c := range cs {
		b.Run(fmt.Sprintf("%s/season=%d", c.Kind, c.Season), func(b *testing.B) {
			fc := mustNew(b, c)
			var ys [1024]float64
			for i := range ys {
				ys[i] = seasonal(i) + float64(i*7919%13)/13
			}
			for i := range 1000 {
				fc.Update(ys[i%len(ys)])
			}
			b.ReportAllocs()
			var sink float64
			i := 0
			for b.Loop() {
				y, _ := fc.Predict()
				sink += y
				fc.Update(ys[i%len(ys)])
				i++
			}
			_ = sink
		})
	}
}

// bytesPerSeries measures the heap one Forecaster costs, over n of them.
func bytesPerSeries(tb testing.TB, c Config, n int) float64 {
	tb.Helper()
	fs := make([]*Forecaster, n) // allocated before the baseline
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range fs {
		fs[i] = mustNew(tb, c)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(fs)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// BenchmarkMemoryPerSeries reports the bytes per series of 100,000 Auto
// Forecasters, without a season and with Season 24.
func BenchmarkMemoryPerSeries(b *testing.B) {
	for _, season := range []int{0, 24} {
		b.Run(fmt.Sprintf("auto/season=%d", season), func(b *testing.B) {
			var sum float64
			for range b.N {
				sum += bytesPerSeries(b, autoConfig(season), 100_000)
			}
			b.ReportMetric(sum/float64(b.N), "B/series")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// TestMemoryPerSeries holds the budget: an Auto Forecaster without season
// costs at most 1.2 KiB, so that the analyzer's per-series state fits in
// 2 KiB.
func TestMemoryPerSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100,000 forecasters")
	}
	for _, season := range []int{0, 24} {
		per := bytesPerSeries(t, autoConfig(season), 100_000)
		t.Logf("auto, season %d: %.0f bytes per series", season, per)
		if limit := 1.2 * 1024; season == 0 && per > limit {
			t.Errorf("auto without season: %.0f bytes per series, want ≤ %.0f", per, limit)
		}
	}
}
