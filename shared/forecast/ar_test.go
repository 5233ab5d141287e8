package forecast

import (
	"math"
	"math/rand/v2"
	"testing"
)

func arConfig(order int) Config {
	return Config{Kind: AR, Order: order, Forgetting: 0.998, ErrorHalfLife: 10}
}

// intercept returns the AR intercept in raw units: the forecast is
// Σ wᵢ·y(t−i) + origin·(1 − Σwᵢ) + scale·w[p].
func (a *arModel) intercept() float64 {
	var sum float64
	p := int(a.order)
	for i := range p {
		sum += a.w[i]
	}
	return a.origin*(1-sum) + a.scale*a.w[p]
}

// TestARRecoversWeights: RLS on noise-free AR(2) processes finds the
// weights and intercept within 1e-6 and then forecasts exactly. The second
// process, 100 + 10·sin(2πt/10), satisfies
// y(t) = 2cos(2π/10)·y(t−1) − y(t−2) + 100·(2 − 2cos(2π/10)): without the
// intercept an AR(2) could not fit it.
func TestARRecoversWeights(t *testing.T) {
	cos := math.Cos(2 * math.Pi / 10)
	f := func(name string, y func(int) float64, w1, w2, c float64) {
		t.Helper()
		fc := mustNew(t, arConfig(2))
		for i := range 200 {
			fc.Update(y(i))
		}
		a := &fc.ar
		if !near(a.w[0], w1, 1e-6) || !near(a.w[1], w2, 1e-6) || !near(a.intercept(), c, 1e-6) {
			t.Errorf("%s: w = %v, %v, c = %v, want %v, %v, %v", name, a.w[0], a.w[1], a.intercept(), w1, w2, c)
		}
		for h := 1; h <= 20; h++ {
			if got, ok := fc.Ahead(h); !ok || math.Abs(got-y(199+h)) > 1e-6*math.Abs(y(0)) {
				t.Errorf("%s: Ahead(%d) = %v, %v, want %v", name, h, got, ok, y(199+h))
			}
		}
	}
	decay := [300]float64{0: 1, 1: 0.5}
	for i := 2; i < len(decay); i++ {
		decay[i] = 1.5*decay[i-1] - 0.7*decay[i-2]
	}
	f("1.5·y(t−1) − 0.7·y(t−2)", func(i int) float64 { return decay[i] }, 1.5, -0.7, 0)
	f("sine with offset", func(i int) float64 { return 100 + 10*math.Sin(2*math.Pi*float64(i)/10) }, 2*cos, -1, 100*(2-2*cos))
}

// TestARConstant: a constant series is forecast exactly, and P does not
// wind up although the lags are never excited.
func TestARConstant(t *testing.T) {
	for _, c := range []float64{0, 7, -3e9} {
		f := mustNew(t, arConfig(3))
		for i := range 20_000 {
			f.Update(c)
			if got, ok := f.Predict(); i >= 2 && (!ok || got != c) {
				t.Fatalf("constant %v, point %d: Predict = %v, %v", c, i, got, ok)
			}
		}
		for i := range 4 {
			if d := f.ar.P[i*(i+1)/2+i]; !(d > 0 && d <= 4*arDelta) {
				t.Errorf("constant %v: P(%d,%d) = %v, want in (0, %v]", c, i, i, d, 4*arDelta)
			}
		}
	}
}

// TestARRenormaliseExact: moving origin and scale changes neither the
// forecasts nor what the next updates learn.
func TestARRenormaliseExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a := newAR(3, 0.99)
	y := 0.0
	for range 500 {
		y = 5 + 0.6*(y-5) + rng.NormFloat64()
		a.update(y)
	}
	b := a
	b.tmean, b.tm2 = b.origin-5*b.scale, b.tm2*36 // mean and sd drifted past arRenorm
	b.renormalise()
	if b.origin == a.origin || b.scale == a.scale || b.P[0] == arDelta {
		t.Fatal("renormalise did nothing or reset P; the test wants the transform")
	}
	for range 50 {
		y = 5 + 0.6*(y-5) + rng.NormFloat64()
		ya, _ := a.update(y)
		yb, _ := b.update(y)
		if !near(yb, ya, 1e-9) {
			t.Fatalf("forecast %v after renormalising, %v without", yb, ya)
		}
	}
	for i := range 3 {
		if !near(b.w[i], a.w[i], 1e-9) {
			t.Errorf("w[%d] = %v after renormalising, %v without", i, b.w[i], a.w[i])
		}
	}
}

// TestARVarianceFactor: ψ for w = (0.5, 0.2): 1, 0.5, 0.45, so
// v(3) = 1 + 0.25 + 0.2025.
func TestARVarianceFactor(t *testing.T) {
	a := newAR(2, 1)
	a.w = [arDim]float64{0.5, 0.2}
	if got := a.varianceFactor(3); !near(got, 1.4525, 1e-12) {
		t.Errorf("varianceFactor(3) = %v, want 1.4525", got)
	}
}
