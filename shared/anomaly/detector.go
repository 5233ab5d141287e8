package anomaly

import (
	"math"
	"time"

	"github.com/metricpipe/metricpipe/shared/forecast"
)

// Detector is the streaming anomaly detector of one series: two forecasts
// of each point, made before it is seen, and a judgement of the residual of
// the one that has been better. The analyzer runs one per series-field;
// the NAB evaluation (`analyzer eval`) runs the same code offline.
//
//   - The forecaster it is given (Holt, AR, Auto, ...).
//   - Its own seasonal forecast: the series' level plus its deviation one
//     season ago, for a day or a week at the usual sampling steps; the
//     season length is found by the detector (see season).
//
// The residual is measured in a robust, adaptive scale floored at the
// series' typical step (Verdict.Z), and the score is kept to the onsets of
// unusual episodes (Verdict.Score).
//
// A Detector is one allocation of 888 bytes (896 as allocated), plus its
// forecaster: 1,664 bytes per series with the default Auto forecaster.
// Observe is O(1) and does not allocate. Not safe for concurrent use.
type Detector struct {
	fc        *forecast.Forecaster
	season    season
	fcScale   Scorer  // residual scale of the forecaster's forecasts
	sScale    Scorer  // residual scale of the best seasonal lag's forecasts
	fcMSE     float64 // the forecaster's mean square error, like season.mse
	step      float64 // mean |y(t) − y(t−1)|: the floor of both scales
	prev      float64
	n         uint32  // finite points seen, saturating
	levelMSE  float32 // the seasonal level's alone, as a forecast, like fcMSE: see seasonal
	onset     onset
	start     int64 // event time of the first point given a time (ObserveAt)
	last      int64 // the latest event time given
	timed     bool  // start is set
	outlier   uint8 // consecutive points fed to the forecaster clipped
	useSeason bool  // the seasonal forecast is in use
	grid      int16 // the values' resolution, the scales' other floor: see learnQuantum
}

const (
	// maxClipped is how many outliers in a row are clipped before the
	// forecaster takes the values as they are: one to three far-off points
	// are spikes the forecast should ignore; more are a new level it must
	// follow.
	maxClipped = 3
	// stepHalfLife is the half-life, in points, of the mean step that
	// floors the residual scale. The floor keeps z finite and meaningful
	// where a forecast is nearly exact (noise-free, quantized or
	// piecewise-constant series): an error smaller than the series' usual
	// step from one point to the next is not surprising. The mean is plain
	// over the first stepHalfLife steps, so the floor is there from the
	// start.
	stepHalfLife = 500
	// stepDecay is 2^(−1/stepHalfLife) (TestConstants checks it).
	stepDecay = 0.9986146661010289
	// jitterShare is the share of a seasonal forecast's jitter (see
	// season.jitter) that floors its residual scale: a pattern that comes
	// a point early or late is not an anomaly.
	jitterShare = 0.2
	// switchMargin: the seasonal forecast takes over when its mean square
	// error is this much lower than the forecaster's, and hands back when
	// the forecaster's is this much lower than its own. Taking over at a
	// tie would let a seasonal forecast echo the spikes of a spiky,
	// patternless series; handing back at a tie would hand a seasonal
	// series to the forecaster after each anomaly (which raises the error
	// of the model that did not foresee it, usually the seasonal one), and
	// the forecaster misses every turn of the pattern.
	switchMargin = 1.5
)

// NewDetector returns a detector forecasting with fc and with its own
// seasonal forecast.
func NewDetector(fc *forecast.Forecaster) *Detector { return &Detector{fc: fc} }

