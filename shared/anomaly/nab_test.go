package anomaly

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/forecast"
	"github.com/metricpipe/metricpipe/shared/nab"
)

// TestNAB is a benchmark, not a check: it runs the default detector over
// the NAB corpus in $METRICPIPE_NAB_DIR (data/ and
// labels/combined_windows.json) the way `analyzer eval` does (row score
// Verdict.Score once warm, 0 before) and logs the three profiles' scores,
// each at the threshold nab.Optimize picks, and the forecast's median MASE.
func TestNAB(t *testing.T) {
	dir := os.Getenv("METRICPIPE_NAB_DIR")
	if dir == "" {
		t.Skip("METRICPIPE_NAB_DIR not set")
	}
	c, err := nab.LoadCorpus(filepath.Join(dir, "data"), filepath.Join(dir, "labels", "combined_windows.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewParams(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	errs := map[string]*[2]float64{} // Σ|y−ŷ| and Σ|y−y_prev| by series
	start := time.Now()
	scores, err := nab.Run(t.Context(), c, func(name string) nab.Detector {
		fc, err := forecast.New(forecast.DefaultConfig())
		if err != nil {
			panic(err)
		}
		d := NewDetector(fc)
		e := new([2]float64)
		mu.Lock()
		errs[name] = e
		mu.Unlock()
		var prev float64
		rows := 0
		return nab.DetectorFunc(func(_ time.Time, y float64) float64 {
			v := d.Observe(y, p)
			if v.HasForecast && rows > 0 {
				e[0] += math.Abs(y - v.Forecast)
				e[1] += math.Abs(y - prev)
			}
			prev = y
			rows++
			if !v.Warm {
				return 0
			}
			return v.Score
		})
	}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	for _, prof := range nab.Profiles() {
		th, r, err := nab.Optimize(c, scores, prof)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-18s threshold %.4f score %6.2f  TP %d FP %d FN %d", prof.Name, th, r.Normalized, r.TP, r.FP, r.FN)
		if testing.Verbose() && os.Getenv("METRICPIPE_NAB_FILES") != "" {
			for _, f := range r.Files {
				t.Logf("  %-55s raw %7.3f TP %d FP %3d FN %d", f.Name, f.Raw, f.TP, f.FP, f.FN)
			}
		}
	}
	// MASE: mean absolute one-step error over that of the last value, as
	// `analyzer eval` reports it; undefined on a constant series.
	var ms []float64
	for _, e := range errs {
		if e[1] > 0 {
			ms = append(ms, e[0]/e[1])
		}
	}
	slices.Sort(ms)
	med := (ms[(len(ms)-1)/2] + ms[len(ms)/2]) / 2
	t.Logf("median MASE %.3f over %d series; %d series in %s", med, len(ms), len(c.Series), elapsed.Round(time.Millisecond))
}
