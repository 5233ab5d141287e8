package movavg

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// validConfig is a config using every feature.
func validConfig() Config {
	return Config{
		Default:         Params{SMAWindow: 30, EMAAlpha: 0.2, WMAWeights: []float64{0.5, 0.3, 0.2}, Rollup: time.Minute},
		Overrides:       map[string]Params{"mem": {SMAWindow: 5}, "disk": {}},
		AllowedLateness: 10 * time.Second,
		MaxSeries:       1000,
		IdleTimeout:     time.Hour,
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(mutate func(*Config), wantErrs ...string) {
		t.Helper()
		c := validConfig()
		mutate(&c)
		err := c.Validate()
		if len(wantErrs) == 0 {
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("want errors %q, got nil", wantErrs)
		}
		for _, w := range wantErrs {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q does not mention %q", err, w)
			}
		}
		if n := len(strings.Split(err.Error(), "\n")); n != len(wantErrs) {
			t.Fatalf("error %q has %d lines, want %d", err, n, len(wantErrs))
		}
	}
	f(func(*Config) {})
	f(func(c *Config) { *c = Config{MaxSeries: 1} }) // everything off is valid
	f(func(c *Config) {
		c.Default.SMAWindow, c.Default.EMAAlpha, c.Default.Rollup, c.AllowedLateness = 2, 1, time.Millisecond, 0
	})
	f(func(c *Config) { c.Default.SMAWindow = 1 }, "--sma-window 1: want 0 (off) or 2..65536")
	f(func(c *Config) { c.Default.SMAWindow = -3 }, "--sma-window -3")
	f(func(c *Config) { c.Default.SMAWindow = 1<<16 + 1 }, "--sma-window 65537")
	f(func(c *Config) { c.Default.EMAAlpha = 1.5 }, "--ema-alpha 1.5: want 0 (off) or a value in (0, 1]")
	f(func(c *Config) { c.Default.EMAAlpha = -0.1 }, "--ema-alpha -0.1")
	f(func(c *Config) { c.Default.EMAAlpha = math.NaN() }, "--ema-alpha NaN")
	f(func(c *Config) { c.Default.WMAWeights = []float64{} }, `--wma-weights "": want at least one weight`)
	f(func(c *Config) { c.Default.WMAWeights = []float64{1, math.Inf(1)} }, `--wma-weights "1,+Inf": weight 2 is +Inf`)
	f(func(c *Config) { c.Default.WMAWeights = []float64{0.5, -0.5} }, `--wma-weights "0.5,-0.5": the weights sum to 0`)
	f(func(c *Config) { c.Default.WMAWeights = []float64{1e308, 1e308} }, `--wma-weights "1e+308,1e+308": the weights sum to +Inf`)
	f(func(c *Config) { c.Default.WMAWeights = []float64{2, -1} }) // a sum > 0 is all that is asked
	f(func(c *Config) { c.Default.Rollup = time.Microsecond }, "--rollup 1µs: want 0 (off) or at least 1ms")
	f(func(c *Config) { c.Default.Rollup = 1500 * time.Microsecond }, "--rollup 1.5ms: want a whole number of milliseconds")
	f(func(c *Config) { c.Default.Rollup = -time.Minute }, "--rollup -1m0s")
	f(func(c *Config) { c.AllowedLateness = -time.Second }, "--allowed-lateness -1s: want ≥ 0")
	f(func(c *Config) { c.AllowedLateness, c.IdleTimeout = 61*time.Minute, 0 },
		"--allowed-lateness 1h1m0s: want at most 60 × --rollup 1m0s")
	f(func(c *Config) { c.MaxSeries = 0 }, "--max-series 0: want 1..2147483647")
	f(func(c *Config) { c.MaxSeries = math.MaxInt32 + 1 }, "--max-series 2147483648")
	f(func(c *Config) { c.IdleTimeout = -time.Second }, "--series-idle-timeout -1s")
	f(func(c *Config) { c.IdleTimeout = time.Minute },
		"--series-idle-timeout 1m0s: want 0 (never) or ≥ --rollup 1m0s + --allowed-lateness = 1m10s")
	f(func(c *Config) { c.IdleTimeout = 0 })
	f(func(c *Config) { c.IdleFlush = -time.Second }, "--idle-flush -1s: want 0 (never) or > 0")
	f(func(c *Config) { c.IdleFlush = time.Second })
	f(func(c *Config) { c.Overrides["cpu"] = Params{SMAWindow: 1, EMAAlpha: 2} },
		`--stage-override "cpu": sma=1: want 0 (off) or 2..65536`, `--stage-override "cpu": ema=2: want`)
	f(func(c *Config) { c.Overrides["cpu"] = Params{WMAWeights: []float64{0, 0}} },
		`--stage-override "cpu": wma=0/0: the weights sum to 0`)
	f(func(c *Config) { c.Overrides["cpu"] = Params{Rollup: 100 * time.Millisecond} },
		`--allowed-lateness 10s: want at most 60 × rollup=100ms of --stage-override "cpu"`)
	f(func(c *Config) { c.Overrides["cpu"] = Params{Rollup: time.Hour} },
		`--series-idle-timeout 1h0m0s: want 0 (never) or ≥ rollup=1h0m0s of --stage-override "cpu" + --allowed-lateness = 1h0m10s`)
	f(func(c *Config) { c.Overrides[""] = Params{} }, `--stage-override "": the measurement name is empty`)
	// Every problem at once, so an operator fixes all in one pass.
	f(func(c *Config) { c.Default.SMAWindow, c.MaxSeries, c.Overrides["x"] = 1, 0, Params{EMAAlpha: 3} },
		"--sma-window", "--max-series", `--stage-override "x": ema=3`)
}