// Verdict is what a Detector makes of one point.
type Verdict struct {
	// Forecast is the one-step forecast made before the point was seen:
	// the forecaster's, or the seasonal one while that is in use.
	Forecast    float64
	HasForecast bool // false while no forecast is ready
	// Z is the residual z-score |y − Forecast|/σ: σ is the robust,
	// adaptive scale of that forecast's residuals (√(π/2) times their
	// exponentially weighted mean absolute value, half-life
	// Config.HalfLife, each residual clipped at Config.Clip·σ), floored at
	// the series' mean absolute step |y(t) − y(t−1)|, at the resolution
	// its values are reported at (0.1 for 44.2) and, for the seasonal
	// forecast, at a fifth of how much the pattern moves around that
	// phase; σ is √k times as large for a point k mean steps of event
	// time after the one before (ObserveAt), whose forecast is k steps
	// ahead. Alert rules `anomaly: {z: k}` compare it; it is high on
	// every surprising point.
	Z float64
	// Score in [0, 1] marks the onset of an unusual episode, and is 0 on
	// every other point. A point with Z ≥ Config.OnsetZ (5) opens an
	// episode, which lasts at least MinEpisode (100) points, then until
	// CalmLen (50) points in a row have Z < CalmZ (2.5), and at most
	// MaxEpisode (600) points; a point Escalation (10) times beyond the
	// episode's largest Z, both from its forecast and from the point
	// before, opens a new one.
	//
	// An onset scores the surprise of its Z under normal residuals, on a
	// log scale (see Score: 0.52 at Z 5, 0.75 ≈ Z 6.1, 1 from Z ≈ 7.1),
	// unless the series has recently had more than one onset at least as
	// large: then it scores no more than the surprise of one more at their
	// rate (−log₁₀ of the excess count per RecurrenceHalfLife/ln 2 points,
	// over 12). A series' daily burst scores about 0.25; one burst far
	// larger than its usual ones still scores as before. So a rule
	// `anomaly: {score: s}` fires once per unusual episode, at its start;
	// `analyzer eval` chooses s on the NAB corpus (about 0.3). 0 until Warm.
	Score float64
	Warm  bool // the detector has seen its warm-up: Z and Score count
}

// day is the shortest season the detector looks for, in nanoseconds.
const day = int64(24 * time.Hour)

// ObserveAt is Observe for a point of event time t (Unix nanoseconds):
// the series is also Warm only once it spans the time its seasonal
// forecast needs, if its sampling is slow enough for a day to be one of
// its seasons (a day in at most ringLen points: 5-minute points, not
// 1-minute ones): two days from its first point, one to learn the day's
// pattern and one to be judged against it. Before that, the first turns
// of a pattern the detector has never seen would be its "anomalies". And
// a point after a gap is judged in a wider scale (see gapSpread). The
// forecasts are those of Observe, and so is Z on evenly spaced points.
func (d *Detector) ObserveAt(t int64, y float64, p Params) Verdict {
	if !d.timed {
		d.start, d.last, d.timed = t, t, true
	}
	span := t - d.start
	// The mean step so far is span/n: a day fits in the seasonal ring
	// when day ≤ ringLen·span/n.
	slow := span > 0 && float64(span)*ringLen >= float64(d.n)*float64(day)
	spread := d.gapSpread(t)
	d.last = max(d.last, t)
	return d.observe(y, p, !slow || span >= 2*day, spread)
}

// gapSpread returns √k for a point k mean steps after the latest before
// it (k rounded, so that jitter is no gap), and 1 for the next point or
// an earlier one. Both forecasts are one step ahead of the last point
// they were given, but after a gap they are judged k steps on, where the
// error of a forecast grows like √k, as a random walk's: a series that
// resumes at the level it has wandered to meanwhile is no surprise.
func (d *Detector) gapSpread(t int64) float64 {
	if d.n < 2 || t <= d.last || d.last <= d.start {
		return 1
	}
	step := float64(d.last-d.start) / float64(d.n-1)
	return math.Sqrt(max(1, math.Round(float64(t-d.last)/step)))
}

// Observe forecasts y, scores it against the forecast, then learns it.
//
// The forecaster is fed y clipped to the band of plausible values while an
// outlier run is short, so that a spike does not drag the forecast (and
// the next points' residuals) after it. A non-finite y is a missing point:
// it yields an empty Verdict, and both forecasts step over it in phase.
func (d *Detector) Observe(y float64, p Params) Verdict { return d.observe(y, p, true, 1) }

