package forecast

import "testing"

// TestHoltByHand checks Holt against arithmetic done by hand, α = 0.3,
// β = 0.2, on 10, 12, 11, 15:
//
//	init:  level = 12, trend = 12 − 10 = 2                  ŷ = 14
//	y=11:  level = 0.3·11 + 0.7·14      = 13.1
//	       trend = 0.2·(13.1 − 12) + 0.8·2 = 1.82            ŷ = 14.92
//	y=15:  level = 0.3·15 + 0.7·14.92   = 14.944
//	       trend = 0.2·(14.944 − 13.1) + 0.8·1.82 = 1.8248   ŷ = 16.7688
//	       Ahead(3) = 14.944 + 3·1.8248 = 20.4184
//
// and the 3-step variance factor 1 + α²·((1+β)² + (1+2β)²) = 1.306.
func TestHoltByHand(t *testing.T) {
	f := mustNew(t, Config{Kind: Holt, Alpha: 0.3, Beta: 0.2, ErrorHalfLife: 10})
	f.Update(10)
	if _, ok := f.Predict(); ok {
		t.Fatal("Predict ok after one point")
	}
	for _, step := range []struct{ y, want float64 }{{12, 14}, {11, 14.92}, {15, 16.7688}} {
		f.Update(step.y)
		if got, ok := f.Predict(); !ok || !near(got, step.want, 1e-12) {
			t.Fatalf("after %v: Predict = %v, %v, want %v", step.y, got, ok, step.want)
		}
	}
	if got, _ := f.Ahead(3); !near(got, 20.4184, 1e-12) {
		t.Errorf("Ahead(3) = %v, want 20.4184", got)
	}
	if got := f.holt.varianceFactor(3); !near(got, 1.306, 1e-12) {
		t.Errorf("varianceFactor(3) = %v, want 1.306", got)
	}
	if got := f.holt.varianceFactor(1); got != 1 {
		t.Errorf("varianceFactor(1) = %v, want 1", got)
	}
}

// TestHoltLine: after the two points of its initialisation, Holt forecasts
// a straight line exactly, at every horizon.
func TestHoltLine(t *testing.T) {
	f := mustNew(t, Config{Kind: Holt, Alpha: 0.3, Beta: 0.1, ErrorHalfLife: 10})
	line := func(t int) float64 { return 3 + 2.5*float64(t) }
	f.Update(line(0))
	for i := 1; i < 200; i++ {
		f.Update(line(i))
		for _, h := range []int{1, 2, 10} {
			if got, ok := f.Ahead(h); !ok || !near(got, line(i+h), 1e-12) {
				t.Fatalf("after point %d: Ahead(%d) = %v, %v, want %v", i, h, got, ok, line(i+h))
			}
		}
	}
}