func TestParseWeights(t *testing.T) {
	f := func(in string, want []float64, wantErr string) {
		t.Helper()
		got, err := ParseWeights(in)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), "--wma-weights") {
				t.Fatalf("ParseWeights(%q) error = %v, want one naming --wma-weights and %q", in, err, wantErr)
			}
			return
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseWeights(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	f("0.5,0.3,0.2", []float64{0.5, 0.3, 0.2}, "")
	f(" 1 , -0.5 ", []float64{1, -0.5}, "")
	f("1", []float64{1}, "")
	f("", nil, `weight 1 "": want a number`)
	f("0.5,,0.5", nil, `weight 2 "": want a number`)
	f("0.5;0.5", nil, "want a number")
	f("1,NaN", nil, "weight 2 is NaN")
	f("1,inf", nil, "weight 2 is +Inf")
	f("-1,0.5", nil, "the weights sum to -0.5")
	f("0", nil, "the weights sum to 0")
}

func TestAlphaFromSpan(t *testing.T) {
	f := func(span, want float64, wantErr bool) {
		t.Helper()
		got, err := AlphaFromSpan(span)
		if wantErr {
			if err == nil || !strings.Contains(err.Error(), "--ema-span") {
				t.Fatalf("AlphaFromSpan(%v) error = %v, want one naming --ema-span", span, err)
			}
			return
		}
		if err != nil || got != want {
			t.Fatalf("AlphaFromSpan(%v) = %v, %v; want %v", span, got, err, want)
		}
	}
	f(1, 1, false)
	f(3, 0.5, false)
	f(19, 0.1, false)
	f(0.5, 0, true)
	f(0, 0, true)
	f(math.NaN(), 0, true)
	f(math.Inf(1), 0, true)
}

func TestParseOverride(t *testing.T) {
	f := func(in, wantMeas string, want Params, wantErrs ...string) {
		t.Helper()
		m, p, err := ParseOverride(in)
		if len(wantErrs) > 0 {
			if err == nil {
				t.Fatalf("ParseOverride(%q) = %q, %+v; want errors %q", in, m, p, wantErrs)
			}
			for _, w := range append(wantErrs, "--stage-override") {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("ParseOverride(%q) error %q does not mention %q", in, err, w)
				}
			}
			return
		}
		if err != nil || m != wantMeas || !reflect.DeepEqual(p, want) {
			t.Fatalf("ParseOverride(%q) = %q, %+v, %v; want %q, %+v", in, m, p, err, wantMeas, want)
		}
	}
	f("cpu:sma=60,ema=0.2,wma=0.5/0.3/0.2,rollup=5m", "cpu",
		Params{SMAWindow: 60, EMAAlpha: 0.2, WMAWeights: []float64{0.5, 0.3, 0.2}, Rollup: 5 * time.Minute})
	f("cpu:ema=0.2", "cpu", Params{EMAAlpha: 0.2})
	f("cpu: sma = 10 , rollup = 1h ", "cpu", Params{SMAWindow: 10, Rollup: time.Hour})
	f("cpu:ema_span=3", "cpu", Params{EMAAlpha: 0.5})
	f("disk:", "disk", Params{})
	f("job:rate5m:sma=5", "job:rate5m", Params{SMAWindow: 5}) // the last ':' separates
	f("net io:wma=1", "net io", Params{WMAWeights: []float64{1}})

	f("cpu", "", Params{}, "want measurement:key=value")
	f(":sma=5", "", Params{}, "the measurement name is empty")
	f("cpu:sma=60:ema=0.2", "", Params{}, `measurement "cpu:sma=60" contains '='`)
	f("cpu:sma=x", "", Params{}, `"cpu": sma=x: want an integer`)
	f("cpu:sma=1", "", Params{}, `"cpu": sma=1: want 0 (off) or 2..65536`)
	f("cpu:ema=abc", "", Params{}, `ema=abc: want a number`)
	f("cpu:ema=0", "cpu", Params{}) // off, explicitly
	f("cpu:ema=1.5", "", Params{}, `ema=1.5: want 0 (off) or a value in (0, 1]`)
	f("cpu:ema_span=0", "", Params{}, `ema_span=0: want a finite number ≥ 1`)
	f("cpu:ema=0.5,ema_span=3", "", Params{}, `ema_span=3: given twice`)
	f("cpu:sma=5,sma=6", "", Params{}, `sma=6: given twice`)
	f("cpu:wma=0.5,0.5", "", Params{}, `"0.5": want key=value`)
	f("cpu:wma=1/-1", "", Params{}, `wma=1/-1: the weights sum to 0`)
	f("cpu:wma=", "", Params{}, `wma=: weight 1 "": want a number`)
	f("cpu:rollup=1x", "", Params{}, `rollup=1x: want a duration`)
	f("cpu:rollup=500us", "", Params{}, `rollup=500µs: want 0 (off) or at least 1ms`)
	f("cpu:window=5", "", Params{}, `unknown key "window"`)
	// All problems at once.
	f("cpu:sma=x,ema=y,foo=1", "", Params{}, "sma=x", "ema=y", `unknown key "foo"`)
}
