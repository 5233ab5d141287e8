package main

import (
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/point"
)

func TestGeneratorIsReproducibleAndWellFormed(t *testing.T) {
	cfg := syntheticConfig{Series: 7, Interval: time.Second, Seed: 42, Measurement: "synthetic"}
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
