package anomaly

import (
	"math"

	"github.com/metricpipe/metricpipe/shared/stream"
)

// Checkpoint appends d's state to e, its forecaster's included, floats bit
// for bit, so that a Detector restored from it judges every later point
// exactly as d would. The seasonal ring is written up to the points it
// holds: about 800 bytes once full, plus the forecaster's
// (see forecast.Forecaster.Checkpoint).
func (d *Detector) Checkpoint(e *stream.Encoder) {
	d.fc.Checkpoint(e)
	d.season.checkpoint(e)
	d.fcScale.Checkpoint(e)
	d.sScale.Checkpoint(e)
	e.Float64(d.fcMSE)
	e.Float64(float64(d.levelMSE))
	e.Float64(d.step)
	e.Float64(d.prev)
	e.Varint(int64(d.grid))
	e.Uvarint(uint64(d.n))
	e.Uvarint(uint64(d.onset.age))
	e.Uvarint(uint64(d.onset.calm))
	e.Bool(d.onset.in)
	e.Float64(float64(d.onset.recent))
	e.Float64(float64(d.onset.lnMean))
	e.Float64(float64(d.onset.lnVar))
	e.Uvarint(uint64(d.onset.onsets))
	e.Float64(float64(d.onset.peak))
	e.Bool(d.timed)
	e.Varint(d.start)
	e.Varint(d.last)
	e.Uvarint(uint64(d.outlier))
	e.Bool(d.useSeason)
}

// Restore replaces d's state with what Checkpoint wrote, read from dec. d
// must have been made by NewDetector with a forecaster of the checkpointed
// one's Config; a checkpoint that does not fit, or whose counters are out
// of range, fails dec with an error wrapping stream.ErrCorrupt. On failure
// d is unspecified: discard it. Restore does not allocate.
func (d *Detector) Restore(dec *stream.Decoder) {
	d.fc.Restore(dec)
	d.season.restore(dec)
	d.fcScale.Restore(dec)
	d.sScale.Restore(dec)
	d.fcMSE, d.levelMSE = dec.Float64(), float32(dec.Float64())
	d.step, d.prev = dec.Float64(), dec.Float64()
	if g := dec.Varint(); g < gridOff || g > gridBias+308 {
		dec.Fail("quantum grid %d: want %d to %d", g, gridOff, gridBias+308)
	} else {
		d.grid = int16(g)
	}
	d.n = uint32(upTo(dec, math.MaxUint32, "detector points"))
	d.onset.age = uint16(upTo(dec, math.MaxUint16, "episode age"))
	d.onset.calm = uint16(upTo(dec, math.MaxUint16, "episode calm"))
	d.onset.in = dec.Bool()
	d.onset.recent, d.onset.lnMean, d.onset.lnVar = float32(dec.Float64()), float32(dec.Float64()), float32(dec.Float64())
	d.onset.onsets = uint32(upTo(dec, math.MaxUint32, "onsets"))
	d.onset.peak = float32(dec.Float64())
	d.timed, d.start, d.last = dec.Bool(), dec.Varint(), dec.Varint()
	d.outlier = uint8(upTo(dec, maxClipped, "outliers clipped"))
	d.useSeason = dec.Bool()
}

// Checkpoint appends the scorer's state to e.
func (s *Scorer) Checkpoint(e *stream.Encoder) {
	e.Uvarint(uint64(s.n))
	e.Float64(s.mad)
}

// Restore replaces the scorer's state with what Checkpoint wrote; a count
// out of range fails d with an error wrapping stream.ErrCorrupt.
func (s *Scorer) Restore(d *stream.Decoder) {
	s.n = uint32(upTo(d, math.MaxUint32, "residuals scored"))
	s.mad = d.Float64()
}

// checkpoint writes the ring four deviations to a word; this fails to
// compile unless ringLen is a multiple of 4.
const _ uint = -(ringLen % 4)

func (s *season) checkpoint(e *stream.Encoder) {
	// Slots past n were never written (store fills the ring from 0, and
	// everything starts over from the zero value): they are zero.
	held := min(s.n, ringLen)
	e.Uvarint(uint64(s.n))
	// Four deviations to a word, two bytes each as in the ring: varints
	// would take as many bytes for most (they are scaled to 2¹² to 2¹³
	// steps) and cost a call each, a third of a checkpoint's time.
	for w := range (held + 3) / 4 {
		r := s.ring[4*w : 4*w+4] // ringLen is a multiple of 4
		e.Uint64(uint64(uint16(r[0])) | uint64(uint16(r[1]))<<16 | uint64(uint16(r[2]))<<32 | uint64(uint16(r[3]))<<48)
	}
	for _, m := range s.mse {
		e.Float64(m)
	}
	e.Float64(s.level)
	e.Float64(s.unit)
	e.Uvarint(uint64(s.from))
	e.Uvarint(uint64(s.pos))
	e.Uvarint(uint64(s.locked))
}

func (s *season) restore(d *stream.Decoder) {
	s.n = uint32(upTo(d, math.MaxUint32, "season points"))
	held := min(s.n, ringLen)
	s.ring = [ringLen]int16{}
	for w := range (held + 3) / 4 {
		x := d.Uint64()
		for j := range uint32(4) {
			s.ring[4*w+j] = int16(uint16(x >> (16 * j)))
		}
	}
	for _, v := range s.ring[held:] {
		if v != 0 {
			d.Fail("season deviation past the %d points held", held)
			return
		}
	}
	for i := range s.mse {
		s.mse[i] = d.Float64()
	}
	s.level, s.unit = d.Float64(), d.Float64()
	s.from = uint32(upTo(d, uint64(s.n), "season discovery start"))
	s.pos = uint16(upTo(d, ringLen-1, "season ring position"))
	s.locked = int8(upTo(d, numLags, "season lag locked"))
	if s.n < ringLen && uint32(s.pos) != s.n {
		d.Fail("season ring position %d with %d points", s.pos, s.n)
	}
}

// upTo reads a count that may not exceed limit.
func upTo(d *stream.Decoder, limit uint64, what string) uint64 {
	v := d.Uvarint()
	if v > limit {
		d.Fail("%s %d: at most %d", what, v, limit)
		return 0
	}
	return v
}
