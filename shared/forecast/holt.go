package forecast

// holtModel is Holt's linear method (double exponential smoothing): a level
// and a trend, each smoothed exponentially.
//
//	ŷ(t+h) = level + h·trend
//	level' = α·y + (1−α)·(level + trend)
//	trend' = β·(level' − level) + (1−β)·trend
//
// Initialisation from the first two points: level = y₁, trend = y₁ − y₀.
// Any two points define a line, so forecasts start at the third point, and a
// straight line is forecast exactly from then on. (Fitting the first few
// points by least squares would resist a noisy start better, but needs a
// buffer; the smoothing forgets a bad start within a few 1/α points.)
type holtModel struct {
	alpha, beta  float64
	level, trend float64
	n            uint8 // points seen, saturating at 2: ready
}

func (m *holtModel) ready() bool { return m.n == 2 }

// forecast returns the h-step forecast; m must be ready.
func (m *holtModel) forecast(h int) float64 { return m.level + float64(h)*m.trend }

// update feeds the finite value y and returns the forecast made for it,
// scored false during warm-up. A state that overflowed float64 starts
// over.
func (m *holtModel) update(y float64) (yhat float64, scored bool) {
	switch m.n {
	case 0:
		m.level, m.n = y, 1
		return 0, false
	case 1:
		m.level, m.trend, m.n = y, y-m.level, 2
		if !finite(m.trend) {
			m.reset()
		}
		return 0, false
	}
	yhat = m.level + m.trend
	// The convex combination rather than yhat + α(y − yhat): the
	// difference of two finite values may overflow, this cannot.
	level := m.alpha*y + (1-m.alpha)*yhat
	m.trend = m.beta*(level-m.level) + (1-m.beta)*m.trend
	m.level = level
	if !finite(m.level) || !finite(m.trend) {
		m.reset()
	}
	return yhat, true
}

// skip steps past a missing value: with the forecast in place of the value,
// the update has zero error, so the level moves along the trend and the
// trend stays. During warm-up, the value is simply left out.
func (m *holtModel) skip() {
	if !m.ready() {
		return
	}
	if m.level += m.trend; !finite(m.level) {
		m.reset()
	}
}

// varianceFactor returns Var[e(t+h)] / Var[e(t+1)] under the model's
// state-space form (Hyndman et al. 2008, ETS(A,A,N)): Holt's update is
// level' = level + trend + α·e, trend' = trend + αβ·e, so
//
//	v(h) = 1 + Σ_{j=1}^{h−1} (α + jαβ)² = 1 + α²·[k + βk(k+1) + β²k(k+1)(2k+1)/6], k = h−1.
func (m *holtModel) varianceFactor(h int) float64 {
	k := float64(h - 1)
	return 1 + m.alpha*m.alpha*(k+m.beta*k*(k+1)+m.beta*m.beta*k*(k+1)*(2*k+1)/6)
}

func (m *holtModel) reset() { m.level, m.trend, m.n = 0, 0, 0 }