// observe is Observe; the point is not Warm unless seasonsSeen, and both
// residual scales are widened by spread (see gapSpread).
func (d *Detector) observe(y float64, p Params, seasonsSeen bool, spread float64) Verdict {
	if !finite(y) {
		d.fc.Update(y)
		d.season.skip()
		return Verdict{}
	}
	floor := max(d.step, d.quantum())
	f := d.forecaster(y, floor, spread, p)
	s, seasonal := d.seasonal(y, floor, spread, f.ok, p)
	use := f
	if seasonal {
		use = s
	}
	v := Verdict{Forecast: use.forecast, HasForecast: use.ok, Z: use.z, Warm: use.warm && seasonsSeen}
	if v.Warm {
		jump := math.Abs(y-d.prev) / use.scale // the point's move from the last, in the same scale
		v.Score = d.onset.score(v.Z, jump, math.Abs(y-v.Forecast), d.n >= seasonSettled, p)
	}

	feed := y
	if use.warm && v.Z > p.clip && d.outlier < maxClipped {
		d.outlier++
		feed = v.Forecast + math.Copysign(p.clip*use.scale, y-v.Forecast)
	} else if v.Z <= p.clip {
		d.outlier = 0
	}
	// A point that surprises both forecasts is an anomaly, and the mean
	// square errors skip it: it costs the forecaster at once but a
	// seasonal forecast only when it comes back a season later, and the
	// seasonal forecast would win on that timing alone.
	learn := !(f.ok && f.z > p.clip && s.ok && s.z > p.clip)
	if f.warm && learn {
		// From the scale's warm-up on: the forecaster's own start-up
		// errors (Holt's first trend, say) say nothing of its skill.
		k := int64(d.fcScale.n) - int64(p.warmUp) - 1
		addSquare(&d.fcMSE, (y-f.forecast)*(y-f.forecast), k)
		// A float32 levelMSE fits beside n, where a float64 would cost
		// the Detector its size class (896 bytes: 888 and the
		// allocation's header). It is only compared, and its range
		// covers any plausible series: squared errors from 1e-45 (below,
		// its 0 keeps the seasonal forecast out) to 3e38 (above, its
		// largest float32 lets it in, as before issue 15).
		m := float64(d.levelMSE)
		addSquare(&m, (y-d.season.level)*(y-d.season.level), k)
		d.levelMSE = float32(min(m, math.MaxFloat32))
	}
	// The level learns from the value the forecaster is fed once the
	// seasonal profile is settled, so that a spike does not move it.
	// (Before, a turn of the pattern may still pass for an outlier.)
	level := y
	if seasonal && d.season.locked > 0 {
		level = feed
	}
	d.season.update(y, level, p.clip*s.scale, learn)
	d.fc.Update(feed)
	d.learnStep(y)
	d.learnQuantum(y)
	return v
}

// judgement is one forecast's view of a point.
type judgement struct {
	forecast float64
	z        float64 // |y − forecast| in units of scale
	scale    float64 // the residual scale before the point
	ok       bool    // there was a forecast
	warm     bool    // its scale has seen its warm-up
}

// forecaster judges y by the forecaster's forecast, in its residual scale
// widened by spread; the scale learns the residual narrowed as much.
func (d *Detector) forecaster(y, floor, spread float64, p Params) judgement {
	var j judgement
	if j.forecast, j.ok = d.fc.Predict(); j.ok {
		j.scale = spread * d.fcScale.Scale(floor)
		j.z, j.warm = d.fcScale.Observe((y-j.forecast)/spread, floor, p)
	}
	return j
}

// seasonal judges y by the best seasonal lag, if any, with spread as in
// forecaster, and reports whether that judgement is the one to go by: the
// seasonal forecast is in use (switchMargin) and its scale warm, or the
// forecaster has no forecast.
func (d *Detector) seasonal(y, floor, spread float64, fcOK bool, p Params) (judgement, bool) {
	var j judgement
	lag, ok := d.season.best()
	if ok {
		j.forecast = d.season.forecast(lag)
		ok = finite(j.forecast) // not near overflow
	}
	if !ok {
		return j, false
	}
	sFloor := max(floor, jitterShare*d.season.jitter(lag))
	j.ok, j.scale = true, spread*d.sScale.Scale(floor)
	j.z, j.warm = d.sScale.Observe((y-j.forecast)/spread, sFloor, p)
	// The seasonal forecast must also beat its own level alone, without
	// the deviation of a season ago; else the series has no pattern and
	// that deviation is noise, or worse, a level shift that it replays a
	// "season" later (issue 15: flat series stepping from level to level,
	// where Holt's ringing after each step lets a lag beat the
	// forecaster). No margin is needed to take over: without a pattern a
	// lag's errors are twice the level's in expectation (its forecast adds
	// the noise of a season ago), and on a series flat but for its steps
	// they are the level's own errors, averaged over fewer points. It hands
	// back at switchMargin, as to the forecaster.
	mse, level := d.season.mse[lag], float64(d.levelMSE)
	if d.useSeason {
		if d.useSeason = d.fcMSE*switchMargin >= mse && level*switchMargin >= mse; !d.useSeason {
			d.season.unlock()
		}
	} else {
		d.useSeason = mse*switchMargin < d.fcMSE && mse < level
	}
	use := j.warm && (d.useSeason || !fcOK)
	if use {
		d.season.lock(lag)
	}
	return j, use
}

