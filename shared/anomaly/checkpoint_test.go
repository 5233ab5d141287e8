package anomaly

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/forecast"
	"github.com/metricpipe/metricpipe/shared/stream"
)

// fmtVerdict renders a verdict and the forecaster's interval after it,
// bit for bit.
func fmtVerdict(v Verdict, d *Detector) string {
	lo, hi, ok := d.Forecaster().Interval(2, 3)
	return fmt.Sprintf("%x %v %x %x %v | %x %x %v", math.Float64bits(v.Forecast), v.HasForecast, math.Float64bits(v.Z),
		math.Float64bits(v.Score), v.Warm, math.Float64bits(lo), math.Float64bits(hi), ok)
}

func newDetector(tb testing.TB, c forecast.Config) *Detector {
	tb.Helper()
	fc, err := forecast.New(c)
	if err != nil {
		tb.Fatal(err)
	}
	return NewDetector(fc)
}

// checkpointSeries is a daily pattern (288 points a day) with noise,
// spikes, a level shift and dropouts: the seasonal forecast locks on, an
// episode opens and closes, outliers are clipped.
func checkpointSeries(n int) []float64 {
	rng := rand.New(rand.NewPCG(14, 3))
	ys := make([]float64, n)
	for i := range ys {
		ys[i] = daily(i) + 0.5*rng.NormFloat64()
		switch {
		case i%500 == 250:
			ys[i] += 90
		case i >= 1300 && i < 1340:
			ys[i] -= 15
		case i%211 == 0:
			ys[i] = math.NaN()
		}
	}
	return ys
}

// checkpointTimes are 5-minute event times for checkpointSeries, with a
// gap of 9 steps before every 173rd point (346 and 1038 among the splits
// of TestDetectorCheckpointRestore).
func checkpointTimes(n int) []int64 {
	ts := make([]int64, n)
	for i := 1; i < n; i++ {
		steps := int64(1)
		if i%173 == 0 {
			steps = 10
		}
		ts[i] = ts[i-1] + steps*int64(5*time.Minute)
	}
	return ts
}

// TestDetectorCheckpointRestore: a Detector restored from a checkpoint
// taken after k points and fed the rest gives bit for bit the verdicts of
// the one that ran through, for each forecaster kind, for splits during
// warm-up, season discovery, inside an episode, and once locked, on a
// series with gaps in its event times.
func TestDetectorCheckpointRestore(t *testing.T) {
	p, err := NewParams(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ys, ts := checkpointSeries(2400), checkpointTimes(2400)
	configs := map[string]forecast.Config{}
	for _, k := range []forecast.Kind{forecast.Holt, forecast.AR, forecast.Auto} {
		c := forecast.DefaultConfig()
		c.Kind = k
		configs[string(k)] = c
	}
	for _, season := range []int{24, 288} {
		c := forecast.DefaultConfig()
		c.Season = season
		configs[fmt.Sprint("auto-season-", season)] = c
		c.Kind = forecast.HoltWinters
		configs[fmt.Sprint("holt-winters-", season)] = c
	}
	var locked, seasonal bool
	for name, c := range configs {
		t.Run(name, func(t *testing.T) {
			ref := newDetector(t, c)
			want := make([]string, len(ys))
			var episodes bool
			for i, y := range ys {
				want[i] = fmtVerdict(ref.ObserveAt(ts[i], y, p), ref)
				locked = locked || ref.season.locked > 0
				seasonal = seasonal || ref.useSeason
				episodes = episodes || ref.onset.in
			}
			if !episodes {
				t.Fatal("the series opens no episode")
			}
			for _, k := range []int{0, 1, 2, 30, 31, 250, 251, 300, 346, 722, 723, 1000, 1038, 1320, 2399} {
				d := newDetector(t, c)
				for i, y := range ys[:k] {
					d.ObserveAt(ts[i], y, p)
				}
				var e stream.Encoder
				d.Checkpoint(&e)
				r := newDetector(t, c)
				dec := stream.NewDecoder(e.B)
				r.Restore(dec)
				if err := dec.Err(); err != nil || dec.Len() != 0 {
					t.Fatalf("split %d: restore: %v, %d bytes left", k, err, dec.Len())
				}
				if r.season != d.season || r.fcScale != d.fcScale || r.onset != d.onset || r.step != d.step {
					t.Fatalf("split %d: restored state differs", k)
				}
				for i := k; i < len(ys); i++ {
					if got := fmtVerdict(r.ObserveAt(ts[i], ys[i], p), r); got != want[i] {
						t.Fatalf("split %d, point %d: restored %s, uninterrupted %s", k, i, got, want[i])
					}
				}
			}
		})
	}
	if !locked || !seasonal {
		t.Fatalf("the series does not exercise the seasonal forecast: locked %v, in use %v", locked, seasonal)
	}
}

// FuzzDetectorRestore: no input makes Restore panic; a failure wraps
// stream.ErrCorrupt, and a restored Detector can be used.
func FuzzDetectorRestore(f *testing.F) {
	p, _ := NewParams(DefaultConfig())
	c := forecast.DefaultConfig()
	c.Season = 24
	ys := checkpointSeries(900)
	for _, k := range []int{0, 5, 400, 900} {
		d := newDetector(f, c)
		for _, y := range ys[:k] {
			d.Observe(y, p)
		}
		var e stream.Encoder
		d.Checkpoint(&e)
		f.Add(e.B)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := newDetector(t, c)
		dec := stream.NewDecoder(b)
		d.Restore(dec)
		if err := dec.Err(); err != nil {
			if !errors.Is(err, stream.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		for _, y := range ys[:400] {
			d.Observe(y, p)
		}
	})
}
