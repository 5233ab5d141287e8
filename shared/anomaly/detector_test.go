package anomaly

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/metricpipe/metricpipe/shared/forecast"
)

func newTestDetector(tb testing.TB) (*Detector, Params) {
	tb.Helper()
	fc, err := forecast.New(forecast.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	p, err := NewParams(DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	return NewDetector(fc), p
}

// daily is a day of 288 five-minute points shaped like NAB's art_daily
// series: low at night, a sharp rise to a plateau, a sharp fall.
func daily(i int) float64 {
	switch h := i % 288; {
	case h < 108:
		return 20
	case h < 111:
		return 68
	case h < 114:
		return 78
	case h < 216:
		return 80
	case h < 219:
		return 32
	case h < 222:
		return 22
	default:
		return 20
	}
}

// TestDetectorCleanSeries: on noise-free, quantized or flat series the
// scale does not collapse (no Z ≥ 5 on normal points once the seasonal
// pattern is learned, four days in), while a real anomaly still stands out
// (Z ≥ 8) and scores its onset. The points just after an anomaly are its
// aftermath, judged neither way: a forecast expecting the day's fall
// after a plateau that never came is surprised, rightly.
func TestDetectorCleanSeries(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const (
		n, at     = 4032, 3000 // 14 days; the anomaly on day 11
		aftermath = 20
	)
	f := func(name string, series func(i int) float64, anomaly func(i int, y float64) (float64, bool)) {
		t.Helper()
		d, p := newTestDetector(t)
		worst, worstAt := 0.0, 0
		var hitZ, hitScore float64
		last := -1 // the anomaly's last point
		for i := range n {
			y := series(i)
			y, anomalous := anomaly(i, y)
			v := d.Observe(y, p)
			switch {
			case anomalous:
				hitZ, hitScore, last = max(hitZ, v.Z), max(hitScore, v.Score), i
			case last >= 0 && i-last <= aftermath:
			case i >= 4*288 && v.Z > worst:
				worst, worstAt = v.Z, i
			}
		}
		if worst >= onsetZ {
			t.Errorf("%s: Z %.1f at normal point %d", name, worst, worstAt)
		}
		if hitZ < 8 || hitScore < Score(8) {
			t.Errorf("%s: the anomaly scored Z %.1f, Score %.2f; want ≥ 8, ≥ %.2f", name, hitZ, hitScore, Score(8))
		}
	}
	spike := func(i int, y float64) (float64, bool) {
		if i == at {
			return y + 30, true
		}
		return y, false
	}
	noRise := func(i int, y float64) (float64, bool) { // art_daily_nojump
		if i/288 == at/288 && i%288 >= 108 && i%288 < 222 {
			return y - daily(i) + 20, true
		}
		return y, false
	}
	f("daily, no noise, spike", daily, spike)
	f("daily, no noise, missing rise", daily, noRise)
	f("square wave", func(i int) float64 {
		if i%288 < 108 {
			return 80
		}
		return 20
	}, spike)
	f("daily, small noise, missing rise", func(i int) float64 { return daily(i) + rng.NormFloat64() }, noRise)
	f("flat", func(int) float64 { return 45 }, spike)
	f("quantized", func(i int) float64 {
		return math.Round(100 + 10*math.Sin(float64(i)/40) + rng.NormFloat64()*0.3)
	}, spike)
}

// TestDetectorMissingValues: a missing point gives an empty verdict, and
// both forecasts stay in phase: no surprise afterwards.
func TestDetectorMissingValues(t *testing.T) {
	d, p := newTestDetector(t)
	for i := range 2000 {
		y := daily(i)
		if i%97 == 50 {
			y = math.NaN()
		}
		v := d.Observe(y, p)
		if math.IsNaN(y) {
			if v != (Verdict{}) {
				t.Fatalf("point %d: missing value gave %+v", i, v)
			}
			continue
		}
		if i >= 3*288 && v.Z >= onsetZ {
			t.Fatalf("point %d: Z %.1f after missing values", i, v.Z)
		}
	}
}

// TestDetectorScoreOnset: a spike scores its onset once; the points of
// its episode score 0, Z stays the residual's.
func TestDetectorScoreOnset(t *testing.T) {
	d, p := newTestDetector(t)
	rng := rand.New(rand.NewPCG(5, 6))
	var onsets []int
	for i := range 1500 {
		y := 50 + rng.NormFloat64()
		if i == 1000 || i == 1003 {
			y += 20
		}
		v := d.Observe(y, p)
		if v.Score >= Score(onsetZ) {
			onsets = append(onsets, i)
		}
		if i == 1003 && (v.Z < 8 || v.Score != 0) {
			t.Errorf("second spike: Z %.1f Score %v, want Z ≥ 8, Score 0 (same episode)", v.Z, v.Score)
		}
	}
	if len(onsets) != 1 || onsets[0] != 1000 {
		t.Errorf("onsets at %v, want [1000]", onsets)
	}
}

// TestObserveAllocs: neither Scorer.Observe nor Detector.Observe
// allocates, the detector with its seasonal forecast in use.
func TestObserveAllocs(t *testing.T) {
	p, _ := NewParams(DefaultConfig())
	var s Scorer
	if n := testing.AllocsPerRun(1000, func() { s.Observe(1.5, 0.1, p) }); n != 0 {
		t.Fatalf("Scorer.Observe allocates %v times", n)
	}
	d, p := newTestDetector(t)
	i := 0
	for ; i < 3000; i++ {
		d.Observe(daily(i), p)
	}
	if !d.useSeason {
		t.Fatal("the seasonal forecast is not in use on a daily pattern")
	}
	if n := testing.AllocsPerRun(1000, func() { d.Observe(daily(i), p); i++ }); n != 0 {
		t.Fatalf("Detector.Observe allocates %v times", n)
	}
}

// bytesPerSeries measures the heap one Detector with its default
// forecaster costs, over n of them.
func bytesPerSeries(tb testing.TB, n int) float64 {
	tb.Helper()
	ds := make([]*Detector, n) // allocated before the baseline
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range ds {
		fc, err := forecast.New(forecast.DefaultConfig())
		if err != nil {
			tb.Fatal(err)
		}
		ds[i] = NewDetector(fc)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ds)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// TestMemoryPerSeries holds the budget: a Detector and its default (Auto)
// forecaster cost at most 1.75 KiB, well inside the analyzer's 2 KiB per
// series.
func TestMemoryPerSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100,000 detectors")
	}
	per := bytesPerSeries(t, 100_000)
	t.Logf("%.0f bytes per series (detector and forecaster)", per)
	if limit := 1.75 * 1024; per > limit {
		t.Errorf("%.0f bytes per series, want ≤ %.0f", per, limit)
	}
}

// BenchmarkObserve: one Observe per op on a noisy daily pattern, the
// seasonal forecast in use.
func BenchmarkObserve(b *testing.B) {
	d, p := newTestDetector(b)
	rng := rand.New(rand.NewPCG(7, 8))
	ys := make([]float64, 4096)
	for i := range ys {
		ys[i] = daily(i) + rng.NormFloat64()
	}
	for i := range 3000 {
		d.Observe(ys[i], p)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Observe(ys[i%len(ys)], p)
		i++
	}
}

// BenchmarkMemoryPerSeries reports the bytes per series of 100,000
// detectors with their default forecasters.
func BenchmarkMemoryPerSeries(b *testing.B) {
	var sum float64
	for range b.N {
		sum += bytesPerSeries(b, 100_000)
	}
	b.ReportMetric(sum/float64(b.N), "B/series")
	b.ReportMetric(0, "ns/op")
}

// TestDetectorExtremeValues: huge, tiny, infinite and missing values
// neither panic nor make Z or Score non-finite.
func TestDetectorExtremeValues(t *testing.T) {
	d, p := newTestDetector(t)
	rng := rand.New(rand.NewPCG(9, 10))
	specials := []float64{0, 1e308, -1e308, math.Inf(1), math.NaN(), 5e-324, -5e-324, 1e-300}
	for i := range 5000 {
		y := daily(i) + rng.NormFloat64()
		if i%7 == 0 {
			y = specials[rng.IntN(len(specials))]
		}
		v := d.Observe(y, p)
		if !finite(v.Z) || v.Z < 0 || !(v.Score >= 0 && v.Score <= 1) {
			t.Fatalf("point %d (y %v): Z %v, Score %v", i, y, v.Z, v.Score)
		}
	}
}
