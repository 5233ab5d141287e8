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
// what the score promises for series outside the corpus. Null
// and Perfect of a file follow from its scored windows (TP+FN) under p, as
// in Score; draws without a scored window are left out. The draws come
// from seed: the same inputs give the same interval. NaN, NaN when r has
// no file with a scored window.
func Bootstrap(r Result, p Profile, share float64, resamples int, seed uint64) (lo, hi float64) {
	files := r.Files
	if !slices.ContainsFunc(files, func(f FileResult) bool { return f.TP+f.FN > 0 }) || resamples < 1 {
		return math.NaN(), math.NaN()
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	scores := make([]float64, 0, resamples)
	for range resamples {
		var raw, null, perfect float64
		for range files {
			f := files[rng.IntN(len(files))]
			w := float64(f.TP + f.FN)
			raw += f.Raw
			null -= p.FN * w
			perfect += p.TP * w
		}
		if perfect != null {
			scores = append(scores, 100*(raw-null)/(perfect-null))
		}
	}
	if len(scores) == 0 {
		return math.NaN(), math.NaN()
	}
	slices.Sort(scores)
	tail := (1 - share) / 2
	return quantile(scores, tail), quantile(scores, 1-tail)
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
