package anomaly

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestGapWidensTheForecast: a point that comes k usual steps after the
// one before, with no point between, is judged against a forecast made k
// steps ahead, whose error grows like √k (a random walk's): its Z is the
// Z of the same point one step on, divided by √k. So a series that
// resumes after a gap at the level it has wandered to does not page (the
// TravelTime series of NAB, sampled irregularly, paged after gaps), while
// a move large even for the gap still does. Jitter in the sampling (a
// point a few tenths of a step late) is no gap.
func TestGapWidensTheForecast(t *testing.T) {
	const step = int64(5 * time.Minute)
	rng := rand.New(rand.NewPCG(61, 62))
	ys := make([]float64, 1200) // four days: warm from two
	for i := 1; i < len(ys); i++ {
		ys[i] = ys[i-1] + rng.NormFloat64()
	}
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	last := ys[len(ys)-1]
	tests := []struct {
		name  string
		steps float64 // from the last point to the one judged
		move  float64 // of the judged point from the last, in steps' σ·√steps
		onset bool    // the judged point opens an episode
	}{
		{"one step, a move of 24σ", 1, 24, true},
		{"64 steps, the same move: 3σ for the gap", 64, 3, false},
		{"64 steps, a move of 10σ for the gap", 64, 10, true},
		{"9 steps, 2σ for the gap", 9, 2, false},
		{"1.3 steps late: jitter, no gap", 1.3, 24 / math.Sqrt(1.3), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gapped, p := newTestDetector(t)
			next, _ := newTestDetector(t)
			for i, y := range ys {
				at := start + int64(i)*step
				gapped.ObserveAt(at, y, p)
				next.ObserveAt(at, y, p)
			}
			at := start + int64(len(ys)-1)*step
			y := last + tt.move*math.Sqrt(tt.steps)
			g := gapped.ObserveAt(at+int64(tt.steps*float64(step)), y, p)
			n := next.ObserveAt(at+step, y, p)
			if !g.Warm || !n.Warm {
				t.Fatalf("not warm after %d points", len(ys))
			}
			k := math.Round(tt.steps)
			if want := n.Z / math.Sqrt(k); math.Abs(g.Z-want) > 1e-9*want {
				t.Errorf("Z %.4f after %v steps, want %.4f (%.4f one step on, over √%v)", g.Z, tt.steps, want, n.Z, k)
			}
			if opened := g.Score > 0; opened != tt.onset {
				t.Errorf("Z %.2f, score %.3f: onset %v, want %v", g.Z, g.Score, opened, tt.onset)
			}
		})
	}
}
