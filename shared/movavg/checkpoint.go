package movavg

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/stream"
)

// checkpointKind and checkpointVersion head every checkpoint. Bump the
// version whenever what is written, or what it means, changes (the P²
// markers, the order of the fields, …): an older checkpoint is then
// refused rather than misread.
const (
	checkpointKind    = "movavg"
	checkpointVersion = 1
)

// configHash fingerprints the settings that give the state its meaning:
// every Params (what each ring, sum and EMA hold, how windows are aligned),
// AllowedLateness (what a stored watermark means) and Fields (which
// series-fields have state). MaxSeries is left out: Restore checks the
// checkpoint against it, so raising it keeps checkpoints usable. IdleFlush
// and IdleTimeout are left out: they only decide when processing-time
// housekeeping acts, not what a state means.
func configHash(c Config) uint64 {
	var b strings.Builder
	params := func(p Params) {
		fmt.Fprintf(&b, "sma=%d ema=%x wma=", p.SMAWindow, math.Float64bits(p.EMAAlpha))
		if p.WMAWeights == nil {
			b.WriteString("off")
		}
		for _, a := range p.WMAWeights {
			fmt.Fprintf(&b, "%x/", math.Float64bits(a))
		}
		fmt.Fprintf(&b, " rollup=%d;", int64(p.Rollup))
	}
	b.WriteString("default ")
	params(c.Default)
	for _, m := range slices.Sorted(func(yield func(string) bool) {
		for m := range c.Overrides {
			if !yield(m) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, "override %q ", m)
		params(c.Overrides[m])
	}
	fmt.Fprintf(&b, "lateness=%d;", int64(c.AllowedLateness))
	for _, f := range c.Fields {
		fmt.Fprintf(&b, "fields %q:%q;", f.Measurement, f.Field)
	}
	return stream.ConfigHash(b.String())
}

// Checkpoint appends the stage's whole state to dst: for every series slot
// (free slots included, so that a restored stage reuses them in the same
// order and emits exactly what this one would), its measurement and tags,
// its watermark and the processing time of its last point, and for each
// field its averages and its open windows, floats bit for bit. The plan of a
// series is not written: it follows from the measurement under the
// configuration the header's hash names. Counters (Stats) are not state and
// are not written.
func (s *Stage) Checkpoint(dst []byte) []byte {
	e := stream.Encoder{B: stream.AppendHeader(dst, checkpointKind, checkpointVersion, s.hash)}
	e.Uvarint(uint64(len(s.series)))
	for i := range s.series {
		sr := &s.series[i]
		e.Bool(sr.plan != nil)
		if sr.plan == nil {
			continue
		}
		_, rest := readString(sr.id)
		meas, rest := readString(rest)
		n, rest := readLen(rest)
		e.String(meas)
		e.Uvarint(uint64(n))
		for range n {
			var k, v string
			k, rest = readString(rest)
			v, rest = readString(rest)
			e.String(k)
			e.String(v)
		}
		e.Varint(sr.wm)
		e.Varint(sr.seen)
		e.Uvarint(uint64(len(sr.fields)))
		for j := range sr.fields {
			f := &sr.fields[j]
			e.String(f.name())
			f.Averages.Checkpoint(&e)
			e.Uvarint(uint64(len(f.wins)))
			for k := range f.wins {
				f.wins[k].checkpoint(&e)
			}
		}
	}
	e.Uvarint(uint64(len(s.free)))
	for _, i := range s.free {
		e.Uvarint(uint64(i))
	}
	return e.B
}

// Restore replaces the stage's state with one Checkpoint wrote at
// processing time taken (Unix ns); now is the processing time of the
// restore. The series' processing-time clocks move on by now − taken, so
// that the downtime does not count as idleness. A checkpoint of another
// kind, format version or configuration, or holding more series-fields
// than MaxSeries, is refused with an error wrapping stream.ErrIncompatible;
// a damaged one with stream.ErrCorrupt. The stage is then left empty. The
// counters of Stats are kept: they count what this Stage did.
func (s *Stage) Restore(src []byte, taken, now int64) error {
	s.clear()
	if err := s.restore(src, satDiff(now, taken)); err != nil {
		s.clear()
		return fmt.Errorf("restore the moving averages: %w", err)
	}
	return nil
}

// clear forgets every series.
func (s *Stage) clear() {
	s.index = make(map[string]int32)
	s.series, s.free, s.nFields = nil, nil, 0
}

// Lower bounds of the encoded sizes, for stream.Decoder.Count: a damaged
// count must not allocate more than the bytes could hold.
const (
	minSlotBytes   = 1                            // a free slot
	minTagBytes    = 2                            // two empty strings
	minWindowBytes = 4 + 2*8 + 8                  // four varints, sum and last, one sample
	minAvgBytes    = 1 + 1 + 1 + 8 + 8            // empty ring, pos, seen, sum, ema
	minFieldBytes  = 1 + 1 + minAvgBytes + 1      // name, averages, no window
	maxSeriesTags  = math.MaxUint16               // beyond any real series
	maxNameBytes   = 1 << 16                      // a field key, measurement or tag
	_              = maxSeriesTags + maxNameBytes // (documentation only)
)

func (s *Stage) restore(src []byte, shift int64) error {
	d := stream.NewDecoder(src)
	if err := d.Header(checkpointKind, checkpointVersion, s.hash); err != nil {
		return err
	}
	n := d.Count(minSlotBytes)
	if n > math.MaxInt32 {
		d.Fail("%d series slots", n)
	}
	s.series = make([]series, n)
	var p point.Point // the series' identity, to key it as track does
	empty := 0
	for i := 0; i < n && d.Err() == nil; i++ {
		if !d.Bool() {
			empty++
			continue
		}
		p.Measurement = d.String()
		p.Tags = p.Tags[:0]
		for range d.Count(minTagBytes) {
			k := d.String()
			p.Tags = append(p.Tags, point.Tag{Key: k, Value: d.String()})
		}
		wm, seen := d.Varint(), d.Varint()
		pl := s.planFor(p.Measurement)
		nf := d.Count(minFieldBytes + 8*int(pl.hist))
		if d.Err() != nil {
			break
		}
		if pl.off() {
			d.Fail("series of measurement %q, for which nothing is computed", p.Measurement)
			break
		}
		s.key = point.AppendSeriesKey(s.key[:0], &p)
		if _, dup := s.index[string(s.key)]; dup {
			d.Fail("series %q twice", s.key)
			break
		}
		s.id = appendIdentity(s.id[:0], s.key, &p)
		sr := &s.series[i]
		*sr = series{id: string(s.id), plan: pl, fields: make([]fieldState, 0, nf), wm: wm, seen: satShift(seen, shift)}
		s.index[seriesKey(sr.id)] = int32(i)
		for range nf {
			name := d.String()
			switch {
			case d.Err() != nil:
			case !s.sel.selected(p.Measurement, name):
				d.Fail("field %q of %q, which --derive-fields does not select", name, s.key)
			case sr.find(0, name) >= 0:
				d.Fail("field %q of %q twice", name, s.key)
			case s.nFields >= s.maxSeries:
				return fmt.Errorf("%w: it holds more series-fields than --max-series %d", stream.ErrIncompatible, s.maxSeries)
			}
			if d.Err() != nil {
				break
			}
			f := &sr.fields[s.addField(sr, pl, name)]
			f.Averages.Restore(d, pl)
			if nw := d.Count(minWindowBytes); nw > 0 {
				if pl.rollup == 0 {
					d.Fail("rollup windows of %q, whose measurement has no rollups", s.key)
					break
				}
				f.wins = make([]window, nw)
				for k := range f.wins {
					w := &f.wins[k]
					w.restore(d, pl.rollup)
					switch {
					case d.Err() != nil:
					case k > 0 && w.start <= f.wins[k-1].start:
						d.Fail("windows of %q out of order", s.key)
					case satAdd(w.start, pl.rollup) <= wm:
						d.Fail("a window of %q open past the watermark", s.key)
					}
				}
			}
		}
	}
	for range d.Count(1) {
		i := d.Uvarint()
		if d.Err() != nil || i >= uint64(n) || s.series[i].plan != nil || slices.Contains(s.free, int32(i)) {
			d.Fail("bad free slot %d", i)
			break
		}
		s.free = append(s.free, int32(i))
	}
	switch {
	case d.Err() != nil:
		return d.Err()
	case len(s.free) != empty:
		d.Fail("%d free slots listed, %d empty", len(s.free), empty)
	case d.Len() != 0:
		d.Fail("%d bytes after the state", d.Len())
	}
	return d.Err()
}

// maxWindowCount bounds a restored window's count far beyond any real one
// (a point per nanosecond for a century), so that counting on cannot
// overflow.
const maxWindowCount = 1 << 62

// checkpoint appends w to e.
func (w *window) checkpoint(e *stream.Encoder) {
	e.Varint(w.start)
	e.Varint(w.firstSeq)
	e.Uvarint(uint64(w.count))
	e.Varint(w.lastTime)
	e.Float64(w.sum)
	e.Float64(w.last)
	w.q.checkpoint(e, w.count)
}

// restore reads what checkpoint wrote for a window of length r.
func (w *window) restore(d *stream.Decoder, r int64) {
	w.start, w.firstSeq = d.Varint(), d.Varint()
	c := d.Uvarint()
	w.lastTime, w.sum, w.last = d.Varint(), d.Float64(), d.Float64()
	switch {
	case d.Err() != nil:
		return
	case c == 0 || c > maxWindowCount:
		d.Fail("a window of %d points", c)
		return
	case windowStart(w.start, r) != w.start:
		d.Fail("a window starting at %d, not a multiple of %d", w.start, r)
		return
	}
	w.count = int64(c)
	w.q.restore(d, w.count)
}

// satDiff returns a−b, saturated at the bounds of int64.
func satDiff(a, b int64) int64 {
	d := a - b
	switch {
	case b > 0 && d > a:
		return math.MinInt64
	case b < 0 && d < a:
		return math.MaxInt64
	}
	return d
}

// satShift returns t+d, saturated at the bounds of int64.
func satShift(t, d int64) int64 {
	s := t + d
	switch {
	case d > 0 && s < t:
		return math.MaxInt64
	case d < 0 && s > t:
		return math.MinInt64
	}
	return s
}
