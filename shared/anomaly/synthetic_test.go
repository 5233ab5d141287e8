package anomaly

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/metricpipe/metricpipe/shared/forecast"
)

// synthAnomaly is an injected anomaly: points from..to (inclusive).
type synthAnomaly struct {
	kind     string
	from, to int
}

// synthSeries generates one series the way the producer's synthetic mode
// does (producer/generator.go): a level with a slow sine, a trend, a
// random walk and 1% noise, with spikes (50–100% of the level, one point),
// level shifts (20–50%, 10–59 points), drifts, flat lines and dropouts
// (NaN here: a missing point) starting with probability rate per point.
func synthSeries(rng *rand.Rand, n int, rate float64) ([]float64, []synthAnomaly) {
	level := 10 + rng.Float64()*90
	amp := level * (0.05 + rng.Float64()*0.25)
	period := 86400 / float64(1+rng.IntN(24)) // one-second points: a day or a few hours
	trend := (rng.Float64() - 0.5) * level * 1e-4
	noise := level * 0.01
	var walk float64
	ys := make([]float64, n)
	var as []synthAnomaly
	var cur synthAnomaly
	var size, frozen float64
	for i := range ys {
		walk += rng.NormFloat64() * noise * 0.3
		v := level + amp*math.Sin(2*math.Pi*float64(i)/period) + trend*float64(i) + walk + rng.NormFloat64()*noise
		if cur.kind != "" && i > cur.to {
			cur.kind = ""
		}
		if cur.kind == "" && rng.Float64() < rate {
			sign := 1.0
			if rng.IntN(2) == 0 {
				sign = -1
			}
			cur = synthAnomaly{kind: [...]string{"spike", "level_shift", "drift", "flat_line", "dropout"}[rng.IntN(5)], from: i, to: i + 10 + rng.IntN(50)}
			switch cur.kind {
			case "spike":
				cur.to = i
				size = sign * level * (0.5 + 0.5*rng.Float64())
			case "level_shift":
				size = sign * level * (0.2 + 0.3*rng.Float64())
			case "drift":
				size = sign * level * (0.3 + 0.3*rng.Float64())
			case "flat_line":
				frozen = v
			}
			as = append(as, cur)
		}
		switch cur.kind {
		case "spike", "level_shift":
			v += size
		case "drift":
			v += size * float64(i-cur.from+1) / float64(cur.to-cur.from+1)
		case "flat_line":
			v = frozen
		case "dropout":
			v = math.NaN()
		}
		ys[i] = v
	}
	return ys, as
}

// TestSyntheticZ reproduces the end-to-end test's workload (an alert rule
// `anomaly: {z: 8}` with keep_firing_for 90 points over synthetic series)
// and holds its bounds: recall of spikes and level shifts ≥ 0.9, at most
// one false alert per 10,000 normal points.
func TestSyntheticZ(t *testing.T) {
	const (
		series, points = 100, 4000
		rate           = 0.0005 // per point, as the end-to-end test injects
		zAlert         = 8
		keepFiring     = 90 // points an alert outlives its last z ≥ 8
		warmUp         = 40 // points before an anomaly is judged
		slack          = 5  // an alert may start this many points after its anomaly
	)
	c := DefaultConfig()
	p, err := NewParams(c)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	var judged, found, falseAlerts, normal int
	for range series {
		ys, as := synthSeries(rng, points, rate)
		fc, err := forecast.New(forecast.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		d := NewDetector(fc)
		hit := make([]bool, len(as))
		firing, last := false, 0
		for i, y := range ys {
			v := d.Observe(y, p)
			cond := v.Warm && v.Z >= zAlert
			if firing && !cond && i-last > keepFiring {
				firing = false
			}
			if cond {
				if !firing {
					owner := -1
					for k, a := range as {
						if i >= a.from && i <= a.to+slack {
							owner = k
						}
					}
					if owner < 0 {
						falseAlerts++
						t.Logf("false alert at point %d (value %.2f, forecast %.2f, z %.1f)", i, y, v.Forecast, v.Z)
					} else {
						hit[owner] = true
					}
				}
				firing, last = true, i
			}
		}
		anomalous := 0
		for k, a := range as {
			anomalous += a.to - a.from + 1
			if (a.kind == "spike" || a.kind == "level_shift") && a.from >= warmUp {
				judged++
				if hit[k] {
					found++
				} else {
					// An alert already firing (keep_firing_for) for an
					// anomaly just before swallows this one's start.
					t.Logf("missed %s at points %d..%d", a.kind, a.from, a.to)
				}
			}
		}
		normal += points - anomalous
	}
	recall := float64(found) / float64(judged)
	perTenK := float64(falseAlerts) / float64(normal) * 10_000
	t.Logf("spikes and level shifts: %d judged, %d found (recall %.3f); %d false alerts in %d normal points (%.2f per 10,000)",
		judged, found, recall, falseAlerts, normal, perTenK)
	if judged < 50 {
		t.Fatalf("only %d spikes and level shifts: too few to judge", judged)
	}
	if recall < 0.9 {
		t.Errorf("recall %.3f, want ≥ 0.9", recall)
	}
	if perTenK > 1 {
		t.Errorf("%.2f false alerts per 10,000 normal points, want ≤ 1", perTenK)
	}
}
