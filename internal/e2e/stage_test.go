package e2e

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
)

// TestMovingAveragesExactInInfluxDB feeds a known series through Kafka and
// the consumer and reads the derived values back from InfluxDB with Flux:
// SMA(3), EMA(α=0.5), WMA(0.5,0.3,0.2) on every point, and 1-minute rollups
// (one closed by the watermark, one by the idle flush).
func TestMovingAveragesExactInInfluxDB(t *testing.T) {
	b := newBed(t, "exact")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	type sample struct {
		at time.Duration
		v  float64
	}
	var samples []sample
	for i := range 10 { // window [t0, t0+1m): 1..10
		samples = append(samples, sample{time.Duration(i) * time.Second, float64(i + 1)})
	}
	for i := range 3 { // window [t0+1m, t0+2m): 11..13
		samples = append(samples, sample{time.Minute + time.Duration(i)*time.Second, float64(11 + i)})
	}
	w, err := kafkaio.NewWriter(kafkaio.Config{Brokers: []string{b.brokers}}, b.topic, kafkaio.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var msgs []kafka.Message
	for _, s := range samples {
		p := point.Point{Measurement: "exact", Tags: []point.Tag{{Key: "s", Value: "a"}},
			Fields: []point.Field{{Key: "v", Value: s.v}}, Time: t0.Add(s.at).UnixNano()}
		msgs = append(msgs, kafka.Message{Key: point.AppendSeriesKey(nil, &p), Value: point.AppendLine(nil, &p)})
	}
	if err := w.WriteMessages(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}

	c := b.consumer("c", testbed.FreeAddr(t), "--sma-window", "3", "--ema-alpha", "0.5", "--wma-weights", "0.5,0.3,0.2",
		"--rollup", "1m", "--allowed-lateness", "0s", "--idle-flush", "1s")
	defer stopGracefully(t, c)

	// Expected values, computed here from the definitions.
	want := map[string]map[int64]float64{}
	put := func(field string, at time.Time, v float64) {
		if want[field] == nil {
			want[field] = map[int64]float64{}
		}
		want[field][at.UnixNano()] = v
	}
	var ema float64
	for i, s := range samples {
		at := t0.Add(s.at)
		put("v", at, s.v)
		if i == 0 {
			ema = s.v
		} else {
			ema = 0.5*ema + 0.5*s.v
		}
		put("v_ema", at, ema)
		if i >= 2 {
			put("v_sma", at, (samples[i].v+samples[i-1].v+samples[i-2].v)/3)
			put("v_wma", at, 0.5*samples[i].v+0.3*samples[i-1].v+0.2*samples[i-2].v)
		}
	}
	w1, w2 := t0, t0.Add(time.Minute)
	// p95 is exact up to 12 points a window: type 7, 1 + 9·0.95 = 9.55th.
	for field, v := range map[string]float64{"v_count": 10, "v_mean": 5.5, "v_min": 1, "v_max": 10, "v_last": 10, "v_p95": 9.55} {
		put(field, w1, v)
	}
	// Three samples: p95 linear between 12 and 13 at 0.9.
	for field, v := range map[string]float64{"v_count": 3, "v_mean": 12, "v_min": 11, "v_max": 13, "v_last": 13, "v_p95": 12.9} {
		put(field, w2, v)
	}

	flux := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == "exact" and r.s == "a")
  |> keep(columns: ["_time", "_field", "_value"])`, b.bucket, t0.Add(-time.Minute).Format(time.RFC3339), t0.Add(5*time.Minute).Format(time.RFC3339))
	got := b.fieldsWhen(flux, "both rollups in InfluxDB", func(got map[string]map[int64]float64) bool { return len(got["v_count"]) == 2 })
	for field, byTime := range want {
		for at, v := range byTime {
			g, ok := got[field][at]
			if !ok || math.Abs(g-v) > 1e-9 {
				t.Errorf("%s at %s = %v (present %v), want %v", field, time.Unix(0, at).UTC().Format(time.TimeOnly), g, ok, v)
			}
		}
		if len(got[field]) != len(byTime) {
			t.Errorf("%s: %d values in InfluxDB, want %d", field, len(got[field]), len(byTime))
		}
	}
	t.Logf("SMA, EMA, WMA of %d points and 2 rollup windows read back from InfluxDB: all as computed", len(samples))
}

// TestMovingAveragesSurviveRestart stops the consumer with a rollup window
// open, so that its commit is held back and a restart replays part of what
// was written, then produces more. The restarted consumer restores its
// checkpoint, or, with checkpoints off, warms its moving averages up from the
// messages before its committed offset: either way every SMA, EMA and WMA in
// InfluxDB, replayed or new, is what one uninterrupted run computes (a cold
// restart re-seeds the EMA and rewrites it differently).
func TestMovingAveragesSurviveRestart(t *testing.T) {
	for _, tc := range []struct {
		name, log string
		flags     []string
	}{
		{"checkpoint", "state restored from checkpoint", nil},
		{"warm-up", "to warm up", []string{"--checkpoint-interval", "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) { movingAveragesSurviveRestart(t, tc.log, tc.flags) })
	}
}

func movingAveragesSurviveRestart(t *testing.T, wantLog string, extraFlags []string) {
	b := newBed(t, "warm")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	const n, stopAt, step = 60, 40, 3 * time.Second
	values := make([]float64, n)
	for i := range values {
		values[i] = float64(i%7)*1.5 + float64(i)/4
	}
	w, err := kafkaio.NewWriter(kafkaio.Config{Brokers: []string{b.brokers}}, b.topic, kafkaio.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	produce := func(from, to int) {
		t.Helper()
		var msgs []kafka.Message
		for i := from; i < to; i++ {
			p := point.Point{Measurement: "warm", Tags: []point.Tag{{Key: "s", Value: "a"}},
				Fields: []point.Field{{Key: "v", Value: values[i]}}, Time: t0.Add(time.Duration(i) * step).UnixNano()}
			msgs = append(msgs, kafka.Message{Key: point.AppendSeriesKey(nil, &p), Value: point.AppendLine(nil, &p)})
		}
		if err := w.WriteMessages(t.Context(), msgs...); err != nil {
			t.Fatal(err)
		}
	}
	flags := []string{"--sma-window", "5", "--ema-alpha", "0.3", "--wma-weights", "0.5,0.3,0.2",
		"--rollup", "1m", "--allowed-lateness", "0s", "--idle-flush", "0s", "--state-replay", "10m"}
	flags = append(flags, extraFlags...)

	produce(0, stopAt)
	c := b.consumer("c", testbed.FreeAddr(t), flags...)
	b.waitCount("warm", "v_ema", stopAt, time.Minute)
	stopGracefully(t, c)
	committed, err := b.admin.CommittedOffsets(t.Context(), b.topic+"-c", b.topic)
	if err != nil {
		t.Fatal(err)
	}
	var held int64
	for _, o := range committed {
		held += max(o, 0)
	}
	// Points 20..39 (60 s to 117 s) are in the window [1m, 2m), still open.
	if held != 20 {
		t.Fatalf("committed %d after the stop, want 20: the first message of the open window", held)
	}

	produce(stopAt, n)
	c = b.consumer("c", testbed.FreeAddr(t), flags...)
	defer stopGracefully(t, c)
	b.waitCount("warm", "v", n, time.Minute)

	want := map[string]map[int64]float64{"v_sma": {}, "v_ema": {}, "v_wma": {}}
	var ema float64
	for i, v := range values {
		at := t0.Add(time.Duration(i) * step).UnixNano()
		if i == 0 {
			ema = v
		} else {
			ema = 0.7*ema + 0.3*v
		}
		want["v_ema"][at] = ema
		if i >= 4 {
			want["v_sma"][at] = (values[i] + values[i-1] + values[i-2] + values[i-3] + values[i-4]) / 5
		}
		if i >= 2 {
			want["v_wma"][at] = 0.5*values[i] + 0.3*values[i-1] + 0.2*values[i-2]
		}
	}
	flux := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == "warm" and (r._field == "v_sma" or r._field == "v_ema" or r._field == "v_wma"))
  |> keep(columns: ["_time", "_field", "_value"])`, b.bucket, t0.Add(-time.Minute).Format(time.RFC3339), t0.Add(5*time.Minute).Format(time.RFC3339))
	got := b.fieldsWhen(flux, "every moving average in InfluxDB", func(got map[string]map[int64]float64) bool {
		return len(got["v_sma"])+len(got["v_ema"])+len(got["v_wma"]) == n-4+n+n-2
	})
	for field, byTime := range want {
		for at, v := range byTime {
			if g, ok := got[field][at]; !ok || math.Abs(g-v) > 1e-9 {
				t.Errorf("%s at point %d = %v (present %v), want %v", field, (time.Duration(at-t0.UnixNano()))/step, g, ok, v)
			}
		}
	}
	if !strings.Contains(c.Output(), wantLog) {
		t.Errorf("the restarted consumer's log does not say %q", wantLog)
	}
	t.Logf("stopped at %d points with the commit held at 20, restarted, %d more: all %d SMA, EMA and WMA values as one uninterrupted run's",
		stopAt, n-stopAt, n-4+n+n-2)
}

// fieldsWhen runs flux (rows of _time, _field and _value) until done accepts
// its result, by field and time, or a minute passed.
func (b *bed) fieldsWhen(flux, what string, done func(map[string]map[int64]float64) bool) map[string]map[int64]float64 {
	b.t.Helper()
	var got map[string]map[int64]float64
	testbed.Eventually(b.t, time.Minute, what, func() (bool, string) {
		rows, err := testbed.FluxRows(b.t.Context(), b.influxURL, flux)
		if err != nil {
			return false, err.Error()
		}
		got = map[string]map[int64]float64{}
		for _, r := range rows {
			f := r["_field"].(string)
			if got[f] == nil {
				got[f] = map[int64]float64{}
			}
			got[f][r["_time"].(time.Time).UnixNano()] = r["_value"].(float64)
		}
		return done(got), fmt.Sprintf("%d rows", len(rows))
	})
	return got
}
