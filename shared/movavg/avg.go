package movavg

import (
	"errors"
	"math"
	"slices"

	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/stream"
)

// Field key suffixes, in the order a field's cached key string holds them.
// The derived ones are all four bytes long, which Plan.rollupOffset uses.
const (
	sufSMA   = "_sma"
	sufEMA   = "_ema"
	sufWMA   = "_wma"
	sufCount = "_count"
	sufMean  = "_mean"
	sufMin   = "_min"
	sufMax   = "_max"
	sufLast  = "_last"
	sufP95   = "_p95"
)

// Plan is a Params compiled for the hot path. Every series of a measurement
// points to the same Plan; it is read-only once built, so safe for
// concurrent use (the analyzer shares one between its partition workers).
type Plan struct {
	sma     uint32    // SMA window, 0 = off
	alpha   float64   // EMA alpha, 0 = off
	weights []float64 // WMA weights (a copy), nil = off
	rollup  int64     // window length in ns, 0 = off
	hist    uint32    // ring length: max(sma, len(weights))
	seenCap uint32    // points counted before Averages.seen saturates: max(hist, 1)
	derived int       // number of derived outputs per field (0..3)
}

// NewPlan compiles p for [Averages], or returns the problems
// [Config.Validate] reports for Config.Default (naming --sma-window,
// --ema-alpha, --wma-weights, --rollup). Rollup is validated but Averages
// ignore it.
func NewPlan(p Params) (*Plan, error) {
	if errs := paramProblems(p, "", false); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return newPlan(p), nil
}

func newPlan(p Params) *Plan {
	pl := &Plan{
		sma:     uint32(p.SMAWindow),
		alpha:   p.EMAAlpha,
		weights: slices.Clone(p.WMAWeights),
		rollup:  int64(p.Rollup),
	}
	pl.hist = max(pl.sma, uint32(len(pl.weights)))
	pl.seenCap = max(pl.hist, 1)
	for _, on := range []bool{pl.sma > 0, pl.alpha > 0, pl.weights != nil} {
		if on {
			pl.derived++
		}
	}
	return pl
}

// off reports whether the plan computes nothing.
func (pl *Plan) off() bool { return pl.derived == 0 && pl.rollup == 0 }

// suffixes returns the suffixes of the field keys the plan outputs, in the
// order of fieldState.keys.
func (pl *Plan) suffixes() []string {
	var s []string
	if pl.sma > 0 {
		s = append(s, sufSMA)
	}
	if pl.alpha > 0 {
		s = append(s, sufEMA)
	}
	if pl.weights != nil {
		s = append(s, sufWMA)
	}
	if pl.rollup > 0 {
		s = append(s, sufCount, sufMean, sufMin, sufMax, sufLast, sufP95)
	}
	return s
}

// keysFor builds the key string of field f under pl: f+suffix for every
// suffix, concatenated, so one allocation holds all output keys and f itself
// is its prefix.
func (pl *Plan) keysFor(f string) string {
	suf := pl.suffixes()
	n := 0
	for _, s := range suf {
		n += len(f) + len(s)
	}
	b := make([]byte, 0, n)
	for _, s := range suf {
		b = append(b, f...)
		b = append(b, s...)
	}
	return string(b)
}

// fieldState is everything the stage keeps for one series-field. Its size
// (96 bytes) matters: there is one per tracked series-field.
type fieldState struct {
	keys string // see Plan.keysFor; the field key is keys[:flen]
	Averages
	flen uint32
	wins []window // open rollup windows, sorted by start
}

func (f *fieldState) name() string { return f.keys[:f.flen] }

// Averages are the moving averages of one series-field under a [Plan]:
// the state and arithmetic behind the stage's <f>_sma, <f>_ema and <f>_wma,
// which the analyzer uses too so that its rules test the very values the
// consumer writes. The zero value is for a Plan without SMA and WMA; use
// NewAverages otherwise. Every method takes the Plan the Averages were made
// for (it is not stored: 8 bytes per series-field). Not safe for concurrent
// use.
type Averages struct {
	ring []float64 // the last Plan.hist values; ring[pos] is the oldest once full
	sum  float64   // sum of the last Plan.sma values in ring
	ema  float64
	pos  uint32 // next slot of ring to write
	seen uint32 // points seen, saturating at Plan.seenCap
}

// NewAverages returns the empty Averages of pl: every average warms up.
func NewAverages(pl *Plan) Averages {
	var a Averages
	if pl.hist > 0 {
		a.ring = make([]float64, pl.hist)
	}
	return a
}

