package anomaly

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestWarmUpFollowsSeasons: on a 5-minute series with a daily pattern,
// the warm-up of points alone lets the first turns of the pattern, which
// the detector has never seen, score as onsets on day one; with event
// times the series is not Warm until two days in, and its forecasts and Z
// are those of Observe. A 1-minute series, whose day is no season of the
// detector's, is warm after its warm-up points.
func TestWarmUpFollowsSeasons(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	const n = 4 * 288
	ys := make([]float64, n)
	for i := range ys {
		ys[i] = daily(i) + rng.NormFloat64()*0.5
	}
	untimed, _ := newTestDetector(t)
	timed, p := newTestDetector(t)
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	var early int
	for i, y := range ys {
		at := start + int64(i)*int64(5*time.Minute)
		u := untimed.Observe(y, p)
		v := timed.ObserveAt(at, y, p)
		if u.Forecast != v.Forecast || u.Z != v.Z {
			t.Fatalf("point %d: ObserveAt forecast %v Z %v, Observe %v %v", i, v.Forecast, v.Z, u.Forecast, u.Z)
		}
		if i < 288 && u.Score >= pageScore {
			early++
		}
		if twoDays := at-start >= 2*day; v.Warm != (twoDays && u.Warm) {
			t.Fatalf("point %d (%s in): Warm %v, want %v", i, time.Duration(at-start), v.Warm, twoDays && u.Warm)
		}
	}
	if early == 0 {
		t.Errorf("no onset on day one without event times: the scenario shows nothing")
	}
	t.Logf("%d onsets on day one from the warm-up of points alone; none with event times", early)

	fast, p := newTestDetector(t)
	ref, _ := newTestDetector(t)
	warm := 0
	for i := range 100 {
		y := 50 + rng.NormFloat64()
		v := fast.ObserveAt(start+int64(i)*int64(time.Minute), y, p)
		if u := ref.Observe(y, p); v.Warm != u.Warm {
			t.Fatalf("1-minute point %d: Warm %v, Observe's %v", i, v.Warm, u.Warm)
		}
		if v.Warm {
			warm++
		}
	}
	if warm == 0 {
		t.Error("a 1-minute series never warm in 100 points")
	}
}
