package anomaly

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// onsetScores runs a default detector over n points of y and returns the
// Score of every point whose Score is non-zero, by index.
func onsetScores(t *testing.T, n int, y func(i int) float64) map[int]float64 {
	t.Helper()
	d, p := newTestDetector(t)
	out := map[int]float64{}
	for i := range n {
		if v := d.Observe(y(i), p); v.Score > 0 {
			out[i] = v.Score
		}
	}
	return out
}

// pageScore is the score deploy/rules.yaml pages at (about the threshold
// `analyzer eval` chooses on the NAB corpus).
const pageScore = 0.3

// TestRecurringBurstsStopScoring: bursts that recur and look alike are
// what this series does; once it has had about eight of them since the
// detector settled, the next one no longer pages. The first ones do, and
// so does a burst far larger than the usual ones.
func TestRecurringBurstsStopScoring(t *testing.T) {
	const every, n, big = 150, 6000, 4800
	rng := rand.New(rand.NewPCG(21, 22))
	noise := make([]float64, n)
	heights := make([]float64, n/every+1)
	for i := range noise {
		noise[i] = rng.NormFloat64()
	}
	for i := range heights {
		heights[i] = 40 * (0.8 + 0.4*rng.Float64())
	}
	series := func(i int) float64 {
		y := 100 + noise[i]
		if k := i / every; i >= every && i%every < 3 {
			h := heights[k]
			if i-i%every == big {
				h *= 8
			}
			y += h
		}
		return y
	}
	scores := onsetScores(t, n, series)
	var first []float64
	for k := 1; k*every < n; k++ {
		at := k * every
		s := max(scores[at], scores[at+1], scores[at+2])
		switch {
		case k <= 2:
			first = append(first, s)
		case at == big:
			if s < 0.9 {
				t.Errorf("burst %d at %d, 8 times the usual: score %.3f, want ≥ 0.9", k, at, s)
			}
		case at >= seasonSettled+8*every && s >= pageScore:
			t.Errorf("burst %d at %d, like the %d before: score %.3f, want < %v", k, at, k-1, s, pageScore)
		}
	}
	for k, s := range first {
		if s < 0.9 {
			t.Errorf("burst %d, the series' first kind: score %.3f, want ≥ 0.9", k+1, s)
		}
	}
}

// TestRareAnomaliesKeepScoring: a quiet series' anomalies, 1,500 points
// apart, all page: three or four onsets in 5,000 points are not a habit.
func TestRareAnomaliesKeepScoring(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	at := []int{1000, 2500, 4000, 5500}
	for _, kind := range []string{"spike", "shift"} {
		t.Run(kind, func(t *testing.T) {
			series := func(i int) float64 {
				y := 50 + rng.NormFloat64()
				for _, a := range at {
					if kind == "spike" && i == a || kind == "shift" && i >= a && i < a+300 {
						y += 12
					}
				}
				return y
			}
			scores := onsetScores(t, 7000, series)
			for i, a := range at {
				want := pageScore
				if i == 0 {
					want = 0.9
				}
				if s := scores[a]; s < want {
					t.Errorf("%s at %d: score %.3f, want ≥ %v (onsets %v)", kind, a, s, want, fmt.Sprint(scores))
				}
			}
		})
	}
}

// TestSpikeInsideEpisodeIsNews: a spike an order of magnitude beyond
// anything in a turbulent stretch opens its own episode, though the
// stretch's episode is young; the turbulence itself is one episode.
func TestSpikeInsideEpisodeIsNews(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	const from, to, spike = 1000, 1300, 1150
	scores := onsetScores(t, 2000, func(i int) float64 {
		y := 50 + rng.NormFloat64()
		if i >= from && i < to {
			y += 8 * rng.NormFloat64()
		}
		if i == spike {
			y += 2000
		}
		return y
	})
	var in []int
	for i := range scores {
		if i >= from && i < to {
			in = append(in, i)
		}
	}
	slices.Sort(in)
	if s := scores[spike]; s < 0.9 || len(in) != 2 || in[1] != spike {
		t.Errorf("onsets in the turbulent stretch [%d, %d): %v (spike at %d scores %.3f); want its start and the spike, scoring ≥ 0.9", from, to, in, spike, s)
	}
}
