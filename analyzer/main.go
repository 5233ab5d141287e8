// Command analyzer reads metric points from Kafka in its own consumer group,
// in parallel with the consumer, to forecast series and raise alerts.
package main

import (
	"errors"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/service"
)

func main() {
	os.Exit(service.Main(newApp(os.Stdout, os.Stderr), os.Args))
}

func newApp(stdout, stderr io.Writer) *cli.App {
	env := service.EnvVars
	app := service.NewApp("analyzer", "analyze metric points from Kafka: forecasts, anomalies, alerts", stdout, stderr)
	app.Flags = []cli.Flag{
		&cli.StringFlag{Name: "alert-topic", Value: kafkaio.DefaultAlertTopic, Usage: "topic alerts are published to", EnvVars: env("alert-topic"), Category: "Kafka"},
		&cli.IntFlag{Name: "batch-size", Value: 5000, Usage: "messages handled and committed together at most", EnvVars: env("batch-size")},
		&cli.DurationFlag{Name: "flush-interval", Value: time.Second, Usage: "longest a fetched message waits for its batch", EnvVars: env("flush-interval")},
		&cli.DurationFlag{Name: "summary-interval", Value: 10 * time.Second, Usage: "how often the traffic summary is logged", EnvVars: env("summary-interval")},
		&cli.IntFlag{Name: "max-series", Value: 100000, Usage: "series tracked at most; further series are counted but not tracked", EnvVars: env("max-series")},
	}
	app.Flags = append(app.Flags, kafkaio.TopicFlags()...)
	app.Flags = append(app.Flags, kafkaio.GroupFlags(kafkaio.DefaultAnalyzerGroup)...)
	app.Flags = append(app.Flags, kafkaio.Flags("metricpipe-analyzer")...)
	app.Flags = append(app.Flags, service.Flags("127.0.0.1:9103")...)
	app.Action = func(c *cli.Context) error {
		kc, kerr := kafkaio.ConfigFromCLI(c)
		cfg := config{
			Service:         service.ConfigFromCLI(c),
			Kafka:           kc,
			Topic:           kafkaio.TopicSpecFromCLI(c, c.String("topic")),
			Alerts:          kafkaio.TopicSpecFromCLI(c, c.String("alert-topic")),
			SummaryInterval: c.Duration("summary-interval"),
			MaxSeries:       c.Int("max-series"),
			Group: kafkaio.GroupConfig{
				Topic:        c.String("topic"),
				Group:        c.String("group"),
				BatchSize:    c.Int("batch-size"),
				BatchWait:    c.Duration("flush-interval"),
				DrainTimeout: c.Duration("drain-timeout"),
			},
		}
		if err := errors.Join(kerr, cfg.Validate()); err != nil {
			return err
		}
		return run(c.Context, cfg, service.NewLogger(stderr, cfg.Service, "analyzer"))
	}
	return app
}
