package main

import (
	"fmt"
	"math"
	"testing"

	"github.com/metricpipe/metricpipe/shared/movavg"
	"github.com/metricpipe/metricpipe/shared/point"
)

// TestAveragesAreTheConsumers: a rule on sma or ema tests exactly the
// consumer's <field>_sma and <field>_ema under the same flags: the same
// points, late ones included, through the consumer's movavg stage and
// through the analyzer give bit for bit the same averages in the rule
// sample, and no SMA (NaN: no rule holds) while the consumer writes none,
// during its warm-up.
func TestAveragesAreTheConsumers(t *testing.T) {
	for _, tc := range []struct{ sma, span float64 }{{5, 10}, {2, 1}, {30, 3.5}} {
		t.Run(fmt.Sprintf("sma=%v/ema-span=%v", tc.sma, tc.span), func(t *testing.T) {
			alpha, err := movavg.AlphaFromSpan(tc.span)
			if err != nil {
				t.Fatal(err)
			}
			params := movavg.Params{SMAWindow: int(tc.sma), EMAAlpha: alpha}
			stage, err := movavg.New(movavg.Config{Default: params, MaxSeries: 1000})
			if err != nil {
				t.Fatal(err)
			}
			a := synthAnalysis()
			a.SMAWindow, a.EMAAlpha = params.SMAWindow, params.EMAAlpha
			e := testEngine(t, a, synthRules)
			var late, compared, warm int
			for i, p := range synthStream(4, 300) {
				p.Fields = p.Fields[:1] // one field: the sample is its
				out := stage.Process(&p, arrival(i), nil)
				want := map[string]float64{"sma": math.NaN(), "ema": math.NaN()}
				for _, o := range out {
					for _, f := range o.Fields {
						switch f.Key {
						case "lat_sma":
							want["sma"] = f.Value
						case "lat_ema":
							want["ema"] = f.Value
						}
					}
				}
				e.process(&p, arrival(i))
				e.res.Reset()
				if e.smp.Time != p.Time {
					late++ // not analyzed; its averages show in the next sample
					continue
				}
				got := map[string]float64{"sma": e.smp.SMA, "ema": e.smp.EMA}
				for k, w := range want {
					if g := got[k]; math.Float64bits(g) != math.Float64bits(w) && !(math.IsNaN(g) && math.IsNaN(w)) {
						t.Fatalf("point %d (%s): analyzer's %s %v (%x), consumer's %v (%x)", i, point.AppendSeriesKey(nil, &p), k, g, math.Float64bits(g), w, math.Float64bits(w))
					}
				}
				if math.IsNaN(want["sma"]) {
					warm++
				}
				compared++
			}
			if late == 0 || warm == 0 {
				t.Fatalf("%d late points, %d during the SMA's warm-up: the stream does not test them", late, warm)
			}
			t.Logf("%d samples identical (%d during the SMA's warm-up), %d late points averaged", compared, warm, late)
		})
	}
}
