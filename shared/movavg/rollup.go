package movavg

import (
	"math"
	"slices"

	"github.com/metricpipe/metricpipe/shared/point"
)

// window accumulates one series-field's points of one tumbling window
// [start, start+Plan.rollup). 168 bytes; min and max are P²'s extreme
// markers.
type window struct {
	start    int64
	firstSeq int64 // source position of the point that opened it (Stage.Mark)
	count    int64
	lastTime int64
	sum      float64
	last     float64
	q        p2
}

// add counts x, a point at event time t.
func (w *window) add(t int64, x float64) {
	w.q.add(x, w.count)
	w.count++
	w.sum += x
	if w.count == 1 || t >= w.lastTime { // ties: the last arrival wins
		w.last, w.lastTime = x, t
	}
}

// appendFields appends the rollup fields of w to fs, taking their keys from
// keys (the rollup part of a fieldState's keys) for a field key of flen
// bytes. A mean or p95 that overflowed float64 is left out.
func (w *window) appendFields(fs []point.Field, keys string, flen int) []point.Field {
	lo, hi := w.q.minMax(w.count)
	vals := [...]float64{float64(w.count), w.sum / float64(w.count), lo, hi, w.last, w.q.quantile(w.count)}
	sufLens := [...]int{len(sufCount), len(sufMean), len(sufMin), len(sufMax), len(sufLast), len(sufP95)}
	off := 0
	for i, v := range vals {
		n := flen + sufLens[i]
		if finite(v) {
			fs = append(fs, point.Field{Key: keys[off : off+n], Value: v})
		}
		off += n
	}
	return fs
}

// windowStart returns the start of the window of length r holding t,
// aligned to the Unix epoch (also for times before it).
func windowStart(t, r int64) int64 {
	m := t % r
	if m < 0 {
		m += r
		if t < math.MinInt64+m {
			return math.MinInt64 // not representable; only for times in 1677
		}
	}
	return t - m
}

// satAdd returns a+b (b ≥ 0), saturated at MaxInt64: a window that would end
// after the year 2262 never closes by watermark, only by Flush.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// satSub returns a−b (b ≥ 0), saturated at MinInt64.
func satSub(a, b int64) int64 {
	if a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}

// openWindow returns f's window starting at start, opening it (in start
// order) when needed; opened reports that.
func (f *fieldState) openWindow(start int64) (w *window, opened bool) {
	i := 0
	for ; i < len(f.wins); i++ {
		switch s := f.wins[i].start; {
		case s == start:
			return &f.wins[i], false
		case s > start:
			f.wins = slices.Insert(f.wins, i, window{start: start})
			return &f.wins[i], true
		}
	}
	f.wins = append(f.wins, window{start: start})
	return &f.wins[i], true
}

// rollupOffset is where the rollup keys start in fieldState.keys.
func (pl *Plan) rollupOffset(flen int) int { return pl.derived * (flen + len(sufSMA)) }

// emitWindows appends one rollup point per window start among the windows of
// sr that end at or before until, and removes those windows.
func (s *Stage) emitWindows(sr *series, until int64, out []point.Point) []point.Point {
	r := sr.plan.rollup
	var (
		meas string
		tags []point.Tag
		id   bool
	)
	for {
		start, found := int64(math.MaxInt64), false
		for j := range sr.fields {
			f := &sr.fields[j]
			if len(f.wins) > 0 && satAdd(f.wins[0].start, r) <= until && (!found || f.wins[0].start < start) {
				start, found = f.wins[0].start, true
			}
		}
		if !found {
			return out
		}
		fs := s.fields.reserve(6 * len(sr.fields))
		for j := range sr.fields {
			f := &sr.fields[j]
			if len(f.wins) == 0 || f.wins[0].start != start {
				continue
			}
			flen := int(f.flen)
			fs = f.wins[0].appendFields(fs, f.keys[sr.plan.rollupOffset(flen):], flen)
			f.wins = f.wins[:copy(f.wins, f.wins[1:])]
		}
		s.fields.commit(len(fs))
		if !id {
			meas, tags = s.identity(sr)
			id = true
		}
		out = append(out, point.Point{Measurement: meas, Tags: tags, Fields: fs[:len(fs):len(fs)], Time: start})
	}
}
