package nab

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Bootstrap returns the central share (0.9 for 90%) of the normalized
// scores of resamples corpora, each drawn from r's files with
// replacement, every file scored as in r. A score over a few dozen series
// owes much to which series happen to be in the corpus: the interval says
// how far another draw of as many series of the same kinds could move it,
// what the score promises for series outside the corpus. Null and Perfect
// of a file follow from its scored windows (TP+FN) under p, as in Score;
// draws without a scored window are left out. The draws come from seed:
// the same inputs give the same interval. NaN, NaN when r has no file
// with a scored window.
func Bootstrap(r Result, p Profile, share float64, resamples int, seed uint64) (lo, hi float64) {
	return bootstrap([]Result{r}, p, share, resamples, seed)
}

// BootstrapDifference is Bootstrap of the difference a − b between two
// detectors' normalized scores of the same series (their Files in the
// same order), both scored on each draw: whether one detector beats the
// other on series of these kinds, or only on these: a draw heavy in hard
// series is hard for both, so only where they differ counts.
func BootstrapDifference(a, b Result, p Profile, share float64, resamples int, seed uint64) (lo, hi float64) {
	return bootstrap([]Result{a, b}, p, share, resamples, seed)
}

// bootstrap is Bootstrap of rs[0] (one result) or of rs[0] − rs[1].
func bootstrap(rs []Result, p Profile, share float64, resamples int, seed uint64) (lo, hi float64) {
	n := len(rs[0].Files)
	if !slices.ContainsFunc(rs[0].Files, func(f FileResult) bool { return f.TP+f.FN > 0 }) || resamples < 1 {
		return math.NaN(), math.NaN()
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	stats := make([]float64, 0, resamples)
	for range resamples {
		var windows float64
		var raw [2]float64
		for range n {
			i := rng.IntN(n)
			windows += float64(rs[0].Files[i].TP + rs[0].Files[i].FN)
			for k, r := range rs {
				raw[k] += r.Files[i].Raw
			}
		}
		if windows == 0 {
			continue
		}
		null, perfect := -p.FN*windows, p.TP*windows
		stat := 100 * (raw[0] - null) / (perfect - null)
		if len(rs) == 2 {
			stat -= 100 * (raw[1] - null) / (perfect - null)
		}
		stats = append(stats, stat)
	}
	if len(stats) == 0 {
		return math.NaN(), math.NaN()
	}
	slices.Sort(stats)
	tail := (1 - share) / 2
	return quantile(stats, tail), quantile(stats, 1-tail)
}

// quantile returns the q-quantile of sorted xs, interpolating linearly
// between order statistics.
func quantile(xs []float64, q float64) float64 {
	pos := q * float64(len(xs)-1)
	i := int(pos)
	if i >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	return xs[i] + (pos-float64(i))*(xs[i+1]-xs[i])
}
