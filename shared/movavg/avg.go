package movavg

import (
	"math"
	"slices"

	"github.com/metricpipe/metricpipe/shared/point"
)

// Field key suffixes, in the order a field's cached key string holds them.
// The derived ones are all four bytes long, which plan.rollupOffset uses.
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

// plan is a Params compiled for the hot path; every series of a measurement
// points to the same plan.
type plan struct {
	sma     uint32    // SMA window, 0 = off
	alpha   float64   // EMA alpha, 0 = off
	weights []float64 // WMA weights (a copy), nil = off
	rollup  int64     // window length in ns, 0 = off
	hist    uint32    // ring length: max(sma, len(weights))
	seenCap uint32    // points counted before fieldState.seen saturates: max(hist, 1)
	derived int       // number of derived outputs per field (0..3)
}

func newPlan(p Params) *plan {
	pl := &plan{
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
func (pl *plan) off() bool { return pl.derived == 0 && pl.rollup == 0 }

// suffixes returns the suffixes of the field keys the plan outputs, in the
// order of fieldState.keys.
func (pl *plan) suffixes() []string {
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
func (pl *plan) keysFor(f string) string {
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
// (104 bytes) matters: there is one per tracked series-field.
type fieldState struct {
	keys string    // see plan.keysFor; the field key is keys[:flen]
	ring []float64 // the last plan.hist values; ring[pos] is the oldest once full
	sum  float64   // sum of the last plan.sma values in ring
	ema  float64
	last int64  // latest event time of the field's points, for Expire
	pos  uint32 // next slot of ring to write
	seen uint32 // points seen, saturating at plan.seenCap
	flen uint32
	wins []window // open rollup windows, sorted by start
}

func (f *fieldState) name() string { return f.keys[:f.flen] }

// addAvg feeds x, the field's next value in arrival order, to the moving
// averages.
//
// The SMA keeps a running sum: add the new value, subtract the one leaving
// the window. Rounding errors of that sum would accumulate without bound
// over a long stream, so each time the ring wraps (every plan.hist ≥ sma
// updates) the sum is recomputed from the ring: the error is then bounded
// by about 2·hist·ε relative, whatever the stream's length, at an amortised
// cost below one addition per update. This was preferred to Kahan/Neumaier
// compensation because it needs no extra state and also recovers at once
// after catastrophic cancellation (a run of 1e15 values followed by small
// ones).
func (f *fieldState) addAvg(pl *plan, x float64) {
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

// sma returns the simple moving average, and false during warm-up.
func (f *fieldState) sma(pl *plan) (float64, bool) {
	if f.seen < pl.sma {
		return 0, false
	}
	return f.sum / float64(pl.sma), true
}

// wma returns Σ aᵢ·x(t−i), and false during warm-up.
func (f *fieldState) wma(pl *plan) (float64, bool) {
	if f.seen < uint32(len(pl.weights)) {
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

// finite reports whether v can be written: line protocol has no NaN or Inf.
// Finite inputs give finite averages unless a sum overflows float64.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// appendDerived appends the field's derived values to fs: those of pl that
// are warmed up and finite, keyed by the cached keys.
func (f *fieldState) appendDerived(fs []point.Field, pl *plan) []point.Field {
	n := int(f.flen) + len(sufSMA) // every derived suffix has that length
	off := 0
	if pl.sma > 0 {
		if v, ok := f.sma(pl); ok && finite(v) {
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
		if v, ok := f.wma(pl); ok && finite(v) {
			fs = append(fs, point.Field{Key: f.keys[off : off+n], Value: v})
		}
	}
	return fs
}
