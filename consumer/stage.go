package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/movavg"
	"github.com/metricpipe/metricpipe/shared/service"
)

// stageFlags are the moving-average stage's flags.
func stageFlags() []cli.Flag {
	const cat = "Moving averages"
	env := service.EnvVars
	return []cli.Flag{
		&cli.IntFlag{Name: "sma-window", Value: 10, Usage: "points in the simple moving average <field>_sma (0: off)", EnvVars: env("sma-window"), Category: cat},
		&cli.Float64Flag{Name: "ema-alpha", Usage: "smoothing factor in (0, 1] of the exponential moving average <field>_ema (0: use --ema-span)", EnvVars: env("ema-alpha"), Category: cat},
		&cli.Float64Flag{Name: "ema-span", Value: 10, Usage: "EMA span N, alpha = 2/(N+1), when --ema-alpha is 0 (0: EMA off)", EnvVars: env("ema-span"), Category: cat},
		&cli.StringFlag{Name: "wma-weights", Usage: "weights a0,a1,... of <field>_wma = Σ aᵢ·x(t−i), newest first, e.g. 0.5,0.3,0.2 (empty: off)", EnvVars: env("wma-weights"), Category: cat},
		&cli.DurationFlag{Name: "rollup", Value: time.Minute, Usage: "tumbling event-time window of the rollups <field>_count/_mean/_min/_max/_last/_p95 (0: off)", EnvVars: env("rollup"), Category: cat},
		&cli.DurationFlag{Name: "allowed-lateness", Value: 10 * time.Second, Usage: "how far behind its own series' latest event time a point may be and still update its rollup window", EnvVars: env("allowed-lateness"), Category: cat},
		&cli.IntFlag{Name: "max-series", Value: 100000, Usage: "series-fields tracked per partition at most; beyond, points are written raw only", EnvVars: env("max-series"), Category: cat},
		&cli.DurationFlag{Name: "series-idle-timeout", Value: time.Hour, Usage: "processing time after which a silent series' state is dropped, its open rollup windows written first (0: never)", EnvVars: env("series-idle-timeout"), Category: cat},
		&cli.DurationFlag{Name: "idle-flush", Value: time.Minute, Usage: "processing time after which a silent series' open rollup windows are closed and written, and a partition without messages closes all of its windows (0: never)", EnvVars: env("idle-flush"), Category: cat},
		&cli.DurationFlag{Name: "state-replay", Value: 10 * time.Minute, Usage: "when a partition is assigned and no checkpoint of its state can be restored: message time replayed, unwritten, from before its committed offset, to rebuild its moving averages (0: start cold)", EnvVars: env("state-replay"), Category: cat},
		&cli.DurationFlag{Name: "max-future", Value: time.Hour, Usage: "points stamped further ahead of their Kafka message time are written raw but kept out of the stage", EnvVars: env("max-future"), Category: cat},
		&cli.StringSliceFlag{Name: "derive-fields", Usage: "only fields matching one of these measurement:field globs, repeatable, get moving averages and rollups, e.g. 'cpu:usage_*' (none given: every field)", EnvVars: env("derive-fields"), Category: cat},
		&cli.StringSliceFlag{Name: "stage-override", Usage: "per-measurement settings, repeatable: 'cpu:sma=60,ema=0.2,wma=0.5/0.3/0.2,rollup=5m' (unnamed: off)", EnvVars: env("stage-override"), Category: cat},
	}
}

// stageConfigFromCLI reads the flags of stageFlags; Validate checks the
// values, parse errors are returned here, all at once.
func stageConfigFromCLI(c *cli.Context) (movavg.Config, error) {
	var errs []error
	p := movavg.Params{SMAWindow: c.Int("sma-window"), EMAAlpha: c.Float64("ema-alpha"), Rollup: c.Duration("rollup")}
	if p.EMAAlpha == 0 && c.Float64("ema-span") != 0 {
		alpha, err := movavg.AlphaFromSpan(c.Float64("ema-span"))
		errs = append(errs, err)
		p.EMAAlpha = alpha
	}
	if s := c.String("wma-weights"); s != "" {
		w, err := movavg.ParseWeights(s)
		errs = append(errs, err)
		p.WMAWeights = w
	}
	cfg := movavg.Config{
		Default:         p,
		AllowedLateness: c.Duration("allowed-lateness"),
		MaxSeries:       c.Int("max-series"),
		IdleTimeout:     c.Duration("series-idle-timeout"),
		IdleFlush:       c.Duration("idle-flush"),
	}
	for _, g := range c.StringSlice("derive-fields") {
		fp, err := movavg.ParseFieldPattern(g)
		errs = append(errs, err)
		cfg.Fields = append(cfg.Fields, fp)
	}
	for _, o := range c.StringSlice("stage-override") {
		m, op, err := movavg.ParseOverride(o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if cfg.Overrides == nil {
			cfg.Overrides = map[string]movavg.Params{}
		}
		if _, dup := cfg.Overrides[m]; dup {
			errs = append(errs, fmt.Errorf("--stage-override: measurement %q given twice", m))
		}
		cfg.Overrides[m] = op
	}
	return cfg, errors.Join(errs...)
}
