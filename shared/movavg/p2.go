package movavg

import "math"

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
// reuse. Until five samples were seen, q holds them sorted, and the
// quantile is computed exactly.
type p2 struct {
	q [5]float64 // marker heights; the sorted samples while count ≤ 5
	n [3]int64   // 1-based positions of markers 1..3; marker 0 is at 1, marker 4 at count
}

// add feeds x; c is the number of samples before x.
func (e *p2) add(x float64, c int64) {
	if c < 5 {
		i := int(c)
		for ; i > 0 && e.q[i-1] > x; i-- {
			e.q[i] = e.q[i-1]
		}
		e.q[i] = x
		if c == 4 {
			e.n = [3]int64{2, 3, 4}
		}
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

// quantile returns the p95 estimate of c samples (c ≥ 1). Up to five
// samples it is exact: linear interpolation between order statistics at
// 1-based position 1 + (c−1)·p (Hyndman and Fan's type 7, the default of R
// and NumPy), the position P²'s middle marker tracks.
func (e *p2) quantile(c int64) float64 {
	if c > 5 {
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
	if c < 5 {
		return e.q[0], e.q[c-1]
	}
	return e.q[0], e.q[4]
}
