// Command consumer reads metric points from Kafka as a consumer group and
// writes them to InfluxDB, committing offsets only after InfluxDB accepted
// the points (or the dead-letter topic took what could not be written).
package main

import (
	"errors"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/service"
)

func main() {
	os.Exit(service.Main(newApp(os.Stdout, os.Stderr), os.Args))
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := service.NewApp("consumer", "write metric points from Kafka to InfluxDB", stdout, stderr)
	app.Flags = append(app.Flags,
		kafkaio.DeadLetterFlag(),
	)
	app.Flags = append(app.Flags, kafkaio.TopicFlags()...)
	app.Flags = append(app.Flags, kafkaio.GroupFlags(kafkaio.DefaultConsumerGroup)...)
	app.Flags = append(app.Flags, kafkaio.Flags("metricpipe-consumer")...)
	app.Flags = append(app.Flags, stageFlags()...)
	app.Flags = append(app.Flags, influx.Flags()...)
	app.Flags = append(app.Flags, service.Flags("127.0.0.1:9102")...)
	app.Action = func(c *cli.Context) error {
		cfg, err := configFromCLI(c)
		if err := errors.Join(err, cfg.Validate()); err != nil {
			return err
		}
		return run(c.Context, cfg, service.NewLogger(stderr, cfg.Service, "consumer"), service.NewRegistry())
	}
	return app
}

// configFromCLI reads every flag; its error (unreadable secret files,
// unparsable values) comes with the rest filled in, to be reported together
// with Validate's.
func configFromCLI(c *cli.Context) (config, error) {
	kc, kerr := kafkaio.ConfigFromCLI(c)
	ic, ierr := influx.ConfigFromCLI(c)
	stage, serr := stageConfigFromCLI(c)
	return config{
		Stage:     stage,
		MaxFuture: c.Duration("max-future"),
		Service:   service.ConfigFromCLI(c),
		Kafka:     kc,
		Influx:    ic,
		Topic:     kafkaio.TopicSpecFromCLI(c, c.String("topic")),
		DLQ:       kafkaio.TopicSpecFromCLI(c, c.String("dlq-topic")),
		Group: kafkaio.GroupConfig{
			Topic:        c.String("topic"),
			Group:        c.String("group"),
			BatchSize:    ic.BatchSize,
			BatchWait:    ic.FlushInterval,
			DrainTimeout: c.Duration("drain-timeout"),
			Fetch:        kafkaio.FetchPolicyFromCLI(c),
			Checkpoints:  kafkaio.CheckpointsFromCLI(c),
			IdleAfter:    c.Duration("idle-flush"),
			WarmUp:       c.Duration("state-replay"),
		},
	}, errors.Join(kerr, ierr, serr)
}
