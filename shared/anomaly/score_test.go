package anomaly

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestScore(t *testing.T) {
	f := func(z, want float64) {
		t.Helper()
		if got := Score(z); math.Abs(got-want) > 0.005 {
			t.Errorf("Score(%v) = %v, want %v", z, got, want)
		}
	}
	f(-1, 0)
	f(0, 0)
	f(math.NaN(), 0)
	f(3, 0.2137)    // p = 0.0027
	f(4.891, 0.5)   // p = 1e-6
	f(7.13, 0.9996) // p ≈ 1e-12
	f(40, 1)
	prev := 0.0
	for z := 0.1; z < 7; z += 0.1 {
		s := Score(z)
		if s <= prev {
			t.Fatalf("Score not increasing at z=%v: %v ≤ %v", z, s, prev)
		}
		prev = s
	}
}

func TestScorerFindsOutliersInNoise(t *testing.T) {
	p, err := NewParams(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var s Scorer
	var over4 int
	for i := 0; i < 20000; i++ {
		z, warm := s.Observe(rng.NormFloat64()*3, 0, p)
		if warm && z > 4 {
			over4++
		}
	}
	// P(|N(0,1)| > 4) = 6.3e-5: about 1 in 20,000.
	if over4 > 6 {
		t.Errorf("%d of 20,000 normal residuals scored z > 4", over4)
	}
	if sg := s.Sigma(); math.Abs(sg-3) > 0.45 {
		t.Errorf("sigma %v, want ≈ 3", sg)
	}
	z, warm := s.Observe(30, 0, p)
	if !warm || z < 8 {
		t.Errorf("a 10σ residual scored z %v warm %v", z, warm)
	}
	// One outlier moves the scale by at most Clip·σ·(1-decay): the next
	// outlier still stands out.
	if z, _ := s.Observe(30, 0, p); z < 8 {
		t.Errorf("second outlier z %v: the first inflated the scale", z)
	}
}

func TestScorerWarmUp(t *testing.T) {
	c := DefaultConfig()
	c.WarmUp, c.HalfLife, c.Clip = 5, 10, 3
	p, err := NewParams(c)
	if err != nil {
		t.Fatal(err)
	}
	var s Scorer
	for i := range 5 {
		if _, warm := s.Observe(1, 0, p); warm {
			t.Fatalf("warm after %d residuals, want after 5", i)
		}
	}
	if _, warm := s.Observe(1, 0, p); !warm {
		t.Fatal("not warm after 5 residuals")
	}
	if z, _ := s.Observe(math.Inf(1), 0, p); z != 0 {
		t.Fatalf("infinite residual scored z %v", z)
	}
	if sg := s.Sigma(); math.Abs(sg-madToSigma) > 1e-12 {
		t.Fatalf("sigma %v after constant residual 1, want %v", sg, madToSigma)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{WarmUp: 1, HalfLife: 0, Clip: math.NaN(), OnsetZ: 3, CalmZ: 3, CalmLen: 0, MinEpisode: 10, MaxEpisode: 5}.Validate()
	for _, want := range []string{"warm-up 1", "half-life 0", "clip NaN", "onset z 3, calm z 3", "calm length 0, min 10, max 5", "recurrence half-life 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %q", err, want)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestScorerFloor: the floor bounds the scale from below, for z and for
// the clip, and the zero scale of an exact forecast does not make z
// explode once a floor is given.
func TestScorerFloor(t *testing.T) {
	p, _ := NewParams(DefaultConfig())
	f := func(residuals []float64, floor, last, wantZ float64) {
		t.Helper()
		var s Scorer
		for _, r := range residuals {
			s.Observe(r, floor, p)
		}
		if z, _ := s.Observe(last, floor, p); math.Abs(z-wantZ) > 1e-9*wantZ {
			t.Errorf("after %v with floor %v: residual %v scored z %v, want %v", residuals, floor, last, z, wantZ)
		}
	}
	zeros := make([]float64, 50)
	f(zeros, 0.5, 1, 2)                              // exact forecasts: the floor is the scale
	f(zeros, 0, 1, 1/minScale)                       // no floor: maximally surprising
	f([]float64{2, -2, 2}, 0.5, 5, 5/(2*madToSigma)) // the scale above the floor wins
	f([]float64{0.1, -0.1}, 1, -3, 3)
}
