package forecast

import "github.com/metricpipe/metricpipe/shared/stream"

// Checkpoint appends f's state to e: what its models learnt, their scores
// and the model in use, floats bit for bit, so that a Forecaster restored
// from it forecasts exactly what f would. The settings (smoothing factors,
// forgetting, decay) are not stored: they come from the Config the
// restoring Forecaster is built with, which a caller records, e.g. in its
// checkpoint's configuration hash. Only the active models are written, an
// AR model only up to its order: about 200 bytes for Auto without a season,
// 8 more per season point.
func (f *Forecaster) Checkpoint(e *stream.Encoder) {
	var active uint64
	for m := range numModels {
		if f.active[m] {
			active |= 1 << m
		}
	}
	// The shape, so that Restore can refuse a checkpoint of another
	// Config rather than misread it.
	e.Uvarint(active)
	e.Uvarint(uint64(len(f.hw.season)))
	e.Uvarint(uint64(f.ar.order))
	e.Uvarint(uint64(f.cur))
	for m := range numModels {
		if !f.active[m] {
			continue
		}
		s := &f.scores[m]
		e.Float64(s.sum)
		e.Float64(s.weight)
		e.Uvarint(uint64(s.n))
	}
	if f.active[modelHolt] {
		h := &f.holt
		e.Uvarint(uint64(h.n))
		e.Float64(h.level)
		e.Float64(h.trend)
	}
	if f.active[modelHW] {
		h := &f.hw
		e.Uvarint(uint64(h.n))
		e.Uvarint(uint64(h.phase))
		e.Float64(h.level)
		e.Float64(h.trend)
		for _, v := range h.season {
			e.Float64(v)
		}
	}
	if f.active[modelAR] {
		a := &f.ar
		p := int(a.order)
		e.Uvarint(uint64(a.seen))
		for _, v := range a.hist[:p] {
			e.Float64(v)
		}
		e.Float64(a.tw)
		e.Float64(a.tmean)
		e.Float64(a.tm2)
		// Before it is ready the fit is all zeros (see update and reset).
		if a.ready() {
			e.Float64(a.origin)
			e.Float64(a.scale)
			for _, v := range a.w[:p+1] {
				e.Float64(v)
			}
			for _, v := range a.P[:(p+1)*(p+2)/2] {
				e.Float64(v)
			}
		}
	}
}

// Restore replaces f's state with what Checkpoint wrote, read from d. f
// must have been made by New with the Config the checkpointed Forecaster
// had (a season of the same length, the same kind and order); a checkpoint
// of another shape, or with counters out of range, fails d with an error
// wrapping stream.ErrCorrupt. On failure f is unspecified: discard it.
// Restore does not allocate.
func (f *Forecaster) Restore(d *stream.Decoder) {
	var active uint64
	for m := range numModels {
		if f.active[m] {
			active |= 1 << m
		}
	}
	gotActive, season, order, cur := d.Uvarint(), d.Uvarint(), d.Uvarint(), d.Uvarint()
	if d.Err() != nil {
		return
	}
	if gotActive != active || season != uint64(len(f.hw.season)) || order != uint64(f.ar.order) {
		d.Fail("forecaster of models %03b, season %d, order %d; this one has %03b, %d, %d",
			gotActive, season, order, active, len(f.hw.season), f.ar.order)
		return
	}
	if cur >= uint64(numModels) || !f.active[cur] {
		d.Fail("forecaster model %d not active", cur)
		return
	}
	f.cur = model(cur)
	for m := range numModels {
		if !f.active[m] {
			continue
		}
		s := &f.scores[m]
		s.sum, s.weight = d.Float64(), d.Float64()
		s.n = uint8(bounded(d, minScored, "forecaster score count"))
	}
	if f.active[modelHolt] {
		h := &f.holt
		h.n = uint8(bounded(d, 2, "holt points"))
		h.level, h.trend = d.Float64(), d.Float64()
	}
	if f.active[modelHW] {
		h := &f.hw
		m := uint64(len(h.season))
		h.n = int32(bounded(d, 2*m, "holt-winters points"))
		h.phase = int32(bounded(d, m-1, "holt-winters phase"))
		h.level, h.trend = d.Float64(), d.Float64()
		for i := range h.season {
			h.season[i] = d.Float64()
		}
	}
	if f.active[modelAR] {
		a := &f.ar
		p := int(a.order)
		a.seen = uint8(bounded(d, uint64(p), "ar points"))
		a.hist = [MaxOrder]float64{}
		for i := range p {
			a.hist[i] = d.Float64()
		}
		a.tw, a.tmean, a.tm2 = d.Float64(), d.Float64(), d.Float64()
		a.origin, a.scale, a.w, a.P = 0, 0, [arDim]float64{}, [arPacked]float64{}
		if a.ready() {
			a.origin, a.scale = d.Float64(), d.Float64()
			for i := range p + 1 {
				a.w[i] = d.Float64()
			}
			for i := range (p + 1) * (p + 2) / 2 {
				a.P[i] = d.Float64()
			}
		}
	}
}

// bounded reads a count that may not exceed limit.
func bounded(d *stream.Decoder, limit uint64, what string) uint64 {
	v := d.Uvarint()
	if v > limit {
		d.Fail("%s %d: at most %d", what, v, limit)
		return 0
	}
	return v
}
