package forecast

import "math"

const (
	arDim    = MaxOrder + 1            // p lags and the intercept
	arPacked = arDim * (arDim + 1) / 2 // upper triangle of the covariance P
	// arDelta is the prior P = δ·I, in normalised units (regressors of
	// order 1). Large, so that the prior counts like 1/δ of one point and
	// the fit is the least-squares one within a few points (an AR(2)'s
	// weights within 1e-7 on a noise-free decay); not so large that the
	// first updates, which subtract terms of order δ, lose more than
	// log10(δ) = 6 of the 16 digits.
	arDelta = 1e6
	// arRenorm: the normalisation is redone once the level has moved more
	// than arRenorm scales from the origin or the scale changed by more
	// than that factor, which keeps regressors of order 1 and the
	// regression well conditioned. A stationary series is then
	// renormalised only during its first points; a trend every
	// ~arRenorm·σ of level change.
	arRenorm = 4
	// arTinyScale bounds the scale from below, relative to the level, so
	// that a constant series has a usable scale; arMinScale does the same
	// near zero.
	arTinyScale = 1e-9
	arMinScale  = 1e-300
)

// arModel is an AR(p) model with intercept, fitted online by recursive
// least squares (RLS) with exponential forgetting:
//
//	ŷ(t) = Σ_{i=1..p} wᵢ·y(t−i) + c
//
// minimising Σ_k λ^(t−k)·e(k)². The intercept c tracks the level of a
// series with a non-zero mean, which an AR without one can only
// approximate by Σwᵢ ≈ 1.
//
// # Normalisation
//
// The regression runs on x = (y − origin)/scale with the constant 1 as the
// intercept regressor. Centring keeps the regressors of a series like
// 8e9 ± 1e3 from being nearly collinear with the constant (which would cost
// float64 most of its digits), and scaling makes the prior δ·I and the
// anti-windup bound mean the same for every series. origin and scale
// follow the exponentially weighted (rate 1−λ) mean and standard deviation
// of y; they are changed only when those drifted by a factor arRenorm, and
// then w and P are transformed exactly to the new coordinates (an affine
// change of the regressors), so the fit and its forecasts do not change.
// The weights wᵢ are the same in raw and normalised units; only c is
// scaled.
//
// # Numerical guards
//
// P is stored as its upper triangle, so it is symmetric by construction.
// With forgetting, P grows as λ^(−t) in directions the data do not excite
// (a constant series never excites the lags), the "windup" that ends in
// overflow; here trace(P) is kept ≤ (p+1)·δ, the prior's, by forgetting
// less when it would be exceeded. If P stops being positive definite
// (a non-positive diagonal or xᵀPx < 0, from rounding) or anything becomes
// non-finite, P is reset to δ·I (and w to its prior if w is affected).
//
// # Warm-up
//
// The model is ready once p values were seen: origin and scale are then
// set from them, w starts at the random walk (w₁ = 1, others and c = 0,
// forecasting the last value) and P at δ·I, so RLS shrinks towards the
// random walk until the data say otherwise.
type arModel struct {
	lambda float64
	hist   [MaxOrder]float64 // raw values, newest first: hist[i] = y(t−1−i)
	// w holds the lag weights w[0..p) for y(t−1)…y(t−p) and, at w[p], the
	// intercept in normalised units.
	w [arDim]float64
	// P is the upper triangle of the (p+1)² covariance, column by column:
	// P(i,j), i ≤ j, at j(j+1)/2 + i.
	P              [arPacked]float64
	origin, scale  float64
	tw, tmean, tm2 float64 // EW weight, mean and weighted Σ squared deviations of y, rate 1−λ
	// order is p; seen counts the values in hist, saturating at p: ready.
	// Bytes, last, to keep a Forecaster within a smaller size class.
	order, seen uint8
}

func newAR(order int, lambda float64) arModel { return arModel{lambda: lambda, order: uint8(order)} }

func (a *arModel) ready() bool { return a.seen == a.order }

// forecast returns the h-step forecast, iterating the recursion on its own
// forecasts: O(h·p). a must be ready.
func (a *arModel) forecast(h int) float64 {
	v, p := a.hist, int(a.order)
	var y float64
	for range h {
		y = a.next(&v)
		copy(v[1:p], v[:p-1])
		v[0] = y
	}
	return y
}

