// Command analyzer reads metric points from Kafka in its own consumer group,
// in parallel with the consumer: it forecasts every series, scores each
// point's surprise, evaluates alert rules and publishes alert events.
package main

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/action"
	"github.com/metricpipe/metricpipe/shared/anomaly"
	"github.com/metricpipe/metricpipe/shared/forecast"
	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/movavg"
	"github.com/metricpipe/metricpipe/shared/service"
)

func main() {
	os.Exit(service.Main(newApp(os.Stdout, os.Stderr), os.Args))
}

func newApp(stdout, stderr io.Writer) *cli.App {
	env := service.EnvVars
	app := service.NewApp("analyzer", "forecast metric series from Kafka, score anomalies, raise alerts", stdout, stderr)
	app.Flags = []cli.Flag{
		&cli.StringFlag{Name: "alert-topic", Value: kafkaio.DefaultAlertTopic, Usage: "topic alert events are published to", EnvVars: env("alert-topic"), Category: "Kafka"},
		kafkaio.DeadLetterFlag(),
		// Alerts should leave soon after their point arrived: small batches.
		&cli.IntFlag{Name: "batch-size", Value: 5000, Usage: "messages handled and committed together at most (a batch waits --flush-interval at most to fill)", EnvVars: env("batch-size"), Category: "Kafka"},
		&cli.DurationFlag{Name: "flush-interval", Value: 100 * time.Millisecond, Usage: "longest a fetched message waits for its batch", EnvVars: env("flush-interval"), Category: "Kafka"},
		&cli.StringFlag{Name: "rules", Usage: "YAML file of alert rules, reloaded on SIGHUP and on change (empty: no alerts)", EnvVars: env("rules"), Category: "Alerts"},
		&cli.DurationFlag{Name: "rules-poll", Value: 5 * time.Second, Usage: "how often the rule file is checked for changes", EnvVars: env("rules-poll"), Category: "Alerts"},
		&cli.DurationFlag{Name: "repeat-interval", Usage: "re-announce a firing alert this often, in event time (0: only on changes)", EnvVars: env("repeat-interval"), Category: "Alerts"},
		&cli.DurationFlag{Name: "absence-check", Value: 10 * time.Second, Usage: "how often a quiet partition looks for series absent past their rule's \"for\"", EnvVars: env("absence-check"), Category: "Alerts"},
		&cli.StringFlag{Name: "actions-dir", Usage: "allow-list directory of the programs rules' exec actions may run, by bare name (empty: exec actions are refused)", EnvVars: env("actions-dir"), Category: "Actions"},
		&cli.IntFlag{Name: "actions-workers", Value: action.DefaultConfig().Workers, Usage: "recovery actions run at once", EnvVars: env("actions-workers"), Category: "Actions"},
		&cli.IntFlag{Name: "actions-queue", Value: action.DefaultConfig().Queue, Usage: "recovery actions waiting for a worker at most; more are dropped, audited and counted", EnvVars: env("actions-queue"), Category: "Actions"},
		&cli.StringFlag{Name: "actions-topic", Usage: "topic of the audit record of every action attempt (empty: <alert-topic>-actions)", EnvVars: env("actions-topic"), Category: "Actions"},
		&cli.StringFlag{Name: "alerts-measurement", Value: "metricpipe_alerts", Usage: "InfluxDB measurement of alert events", EnvVars: env("alerts-measurement"), Category: "Alerts"},
		&cli.StringFlag{Name: "model", Value: string(forecast.DefaultConfig().Kind), Usage: "forecaster: holt, holt-winters, ar or auto (the best recent one per series)", EnvVars: env("model"), Category: "Forecast"},
		&cli.StringFlag{Name: "season", Usage: "seasonal period for Holt-Winters: points (\"24\") or time (\"24h\", turned into points by each series' interval); empty: none", EnvVars: env("season"), Category: "Forecast"},
		&cli.IntFlag{Name: "ar-order", Value: forecast.DefaultConfig().Order, Usage: "order p of the autoregressive model", EnvVars: env("ar-order"), Category: "Forecast"},
		&cli.Float64Flag{Name: "interval-z", Value: 3, Usage: "prediction band half-width in residual standard deviations (<field>_lower/_upper)", EnvVars: env("interval-z"), Category: "Forecast"},
		&cli.BoolFlag{Name: "write-forecasts", Value: true, Usage: "write <field>_forecast, _lower, _upper and _anomaly_score for every point", EnvVars: env("write-forecasts"), Category: "Forecast"},
		&cli.IntFlag{Name: "warm-up", Value: anomaly.DefaultConfig().WarmUp, Usage: "points a series must have before it can raise anomalies; a series sampled every 5 minutes or slower also waits for two days of its own time (see the README)", EnvVars: env("warm-up"), Category: "Anomaly"},
		// The consumer's moving-average flags: the same values make rules on
		// sma and ema test exactly the consumer's <field>_sma and _ema.
		&cli.IntFlag{Name: "sma-window", Value: 10, Usage: "points in the simple moving average threshold rules test as \"of: sma\", the consumer's <field>_sma (0: off)", EnvVars: env("sma-window"), Category: "Alerts"},
		&cli.Float64Flag{Name: "ema-alpha", Usage: "smoothing factor in (0, 1] of the exponential moving average threshold rules test as \"of: ema\", the consumer's <field>_ema (0: use --ema-span)", EnvVars: env("ema-alpha"), Category: "Alerts"},
		&cli.Float64Flag{Name: "ema-span", Value: 10, Usage: "EMA span N, alpha = 2/(N+1), when --ema-alpha is 0 (0: EMA off)", EnvVars: env("ema-span"), Category: "Alerts"},
		&cli.IntFlag{Name: "max-series", Value: 100000, Usage: "series-fields analyzed per partition at most", EnvVars: env("max-series")},
		&cli.DurationFlag{Name: "series-idle-timeout", Value: time.Hour, Usage: "forget a series without points for this long (unless an alert of it is firing)", EnvVars: env("series-idle-timeout")},
	}
	app.Flags = append(app.Flags, incidentFlags()...)
	app.Flags = append(app.Flags, kafkaio.TopicFlags()...)
	app.Flags = append(app.Flags, kafkaio.GroupFlags(kafkaio.DefaultAnalyzerGroup)...)
	app.Flags = append(app.Flags, kafkaio.Flags("metricpipe-analyzer")...)
	app.Flags = append(app.Flags, influx.Flags()...)
	app.Flags = append(app.Flags, service.Flags("127.0.0.1:9103")...)
	app.Commands = []*cli.Command{alertsCommand(), evalCommand(), rulesCommand(), backtestCommand(app.Flags)}
	app.Action = func(c *cli.Context) error {
		cfg, err := configFromCLI(c)
		if err := errors.Join(err, cfg.Validate()); err != nil {
			return err
		}
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		reload := make(chan struct{}, 1)
		go func() {
			for range hup {
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}()
		return run(c.Context, cfg, service.NewLogger(stderr, cfg.Service, "analyzer"), service.NewRegistry(), reload)
	}
	return app
}

// configFromCLI reads every flag; its error comes with the rest filled in,
// to be reported together with Validate's.
func configFromCLI(c *cli.Context) (config, error) {
	kc, kerr := kafkaio.ConfigFromCLI(c)
	ic, ierr := influx.ConfigFromCLI(c)
	a, aerr := analysisFromCLI(c)
	group := kafkaio.GroupConfig{
		Topic:        c.String("topic"),
		Group:        c.String("group"),
		BatchSize:    c.Int("batch-size"),
		BatchWait:    c.Duration("flush-interval"),
		DrainTimeout: c.Duration("drain-timeout"),
		Fetch:        kafkaio.FetchPolicyFromCLI(c),
		Checkpoints:  kafkaio.CheckpointsFromCLI(c),
		IdleAfter:    c.Duration("absence-check"),
	}
	return config{
		Service:           service.ConfigFromCLI(c),
		Kafka:             kc,
		Influx:            ic,
		Topic:             kafkaio.TopicSpecFromCLI(c, c.String("topic")),
		Alerts:            kafkaio.TopicSpecFromCLI(c, c.String("alert-topic")),
		DLQ:               kafkaio.TopicSpecFromCLI(c, c.String("dlq-topic")),
		Analysis:          a,
		RulesFile:         c.String("rules"),
		RulesPoll:         c.Duration("rules-poll"),
		AlertsMeasurement: c.String("alerts-measurement"),
		ActionsDir:        c.String("actions-dir"),
		Actions:           actionsFromCLI(c),
		ActionsTopic:      kafkaio.TopicSpecFromCLI(c, actionsTopic(c.String("actions-topic"), c.String("alert-topic"))),
		Group:             group,
		Incidents:         incidentsFromCLI(c, group),
	}, errors.Join(kerr, ierr, aerr)
}

// actionsFromCLI reads the executor's flags over its defaults.
func actionsFromCLI(c *cli.Context) action.Config {
	a := action.DefaultConfig()
	a.Workers, a.Queue = c.Int("actions-workers"), c.Int("actions-queue")
	return a
}

// analysisFromCLI reads the forecast, anomaly and alert settings.
func analysisFromCLI(c *cli.Context) (analysis, error) {
	fc := forecast.DefaultConfig()
	fc.Kind = forecast.Kind(c.String("model"))
	fc.Order = c.Int("ar-order")
	ac := anomaly.DefaultConfig()
	ac.WarmUp = c.Int("warm-up")
	a := analysis{
		Forecast:       fc,
		Anomaly:        ac,
		IntervalZ:      c.Float64("interval-z"),
		SMAWindow:      c.Int("sma-window"),
		Repeat:         c.Duration("repeat-interval"),
		MaxSeries:      c.Int("max-series"),
		IdleTimeout:    c.Duration("series-idle-timeout"),
		WriteForecasts: c.Bool("write-forecasts"),
	}
	var errs []error
	a.EMAAlpha = c.Float64("ema-alpha")
	if a.EMAAlpha == 0 && c.Float64("ema-span") != 0 {
		alpha, err := movavg.AlphaFromSpan(c.Float64("ema-span"))
		errs = append(errs, err)
		a.EMAAlpha = alpha
	}
	points, period, err := parseSeason(c.String("season"))
	if err != nil {
		errs = append(errs, err)
	}
	a.Forecast.Season, a.Season = points, period
	return a, errors.Join(errs...)
}