// learnStep folds |y − previous y| into the mean step.
func (d *Detector) learnStep(y float64) {
	if d.n > 0 {
		step := math.Abs(y - d.prev)
		if d.n < stepHalfLife {
			d.step += (step - d.step) / float64(d.n)
		} else {
			d.step += (1 - stepDecay) * (step - d.step)
		}
		if !finite(d.step) {
			d.step = 0
		}
	}
	d.prev = y
	if d.n < math.MaxUint32 {
		d.n++
	}
}

const (
	// maxSignificant is the most significant digits a value may have and
	// still be on a decimal grid (see learnQuantum); a value with more is
	// continuous for the detector.
	maxSignificant = 9
	// gridMultiples is 10^maxSignificant: beyond as many multiples of a
	// quantum, float64 cannot tell whether a value is on its grid.
	gridMultiples = 1e9
	// gridBias offsets Detector.grid, so that it fits in 2 bytes and 0
	// means no grid yet: the quantum is 10^(grid − gridBias), and every
	// finite value's quantum is 10⁻³¹⁶ (grid 84) to 10³⁰⁶.
	gridBias = 400
	// gridOff is Detector.grid once a value is off any grid.
	gridOff = -1
)

// quantum returns the series' quantum (see learnQuantum), 0 if none.
func (d *Detector) quantum() float64 {
	if d.grid <= 0 {
		return 0
	}
	return math.Pow10(int(d.grid) - gridBias)
}

// learnQuantum narrows the series' quantum to the finite value y: the
// coarsest power of ten that every value seen is a whole multiple of
// (0.1 for 44.2, 10.3 and 95.8), and no coarser than a hundredth of any
// non-zero value (the trailing zeros of 50 or 1200 say nothing of their
// resolution). A metric reported on a grid cannot move by less than a
// quantum, so one quantum of change is never a surprise, even on a series
// so flat that its mean step is near 0 (issue 15). The values show the
// quantum before the series moves; its smallest step would not: a
// constant series' first step is its first level shift (a floor that
// size would hide the next), and a jittery one's first jitter comes
// before any step has shown it. There is no quantum until a non-zero
// value, nor once a value has more than maxSignificant digits (gridOff):
// most series are not on a grid, and for them this costs a comparison
// per point.
func (d *Detector) learnQuantum(y float64) {
	a := math.Abs(y)
	// 0 is on every grid, and a subnormal value's grid underflows.
	if d.grid == gridOff || a < 0x1p-1022 || d.grid > 0 && onGrid(a, d.quantum()) {
		return
	}
	e := int(math.Floor(math.Log10(a))) - 2
	for range maxSignificant - 2 {
		if onGrid(a, math.Pow10(e)) {
			if g := int16(e + gridBias); d.grid == 0 || g < d.grid {
				d.grid = g
			}
			return
		}
		e--
	}
	d.grid = gridOff
}

// onGrid reports whether a > 0 is a whole multiple of q > 0, up to the
// rounding of decimal values in binary; a that is too many multiples of q
// to tell counts as on it.
func onGrid(a, q float64) bool {
	r := a / q
	return r > gridMultiples || math.Round(r) >= 1 && math.Abs(r-math.Round(r)) <= 1e-6
}

// Forecaster is the detector's forecaster, for multi-step forecasts and
// prediction intervals.
func (d *Detector) Forecaster() *forecast.Forecaster { return d.fc }