// forecastMany sets out[i] to forecast(hs[i]) for ascending hs, running the
// recursion once, to the last horizon.
func (a *arModel) forecastMany(hs []int, out []float64) {
	v, p := a.hist, int(a.order)
	var y float64
	step := 0
	for i, h := range hs {
		for ; step < h; step++ {
			y = a.next(&v)
			copy(v[1:p], v[:p-1])
			v[0] = y
		}
		out[i] = y
	}
}

// next returns the one-step forecast after the values v, newest first.
func (a *arModel) next(v *[MaxOrder]float64) float64 {
	p := int(a.order)
	s := a.scale * a.w[p]
	for i := range p {
		s += a.w[i] * (v[i] - a.origin)
	}
	return a.origin + s
}

// update feeds the finite value y and returns the forecast made for it,
// scored false during warm-up. O(p²).
func (a *arModel) update(y float64) (yhat float64, scored bool) {
	if !a.track(y) {
		a.reset()
		a.track(y)
	}
	p := int(a.order)
	if a.seen < a.order {
		a.push(y)
		if a.seen++; a.seen == a.order {
			a.origin, a.scale = a.tmean, a.trackedScale()
			a.resetW()
			a.resetP()
		}
		return 0, false
	}
	yhat = a.next(&a.hist)
	a.renormalise()
	var x [arDim]float64
	inv := 1 / a.scale
	for i := range p {
		x[i] = (a.hist[i] - a.origin) * inv
	}
	x[p] = 1
	a.learn(&x, (y-a.origin)*inv)
	a.push(y)
	return yhat, true
}

func (a *arModel) push(y float64) {
	p := int(a.order)
	copy(a.hist[1:p], a.hist[:p-1])
	a.hist[0] = y
}

// track adds y to the EW mean and variance (West's weighted update); false
// if they overflowed.
func (a *arModel) track(y float64) bool {
	w := a.lambda*a.tw + 1
	d := y - a.tmean
	a.tmean += d / w
	a.tm2 = a.lambda*a.tm2 + d*(y-a.tmean)
	a.tw = w
	return finite(a.tmean) && finite(a.tm2)
}

// trackedScale returns the EW standard deviation, floored (see arTinyScale).
func (a *arModel) trackedScale() float64 {
	return max(math.Sqrt(max(a.tm2, 0)/a.tw), arTinyScale*math.Abs(a.tmean), arMinScale)
}

// renormalise moves origin and scale to the tracked mean and standard
// deviation if they drifted (see arRenorm), transforming w and P exactly,
// in O(p²).
//
// With r = scale/scale' and d = (origin − origin')/scale', the regressors
// become x' = A·x (x'ᵢ = r·xᵢ + d·1 for the lags, the constant stays 1)
// and the target z' = r·z + d. The forecast is unchanged when the lag
// weights stay and c' = r·c + d·(1 − Σwᵢ). P is the inverse of the
// information matrix R = Σλᵏ·x·xᵀ, and R' = A·R·Aᵀ, so P' = Bᵀ·P·B with
// B = A⁻¹. With e = −d/r and ρᵢ = Σ_{j lag} P(i,j):
//
//	P'(i,j) = P(i,j)/r²                 i, j lags
//	P'(i,c) = (P(i,c) + e·ρᵢ)/r          i lag, c the constant
//	P'(c,c) = P(c,c) + 2e·ρ_c + e²·Σ_{i lag} ρᵢ
func (a *arModel) renormalise() {
	o, s := a.tmean, a.trackedScale()
	if math.Abs(o-a.origin) <= arRenorm*a.scale && s <= arRenorm*a.scale && s*arRenorm >= a.scale {
		return
	}
	p := int(a.order)
	r, d := a.scale/s, (a.origin-o)/s
	e := -d / r
	var sumW float64
	for i := range p {
		sumW += a.w[i]
	}
	a.w[p] = r*a.w[p] + d*(1-sumW)
	var rho [arDim]float64 // row sums over the lag columns, before any change
	for j := range p {
		for i := range j + 1 {
			v := a.P[j*(j+1)/2+i]
			rho[i] += v
			if i != j {
				rho[j] += v
			}
		}
	}
	cc := p * (p + 1) / 2 // start of column c: P(i,c) is at cc+i
	var sumRho float64
	for i := range p {
		rho[p] += a.P[cc+i]
		sumRho += rho[i]
	}
	for k := range cc {
		a.P[k] /= r * r
	}
	for i := range p {
		a.P[cc+i] = (a.P[cc+i] + e*rho[i]) / r
	}
	a.P[cc+p] += 2*e*rho[p] + e*e*sumRho
	a.origin, a.scale = o, s
	if !finite(a.w[p]) {
		a.resetW()
		a.resetP()
		return
	}
	// More uncertain than the prior (the scale grew a lot), or broken
	// (NaN fails the test too): start from the prior.
	var tr float64
	for i := range p + 1 {
		tr += a.P[i*(i+1)/2+i]
	}
	if !(tr <= float64(p+1)*arDelta) {
		a.resetP()
	}
}

