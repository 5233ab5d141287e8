package forecast

// hwModel is the additive Holt-Winters method: a level, a trend and m
// seasonal components, one per position in the season (Winters 1960).
//
//	ŷ(t+h)  = level + h·trend + s[(t+h) mod m]
//	level'  = α·(y − s[t mod m]) + (1−α)·(level + trend)
//	trend'  = β·(level' − level) + (1−β)·trend
//	s'[t mod m] = γ·(y − level') + (1−γ)·s[t mod m]
//
// Initialisation from the first two seasons, 2m points, so that the trend
// is estimated too (one season alone confuses a trend with the season):
// with a = mean of season 1 and b = mean of season 2, trend = (b − a)/m;
// s[i] = (y_i + y_{i+m})/2 − (a + b)/2 − (i − (m−1)/2)·trend, the detrended
// average of the two values at position i; level = b + (m−1)/2·trend, the
// trend line at the last point. The components then sum to zero, and a
// linear trend plus any periodic signal is recovered exactly, so
// forecasts are exact from point 2m on.
//
// The season slice is allocated once, by newHW; warm-up sums the values
// in place in it, so nothing else is buffered.
type hwModel struct {
	alpha, beta, gamma float64
	// level and trend; during warm-up, the sums of the first and of the
	// second season's values.
	level, trend float64
	season       []float64 // s[i], i = point number mod m; during warm-up, y_i + y_{i+m}
	n            int32     // points seen, saturating at 2m: ready
	phase        int32     // season index of the next point
}

func newHW(alpha, beta, gamma float64, m int) hwModel {
	return hwModel{alpha: alpha, beta: beta, gamma: gamma, season: make([]float64, m)}
}

func (m *hwModel) ready() bool { return m.season != nil && int(m.n) == 2*len(m.season) }

// forecast returns the h-step forecast; m must be ready.
func (m *hwModel) forecast(h int) float64 {
	p, k := len(m.season), h-1
	if k >= p {
		k %= p // the division only past one season
	}
	i := int(m.phase) + k
	if i >= p {
		i -= p
	}
	return m.level + float64(h)*m.trend + m.season[i]
}

// update feeds the finite value y and returns the forecast made for it,
// scored false during warm-up. O(1), except for the O(m) initialisation
// once 2m points were seen. A state that overflowed float64 starts over.
func (m *hwModel) update(y float64) (yhat float64, scored bool) {
	p := int32(len(m.season))
	if m.n < 2*p {
		i := m.phase
		m.season[i] += y
		if m.n < p {
			m.level += y
		} else {
			m.trend += y
		}
		m.n++
		if m.phase++; m.phase == p {
			m.phase = 0
		}
		switch {
		case !finite(m.season[i]) || !finite(m.level) || !finite(m.trend):
			m.reset() // the sums overflowed
		case m.n == 2*p:
			m.initialise()
		}
		return 0, false
	}
	s := m.season[m.phase]
	yhat = m.level + m.trend + s
	level := m.alpha*(y-s) + (1-m.alpha)*(m.level+m.trend)
	m.trend = m.beta*(level-m.level) + (1-m.beta)*m.trend
	m.level = level
	m.season[m.phase] = m.gamma*(y-level) + (1-m.gamma)*s
	if !finite(m.level) || !finite(m.trend) || !finite(m.season[m.phase]) {
		m.reset()
		return yhat, true
	}
	if m.phase++; m.phase == p {
		m.phase = 0
	}
	return yhat, true
}

// initialise turns the warm-up sums into the initial state (see hwModel).
func (m *hwModel) initialise() {
	p := float64(len(m.season))
	a, b := m.level/p, m.trend/p
	trend := (b - a) / p
	mid, centre := (a+b)/2, (p-1)/2
	for i, sum := range m.season {
		m.season[i] = sum/2 - mid - (float64(i)-centre)*trend
	}
	m.level, m.trend = b+centre*trend, trend
	if !finite(m.level) || !finite(m.trend) || !finite(mid) {
		m.reset()
	}
}

// skip steps past a missing value with zero error: the level moves along
// the trend, trend and season stay, and the phase advances so that the
// season stays aligned with time. During warm-up, the value is imputed to
// keep the phase: by the previous value in the first season, by the value
// one season earlier in the second (before the first point there is no
// phase yet, and nothing to do).
func (m *hwModel) skip() {
	switch p := int32(len(m.season)); {
	case m.n == 0:
	case m.n < p:
		m.update(m.season[m.phase-1])
	case m.n < 2*p:
		m.update(m.season[m.phase])
	default:
		m.level += m.trend
		if m.phase++; m.phase == p {
			m.phase = 0
		}
		if !finite(m.level) {
			m.reset()
		}
	}
}

// varianceFactor returns Var[e(t+h)] / Var[e(t+1)] under the model's
// state-space form (Hyndman et al. 2008, ETS(A,A,A)). The update is
// level' = level + trend + α·e, trend' = trend + αβ·e,
// s' = s + γ(1−α)·e, so with g = γ(1−α) and K = ⌊(h−1)/m⌋ seasons ahead
//
//	v(h) = 1 + Σ_{j=1}^{h−1} (α + jαβ + g·[m divides j])²
//	     = holt's v(h) + 2αg·(K + βm·K(K+1)/2) + K·g².
func (m *hwModel) varianceFactor(h int) float64 {
	holt := holtModel{alpha: m.alpha, beta: m.beta}
	g := m.gamma * (1 - m.alpha)
	p := float64(len(m.season))
	k := float64((h - 1) / len(m.season))
	return holt.varianceFactor(h) + 2*m.alpha*g*(k+m.beta*p*k*(k+1)/2) + k*g*g
}

// reset forgets everything, keeping the season's memory. It clears only
// the components warm-up wrote, so that restarts cost no more than the
// points they discard.
func (m *hwModel) reset() {
	clear(m.season[:min(int(m.n), len(m.season))])
	m.level, m.trend, m.n, m.phase = 0, 0, 0, 0
}
