// Command producer pushes metric points to metricpipe's Kafka topic.
package main

import (
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/service"
)

func main() {
	os.Exit(service.Main(newApp(os.Stdout, os.Stderr), os.Args))
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := service.NewApp("producer", "push metric points to metricpipe's Kafka topic", stdout, stderr)
	app.Commands = []*cli.Command{syntheticCommand(stderr), hostCommand(stderr), replayCommand(stderr), httpCommand(stderr)}
	return app
}