// learn is one RLS step with regressors x and target z:
//
//	u = P·x, k = u/(λ + xᵀu), w += k·(z − wᵀx), P = (P − k·uᵀ)/λ
//
// with the division by λ reduced if trace(P) would exceed (p+1)·δ.
func (a *arModel) learn(x *[arDim]float64, z float64) {
	n := int(a.order) + 1
	var u [arDim]float64
	k := 0
	for j := range n {
		xj := x[j]
		var acc float64
		for i := range j {
			v := a.P[k]
			u[i] += v * xj
			acc += v * x[i]
			k++
		}
		u[j] += acc + a.P[k]*xj
		k++
	}
	var xu, wx float64
	for i := range n {
		xu += x[i] * u[i]
		wx += a.w[i] * x[i]
	}
	denom := a.lambda + xu
	e := z - wx
	if !(xu >= 0) || !finite(denom) || !finite(e) {
		a.resetP() // not positive definite, or overflow
		return
	}
	inv := 1 / denom
	g := e * inv
	var tr float64
	for i := range n {
		a.w[i] += g * u[i]
		tr += a.P[i*(i+1)/2+i] - u[i]*u[i]*inv
	}
	f := 1 / a.lambda
	if bound := float64(n) * arDelta; tr*f > bound {
		f = bound / tr // ≥ 1: the downdate does not increase the trace
	}
	k = 0
	ok := tr > 0
	for j := range n {
		uj := u[j] * inv
		for i := range j + 1 {
			a.P[k] = (a.P[k] - u[i]*uj) * f
			k++
		}
		ok = ok && a.P[k-1] > 0 && finite(a.P[k-1]) && finite(a.w[j])
	}
	if !ok {
		for i := range n {
			if !finite(a.w[i]) {
				a.resetW()
				break
			}
		}
		a.resetP()
	}
}

// skip steps past a missing value: the forecast takes its place in the
// history, and nothing is learnt. During warm-up, the value is simply left
// out.
func (a *arModel) skip() {
	if !a.ready() {
		return
	}
	y := a.next(&a.hist)
	if !finite(y) {
		a.reset()
		return
	}
	a.push(y)
}

// varianceFactor returns Var[e(t+h)] / Var[e(t+1)] = Σ_{j<h} ψⱼ², with ψ
// the impulse response of the fitted recursion (ψ₀ = 1,
// ψⱼ = Σᵢ wᵢ·ψⱼ₋ᵢ), ignoring the uncertainty of w; +Inf once that
// overflows (an explosive fit). O(h·p).
func (a *arModel) varianceFactor(h int) float64 {
	var psi [MaxOrder]float64
	psi[0] = 1
	sum, p := 1.0, int(a.order)
	for range h - 1 {
		var next float64
		for i := range p {
			next += a.w[i] * psi[i]
		}
		copy(psi[1:p], psi[:p-1])
		psi[0] = next
		if sum += next * next; !finite(sum) {
			return math.Inf(1)
		}
	}
	return sum
}

// resetW sets w to the random walk ŷ(t) = y(t−1).
func (a *arModel) resetW() {
	a.w = [arDim]float64{0: 1}
}

// resetP sets P to δ·I.
func (a *arModel) resetP() {
	a.P = [arPacked]float64{}
	for i := range int(a.order) + 1 {
		a.P[i*(i+1)/2+i] = arDelta
	}
}

func (a *arModel) reset() {
	*a = arModel{lambda: a.lambda, order: a.order}
}
