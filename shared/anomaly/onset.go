package anomaly

import "math"

const (
	// similarOnsets is how many onsets like this one (see onset.score) a
	// series must have had, recently, beyond the first, before they count
	// as its habit: one earlier anomaly of the same size is a coincidence,
	// not a pattern.
	similarOnsets = 1
	// onsetMemory is how many of its past onsets the size of a series'
	// usual onset is averaged over.
	onsetMemory = 20
	// onsetSpread is the least spread, in natural log units, the sizes of
	// a series' onsets are taken to have (a factor of about 1.35): a few
	// bursts of exactly one size do not make every other size
	// astonishing.
	onsetSpread = 0.3
	// seasonSettled is how many points the detector needs to have tested
	// every season length (see season.eligible): 722, 2.5 days at
	// 5-minute points.
	seasonSettled = 2*ringLen + minLagScored
)

// onset keeps a Detector's Score to the start of each unusual episode,
// scored by how unusual such an onset is for this series. NAB rewards only
// the first detection of an anomaly and charges every false one, and an
// operator wants one alert per incident, not one per burst a series has
// every day. Its zero value is outside any episode, with no history.
type onset struct {
	// The series' past onsets: how many, recently, each weighing
	// 2^(−age/RecurrenceHalfLife), and the mean and variance of the log
	// of their residuals' size, exponentially weighted over onsetMemory
	// onsets. Estimates, single precision is ample: it leaves the
	// Detector room for its last event time in its size class.
	recent        float32
	lnMean, lnVar float32
	onsets        uint32  // onsets seen, saturating
	peak          float32 // the episode's largest z
	age           uint16  // points since the episode opened
	calm          uint16  // points in a row with z below CalmZ
	in            bool    // in an episode
}

// score returns the Score of a warm point of residual z (in units of the
// scale), move from the point before jump (in the same units) and size
// |residual|: 0 unless it opens an episode.
//
// An onset's score is the surprise of its z under the normal model of the
// residuals, −log₁₀ p, or, when the series has recently had more than
// similarOnsets onsets at least this large, the surprise of seeing one
// more at their rate, −log₁₀(excess/window), whichever is lower: a burst
// a series has every day is no news at any z. That bound is what lets a
// bursty, heavy-tailed series (mention counts, request counts, disk
// writes) page only for what is unusual for it.
func (o *onset) score(z, jump, size float64, settled bool, p Params) float64 {
	opened := o.gate(z, jump, p)
	s := 0.0
	if opened {
		s = surprise(z)
		lnSize := math.Log(size)
		if o.onsets > 0 {
			spread := math.Sqrt(float64(o.lnVar) + onsetSpread*onsetSpread)
			atLeast := 0.5 * math.Erfc((lnSize-float64(o.lnMean))/(spread*math.Sqrt2))
			if excess := float64(o.recent)*atLeast - similarOnsets; excess > 0 {
				s = min(s, -math.Log10(excess/p.recurWindow))
			}
		}
		// The onsets of the settling period are the detector's own
		// learning, not the series' habits.
		if settled {
			o.learn(lnSize)
		}
	}
	o.recent *= float32(p.recurDecay)
	if opened && settled {
		o.recent++
	}
	return scoreOf(s)
}

// learn folds an onset's log size into the mean and variance of the
// series' onsets: plainly averaged over the first onsetMemory, then
// exponentially weighted.
func (o *onset) learn(lnSize float64) {
	if o.onsets < math.MaxUint32 {
		o.onsets++
	}
	w := onsetDecay
	if o.onsets < onsetMemory {
		w = float64(o.onsets-1) / float64(o.onsets)
	}
	d := lnSize - float64(o.lnMean)
	o.lnMean += float32((1 - w) * d)
	o.lnVar = float32(w * (float64(o.lnVar) + (1-w)*d*d))
	if !finite(float64(o.lnMean)) || !finite(float64(o.lnVar)) { // a size near overflow or 0
		o.lnMean, o.lnVar = 0, 0
	}
}

// onsetDecay is 2^(−1/onsetMemory) (TestConstants checks it).
const onsetDecay = 0.9659363289248456

// gate reports whether a point of residual z opens an episode, and
// counts it into the episode it is in. A z of OnsetZ or more outside an
// episode opens one.
func (o *onset) gate(z, jump float64, p Params) bool {
	if o.in {
		o.age++
		if z < p.calmZ {
			o.calm++
		} else {
			o.calm = 0
		}
		// A forecaster thrown off by the episode's start may be far off a
		// series that has not moved: an escalation is a point far from
		// both its forecast and the point before.
		escalates := min(z, jump) >= p.escalation*float64(o.peak)
		o.peak = max(o.peak, float32(z))
		if !escalates && (o.age <= p.minEpisode || (o.age <= p.maxEpisode && o.calm < p.calmLen)) {
			return false
		}
		o.in = false // the episode is over; this point may open the next
	}
	if z >= p.onsetZ {
		o.in, o.age, o.calm, o.peak = true, 0, 0, float32(z)
		return true
	}
	return false
}
