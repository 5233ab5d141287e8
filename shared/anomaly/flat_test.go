package anomaly

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// flatSeries is a series like the producer's flat-then-shift shape
// (producer/generator.go): a level of 10 to 100 on a grid of a thousandth
// of its decade (44.2, 10.3, 95.8), constant but for a quantum of jitter
// now and then (round(N(0,1)·jitter) quanta: about 1% of points at 0.2, 10%
// at 0.3), stepping at the points in shifts by 10 to 50% of its level, for
// good.
type flatSeries struct {
	rng     *rand.Rand
	quantum float64
	units   int64
	jitter  float64
	shifts  []int
	shiftBy []float64 // each shift's size, relative to the level
	step    int
}

func newFlatSeries(seed uint64, jitter float64, shifts ...int) *flatSeries {
	rng := rand.New(rand.NewPCG(seed, 15))
	level := 10 + rng.Float64()*90
	q := math.Pow(10, math.Floor(math.Log10(level))-2)
	s := &flatSeries{rng: rng, quantum: q, units: int64(math.Round(level / q)), jitter: jitter, shifts: shifts}
	for range shifts {
		by := 0.1 + 0.4*rng.Float64()
		if rng.IntN(2) == 0 {
			by = -by
		}
		s.shiftBy = append(s.shiftBy, by)
	}
	return s
}

// next returns the series' next value.
func (s *flatSeries) next() float64 {
	if k := slices.Index(s.shifts, s.step); k >= 0 {
		s.units += int64(float64(s.units) * s.shiftBy[k])
	}
	s.step++
	return float64(s.units+int64(math.Round(s.rng.NormFloat64()*s.jitter))) * s.quantum
}

// TestFlatJitterIsNoSurprise (issue 15): on a flat series reported on a
// grid, a quantum of jitter is the resolution of the series, not an
// anomaly: no warm point has Z ≥ onsetZ, however rare the jitter and
// however early it comes (the first jitter may be the first change the
// series ever makes). The mean step alone floors the scale near 0 there.
func TestFlatJitterIsNoSurprise(t *testing.T) {
	for seed := range uint64(8) {
		for _, jitter := range []float64{0.2, 0.3} {
			s := newFlatSeries(seed, jitter)
			d, p := newTestDetector(t)
			var bad []int
			worst := 0.0
			for i := range 4000 {
				y := s.next()
				v := d.Observe(y, p)
				if v.Warm && v.Z >= onsetZ {
					bad = append(bad, i)
					worst = max(worst, v.Z)
				}
			}
			if len(bad) > 0 {
				t.Errorf("seed %d, jitter %.1f, quantum %g: Z ≥ %g at %d points (first %v, worst Z %.0f)",
					seed, jitter, s.quantum, onsetZ, len(bad), bad[:min(len(bad), 5)], worst)
			}
		}
	}
}

// TestFlatShiftEchoes (issue 15): on a flat series (exactly constant, or
// with a quantum of jitter), every lasting level shift is an onset that
// scores at least as a Z of onsetZ does, and nothing else opens an
// episode: in particular not a season later (336 or 672 points after a
// shift), where a seasonal forecast that had taken over a series with no
// pattern replayed the step.
func TestFlatShiftEchoes(t *testing.T) {
	shifts := []int{400, 1500, 2600}
	for seed := range uint64(8) {
		for _, jitter := range []float64{0, 0.2, 0.3} {
			s := newFlatSeries(seed, jitter, shifts...)
			d, p := newTestDetector(t)
			var onsets []int
			var missed, extra []string
			for i := range 4000 {
				v := d.Observe(s.next(), p)
				if v.Score > 0 { // only an onset scores
					onsets = append(onsets, i)
				}
				if slices.Contains(shifts, i) && v.Score < Score(onsetZ) {
					missed = append(missed, fmt.Sprintf("%d (Z %.1f, Score %.2f)", i, v.Z, v.Score))
				}
			}
			if len(missed) == 0 && slices.Equal(onsets, shifts) {
				continue
			}
			for _, at := range onsets {
				if !slices.Contains(shifts, at) {
					extra = append(extra, sinceShift(at, shifts))
				}
			}
			t.Errorf("seed %d, jitter %.1f: shifts missed %v; onsets elsewhere %v", seed, jitter, missed, extra)
		}
	}
}

// sinceShift names point at by its distance from the shift before it.
func sinceShift(at int, shifts []int) string {
	last := -1
	for _, s := range shifts {
		if s <= at {
			last = s
		}
	}
	if last < 0 {
		return strconv.Itoa(at)
	}
	return fmt.Sprintf("%d (shift+%d)", at, at-last)
}

// TestLearnQuantum: the quantum is the coarsest power of ten every value
// is a multiple of, at most a hundredth of each; none for values off any
// grid of up to 9 significant digits (want −1), nor while nothing tells
// (want 0).
func TestLearnQuantum(t *testing.T) {
	f := func(want float64, ys ...float64) {
		t.Helper()
		var d Detector
		for _, y := range ys {
			d.learnQuantum(y)
		}
		got := d.quantum()
		if d.grid == gridOff {
			got = -1
		}
		if got != want && !(math.Abs(got-want) <= 1e-12*want) {
			t.Errorf("%v: quantum %v, want %v", ys, got, want)
		}
	}
	f(0)
	f(0, 0, 0)
	f(0, 5e-324) // subnormal: its grid would underflow
	f(0.1, 44.2)
	f(0.1, 44.2, 44.3, 10.3, -95.8, 0)
	f(0.01, 44.2, 44.25)
	f(1e-11, 44.2, 1e-9)
	f(0.1, 50) // the trailing zero says nothing
	f(10, 1200)
	f(1, 1200, 1201)
	f(0.01, 3)
	f(1, 123456789)
	f(-1, 1234567891)
	f(-1, math.Pi)
	f(-1, 44.2, math.Pi, 44.3)
	f(1e-302, 1e-300)
	f(-1, 0x1p-1022) // the least normal value has 17 digits
	f(1e-310, 2.5e-308)
	f(1e306, 1e308)
}
