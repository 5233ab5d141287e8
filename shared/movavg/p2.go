package movavg

import (
	"math"

	"github.com/metricpipe/metricpipe/shared/stream"
)

// p2Quantile is the quantile the rollups estimate.
const p2Quantile = 0.95

// p2Increment is the rate at which the desired position of marker i (1..3)
// moves per sample: p/2, p and (1+p)/2. (Markers 0 and 4 stay at the
// minimum and maximum.)
func p2Increment(i int) float64 {
	switch i {
	case 1:
		return p2Quantile / 2
	case 2:
		return p2Quantile
	}
	return (1 + p2Quantile) / 2
}

// p2 is the P² streaming quantile estimator of Jain and Chlamtac (1985,
// "The P² algorithm for dynamic calculation of quantiles and histograms
// without storing observations", CACM 28(10)): five markers whose heights
// follow the minimum, p/2, p, (1+p)/2 quantiles and maximum, moved by
// piecewise-parabolic interpolation as samples arrive. O(1) memory and time
// per sample, where exact quantiles would have to keep every sample of the
// window. The sample count lives in the window that holds the estimator.
//
// Markers 0 and 4 are the exact minimum and maximum, which the rollups
// reuse. Until p2Exact samples were seen, q holds them sorted and the
// quantile is exact. Why keep that many: started from five samples, the p95
// marker sits at the median and moves one position per sample, so a window
// of ten rising points would read 7 where the p95 is 9.55; metric windows
// often hold only a handful of points (a minute of 10 s scrapes).
type p2 struct {
	q [p2Exact]float64 // the sorted samples while count ≤ p2Exact; then q[0..4] are the marker heights
	n [3]int64         // 1-based positions of markers 1..3; marker 0 is at 1, marker 4 at count
}

// p2Exact is how many samples are kept exactly before P² takes over.
const p2Exact = 12

// add feeds x; c is the number of samples before x.
func (e *p2) add(x float64, c int64) {
	if c < p2Exact {
		insertSorted(e.q[:c+1], x)
		return
	}
	if c == p2Exact {
		e.start(x)
		return
	}
	// Find the cell k (between markers k and k+1) of x, stretching the
	// extreme markers when x is a new minimum or maximum.
	var k int
	switch {
	case x < e.q[0]:
		e.q[0] = x
	case x < e.q[1]:
	case x < e.q[2]:
		k = 1
	case x < e.q[3]:
		k = 2
	default:
		k = 3
		e.q[4] = max(e.q[4], x)
	}
	for i := k; i < 3; i++ {
		e.n[i]++ // markers k+1..3; marker 4 follows the count
	}
	total := c + 1
	for i := 1; i <= 3; i++ {
		ni := e.n[i-1]
		prev, next := e.pos(i-1, total), e.pos(i+1, total)
		d := 1 + float64(total-1)*p2Increment(i) - float64(ni)
		if !(d >= 1 && next-ni > 1) && !(d <= -1 && prev-ni < -1) {
			continue
		}
		ds := int64(1)
		if d < 0 {
			ds = -1
		}
		if q := e.parabolic(i, ds, prev, ni, next); e.q[i-1] < q && q < e.q[i+1] {
			e.q[i] = q
		} else {
			j := i + int(ds)
			e.q[i] += float64(ds) * (e.q[j] - e.q[i]) / float64(e.pos(j, total)-ni)
		}
		e.n[i-1] += ds
	}
}

// insertSorted puts x into xs, whose last slot is free and the rest sorted.
func insertSorted(xs []float64, x float64) {
	i := len(xs) - 1
	for ; i > 0 && xs[i-1] > x; i-- {
		xs[i] = xs[i-1]
	}
	xs[i] = x
}

// start turns the p2Exact sorted samples and x into the five markers, each
// at the order statistic nearest its desired position (kept strictly
// increasing, as P² requires).
func (e *p2) start(x float64) {
	var all [p2Exact + 1]float64
	copy(all[:], e.q[:])
	insertSorted(all[:], x)
	total := int64(len(all))
	next := total // position of the marker above
	for i := 3; i >= 1; i-- {
		want := int64(math.Round(1 + float64(total-1)*p2Increment(i)))
		e.n[i-1] = max(min(want, next-1), int64(i)+1)
		next = e.n[i-1]
	}
	e.q = [p2Exact]float64{all[0], all[e.n[0]-1], all[e.n[1]-1], all[e.n[2]-1], all[total-1]}
}

// pos returns the position of marker i among total samples.
func (e *p2) pos(i int, total int64) int64 {
	switch i {
	case 0:
		return 1
	case 4:
		return total
	}
	return e.n[i-1]
}

// parabolic is the P² formula moving marker i by d (±1) positions.
func (e *p2) parabolic(i int, d, prev, ni, next int64) float64 {
	q, fd := e.q, float64(d)
	return q[i] + fd/float64(next-prev)*
		(float64(ni-prev+d)*(q[i+1]-q[i])/float64(next-ni)+
			float64(next-ni-d)*(q[i]-q[i-1])/float64(ni-prev))
}

// quantile returns the p95 estimate of c samples (c ≥ 1). Up to p2Exact
// samples it is exact: linear interpolation between order statistics at
// 1-based position 1 + (c−1)·p (Hyndman and Fan's type 7, the default of R
// and NumPy), the position P²'s middle marker tracks.
func (e *p2) quantile(c int64) float64 {
	if c > p2Exact {
		return e.q[2]
	}
	return exactQuantile(e.q[:c], p2Quantile)
}

// exactQuantile is the type-7 quantile p of the sorted, non-empty xs.
func exactQuantile(xs []float64, p float64) float64 {
	h := float64(len(xs)-1) * p
	lo := int(math.Floor(h))
	if lo+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[lo] + (h-float64(lo))*(xs[lo+1]-xs[lo])
}

// minMax returns the smallest and largest of c samples (c ≥ 1).
func (e *p2) minMax(c int64) (float64, float64) {
	if c <= p2Exact {
		return e.q[0], e.q[c-1]
	}
	return e.q[0], e.q[4]
}

// checkpoint appends the estimator of c samples to e: the samples while
// they are kept exactly, then the five markers and three positions.
func (e *p2) checkpoint(enc *stream.Encoder, c int64) {
	if c <= p2Exact {
		for _, v := range e.q[:c] {
			enc.Float64(v)
		}
		return
	}
	for _, v := range e.q[:5] {
		enc.Float64(v)
	}
	for _, n := range e.n {
		enc.Varint(n)
	}
}

// restore reads what checkpoint wrote for c samples (c ≥ 1). Marker
// positions must be strictly between 1 and c, increasing, as P² keeps them.
func (e *p2) restore(d *stream.Decoder, c int64) {
	*e = p2{}
	if c <= p2Exact {
		for i := range c {
			e.q[i] = d.Float64()
		}
		return
	}
	for i := range 5 {
		e.q[i] = d.Float64()
	}
	prev := int64(1)
	for i := range e.n {
		e.n[i] = d.Varint()
		if d.Err() == nil && (e.n[i] <= prev || e.n[i] >= c) {
			d.Fail("P² marker %d at position %d of %d", i+1, e.n[i], c)
		}
		prev = e.n[i]
	}
}
