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