// Add feeds x, the series-field's next value in arrival order.
//
// The SMA keeps a running sum: add the new value, subtract the one leaving
// the window. Rounding errors of that sum would accumulate without bound
// over a long stream, so each time the ring wraps (every Plan.hist ≥ sma
// updates) the sum is recomputed from the ring: the error is then bounded
// by about 2·hist·ε relative, whatever the stream's length, at an amortised
// cost below one addition per update. This was preferred to Kahan/Neumaier
// compensation because it needs no extra state and also recovers at once
// after catastrophic cancellation (a run of 1e15 values followed by small
// ones).
func (f *Averages) Add(pl *Plan, x float64) {
	if h := uint32(len(f.ring)); h > 0 {
		if n := pl.sma; n > 0 {
			if f.seen >= n {
				i := f.pos + h - n
				if i >= h {
					i -= h
				}
				f.sum += x - f.ring[i]
			} else {
				f.sum += x
			}
		}
		f.ring[f.pos] = x
		if f.pos++; f.pos == h {
			f.pos = 0
			if n := pl.sma; n > 0 {
				var s float64
				for _, v := range f.ring[h-n:] {
					s += v
				}
				f.sum = s
			}
		}
	}
	if pl.alpha > 0 {
		if f.seen == 0 {
			f.ema = x
		} else {
			// Not ema + α(x − ema): x − ema can overflow for finite values
			// of opposite signs, this convex combination cannot.
			f.ema = (1-pl.alpha)*f.ema + pl.alpha*x
		}
	}
	if f.seen < pl.seenCap {
		f.seen++
	}
}

// SMA returns the mean of the last Params.SMAWindow values, and false when
// the SMA is off or warming up (fewer values were added). It may be ±Inf
// when a sum overflows float64.
func (f *Averages) SMA(pl *Plan) (float64, bool) {
	if pl.sma == 0 || f.seen < pl.sma {
		return 0, false
	}
	return f.sum / float64(pl.sma), true
}

// EMA returns the exponential moving average, which starts at the first
// value, and false when the EMA is off or no value was added.
func (f *Averages) EMA(pl *Plan) (float64, bool) {
	if pl.alpha == 0 || f.seen == 0 {
		return 0, false
	}
	return f.ema, true
}

// WMA returns Σ aᵢ·x(t−i), and false when the WMA is off or warming up
// (fewer than len(Params.WMAWeights) values were added).
func (f *Averages) WMA(pl *Plan) (float64, bool) {
	if pl.weights == nil || f.seen < uint32(len(pl.weights)) {
		return 0, false
	}
	j := int(f.pos)
	var y float64
	for _, a := range pl.weights {
		if j--; j < 0 {
			j = len(f.ring) - 1
		}
		y += a * f.ring[j]
	}
	return y, true
}

// Checkpoint appends the Averages to e, bit for bit: restored, they compute
// exactly what these would have. The Plan is not recorded: the caller's
// checkpoint header records the configuration it came from.
func (f *Averages) Checkpoint(e *stream.Encoder) {
	e.Floats(f.ring)
	e.Uvarint(uint64(f.pos))
	e.Uvarint(uint64(f.seen))
	e.Float64(f.sum)
	e.Float64(f.ema)
}

// Restore replaces f with Averages that Checkpoint wrote for pl, reusing
// f's ring. A record that cannot be Averages of pl (a ring of another
// length, a position or count out of range) fails d with ErrCorrupt; f is
// then unusable until reset with NewAverages.
func (f *Averages) Restore(d *stream.Decoder, pl *Plan) {
	ring := d.Floats(f.ring)
	pos, seen := d.Uvarint(), d.Uvarint()
	sum, ema := d.Float64(), d.Float64()
	switch {
	case d.Err() != nil:
		return
	case len(ring) != int(pl.hist):
		d.Fail("averages: a ring of %d values, the plan keeps %d", len(ring), pl.hist)
	case pos >= uint64(max(pl.hist, 1)):
		d.Fail("averages: ring position %d of %d", pos, pl.hist)
	case seen > uint64(pl.seenCap):
		d.Fail("averages: %d values seen, counted up to %d", seen, pl.seenCap)
	}
	if d.Err() != nil {
		return
	}
	if len(ring) == 0 {
		ring = nil // as NewAverages makes it
	}
	*f = Averages{ring: ring, sum: sum, ema: ema, pos: uint32(pos), seen: uint32(seen)}
}

// finite reports whether v can be written: line protocol has no NaN or Inf.
// Finite inputs give finite averages unless a sum overflows float64.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// appendDerived appends the field's derived values to fs: those of pl that
// are warmed up and finite, keyed by the cached keys.
func (f *fieldState) appendDerived(fs []point.Field, pl *Plan) []point.Field {
	n := int(f.flen) + len(sufSMA) // every derived suffix has that length
	off := 0
	if pl.sma > 0 {
		if v, ok := f.SMA(pl); ok && finite(v) {
			fs = append(fs, point.Field{Key: f.keys[off : off+n], Value: v})
		}
		off += n
	}
	if pl.alpha > 0 {
		if finite(f.ema) {
			fs = append(fs, point.Field{Key: f.keys[off : off+n], Value: f.ema})
		}
		off += n
	}
	if pl.weights != nil {
		if v, ok := f.WMA(pl); ok && finite(v) {
			fs = append(fs, point.Field{Key: f.keys[off : off+n], Value: v})
		}
	}
	return fs
}
