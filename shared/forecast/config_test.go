package forecast

import (
	"math"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	f := func(mutate func(*Config), wantErrs ...string) {
		t.Helper()
		c := DefaultConfig()
		mutate(&c)
		err := c.Validate()
		if len(wantErrs) == 0 {
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if _, err := New(c); err != nil {
				t.Fatalf("New: %v", err)
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
		if _, nerr := New(c); nerr == nil || !strings.Contains(nerr.Error(), wantErrs[0]) {
			t.Fatalf("New error %v, want one wrapping %q", nerr, err)
		}
	}
	f(func(*Config) {})
	f(func(c *Config) { c.Season = 24 })
	f(func(c *Config) { c.Alpha, c.Beta, c.Gamma, c.Season, c.Order, c.Forgetting = 1, 0, 1, 2, 8, 1 })
	f(func(c *Config) { c.Kind, c.Season = HoltWinters, 7 })
	f(func(c *Config) { *c = Config{Kind: Holt, Alpha: 0.5, ErrorHalfLife: 1} }) // fields of other kinds are not checked
	f(func(c *Config) { *c = Config{Kind: AR, Order: 1, Forgetting: 0.9, ErrorHalfLife: 1_000_000} })

	f(func(c *Config) { c.Kind = "arima" }, `--model "arima": want "holt", "holt-winters", "ar" or "auto"`)
	f(func(c *Config) { c.Kind, c.Alpha = "", 2 }, `--model ""`, "Alpha 2") // an unknown kind checks every field
	f(func(c *Config) { c.Alpha = 0 }, "Alpha 0: want a value in (0, 1]")
	f(func(c *Config) { c.Alpha = 1.5 }, "Alpha 1.5")
	f(func(c *Config) { c.Alpha = math.NaN() }, "Alpha NaN")
	f(func(c *Config) { c.Beta = -0.1 }, "Beta -0.1: want a value in [0, 1]")
	f(func(c *Config) { c.Season, c.Gamma = 24, 1.1 }, "Gamma 1.1: want a value in [0, 1]")
	f(func(c *Config) { c.Gamma = 1.1 }) // no season: Gamma unused
	f(func(c *Config) { c.Season = 1 }, "--season 1: want 0 (none) or 2..10080 points")
	f(func(c *Config) { c.Season = -24 }, "--season -24")
	f(func(c *Config) { c.Season = 10081 }, "--season 10081")
	f(func(c *Config) { c.Kind = HoltWinters }, "--season 0: want 2..10080 points for holt-winters")
	f(func(c *Config) { c.Kind, c.Season = Holt, 24 }, `--season 24: want 0: kind "holt" has no season`)
	f(func(c *Config) { c.Kind, c.Season = AR, 24 }, `--season 24: want 0: kind "ar" has no season`)
	f(func(c *Config) { c.Order = 0 }, "--ar-order 0: want 1..8")
	f(func(c *Config) { c.Order = 9 }, "--ar-order 9")
	f(func(c *Config) { c.Forgetting = 0.8 }, "Forgetting 0.8: want a value in [0.9, 1]")
	f(func(c *Config) { c.Forgetting = 1.01 }, "Forgetting 1.01")
	f(func(c *Config) { c.ErrorHalfLife = 0 }, "ErrorHalfLife 0: want 1..1000000 points")
	f(func(c *Config) { c.ErrorHalfLife = 1_000_001 }, "ErrorHalfLife 1000001")
	f(func(c *Config) { *c = Config{Kind: Auto} },
		"Alpha 0", "--ar-order 0", "Forgetting 0", "ErrorHalfLife 0") // every problem at once
}
