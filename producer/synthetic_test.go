package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/point"
)

func TestGeneratorIsReproducibleAndWellFormed(t *testing.T) {
	for _, list := range [][]string{nil, {shapeBurstyCounts}, {shapeFlatThenShift}, shapes[:]} {
		name := strings.Join(list, ",")
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) { testReproducible(t, list) })
	}
}

func testReproducible(t *testing.T, shapes []string) {
	cfg := syntheticConfig{Series: 7, Interval: time.Second, Seed: 42, Measurement: "synthetic", Shapes: shapes}
	values := func(seed uint64) []float64 {
		cfg.Seed = seed
		g := newGenerator(cfg)
		var p point.Point
		out := make([]float64, 0, 700)
		last := map[string]int64{}
		for range 700 {
			g.next(&p)
			if err := p.Validate(); err != nil {
				t.Fatalf("invalid point %+v: %v", p, err)
			}
			key := string(point.AppendSeriesKey(nil, &p))
			if prev, ok := last[key]; ok && p.Time-prev != int64(time.Second) {
				t.Fatalf("series %s: step %d ns, want one interval", key, p.Time-prev)
			}
			last[key] = p.Time
			out = append(out, p.Fields[0].Value)
		}
		if len(last) != cfg.Series {
			t.Fatalf("%d distinct series, want %d", len(last), cfg.Series)
		}
		return out
	}
	a, b, c := values(42), values(42), values(43)
	same, differ := true, false
	for i := range a {
		same = same && a[i] == b[i]
		differ = differ || a[i] != c[i]
	}
	if !same || !differ {
		t.Fatalf("same seed same values: %v; other seed other values: %v", same, differ)
	}
}

// TestSyntheticEventTimeKeepsPace: with --interval unset, event time follows
// the rate (the README's --series 50 --rate 1000 once ran 20× ahead of the
// clock and passed the consumer's --max-future after three minutes).
func TestSyntheticEventTimeKeepsPace(t *testing.T) {
	f := func(series int, rate float64, interval, wantPace time.Duration, wantAhead float64) {
		t.Helper()
		c := syntheticConfig{Series: series, Rate: rate, Interval: interval}
		if got := c.pace(); got != wantPace {
			t.Errorf("series %d rate %v interval %s: pace %s, want %s", series, rate, interval, got, wantPace)
		}
		if got := c.ahead(); got < wantAhead*0.999 || got > wantAhead*1.001 {
			t.Errorf("series %d rate %v interval %s: %v× the clock, want %v×", series, rate, interval, got, wantAhead)
		}
	}
	f(50, 1000, 0, 50*time.Millisecond, 1)
	f(10, 100, 0, 100*time.Millisecond, 1)
	f(1, 0.5, 0, 2*time.Second, 1)
	f(50, 1000, time.Second, time.Second, 20) // set explicitly: 20× ahead, and said so
	f(100, 0, 0, time.Second, 0)              // as fast as possible
}

// TestWaveShapeIsUnchanged pins the default shape's output, anomalies and
// labels included, to what the generator produced before series shapes
// existed: a digest of 600 points (series key, event time from the start,
// value bits) and of every label, from the code of 88d11f0.
func TestWaveShapeIsUnchanged(t *testing.T) {
	f := func(cfg syntheticConfig, want string) {
		t.Helper()
		g := newGenerator(cfg)
		h := sha256.New()
		g.onAnomaly = func(l label) {
			fmt.Fprintf(h, "label %s %s %d %d\n", l.Series, l.Kind, l.StartNS-g.start, l.EndNS-g.start)
		}
		var p point.Point
		for range 600 {
			g.next(&p)
			fmt.Fprintf(h, "%s %d %x\n", point.AppendSeriesKey(nil, &p), p.Time-g.start, math.Float64bits(p.Fields[0].Value))
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			t.Errorf("seed %d series %d anomaly rate %v: digest %s, want %s", cfg.Seed, cfg.Series, cfg.AnomalyRate, got, want)
		}
	}
	f(syntheticConfig{Series: 7, Interval: time.Second, Seed: 42, Measurement: "synthetic"}, "fb0b621bbece15aa2fa76c0c2ee201bfa7fd690a487ff7b9a98a3ee4148e2295")
	f(syntheticConfig{Series: 5, Interval: time.Minute, Seed: 3, Measurement: "m", AnomalyRate: 0.05}, "a7a0b5b1a714b4313c486d53ff2be4a700beefd4e6da5abd29116dca4e83b28b")
}
