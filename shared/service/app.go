package service

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// NewApp returns a cli.App with metricpipe's common behaviour: the version
// flag, output to the given writers (so tests can run it), and errors printed
// once by Main rather than by urfave/cli.
func NewApp(name, usage string, stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:                 name,
		Usage:                usage,
		Version:              Version(),
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {},
	}
}

// Main runs app with args until it returns or SIGINT/SIGTERM arrives; the
// signal cancels the context handed to the app so the service can drain,
// flush and commit. It adds the hidden `options` command (see
// ListOptions). It returns the process exit code.
func Main(app *cli.App, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if app.Command("options") == nil {
		app.Commands = append(app.Commands, optionsCommand())
	}
	app.OnUsageError = usageError(app.Name)
	onUsageErrors(app.Commands, app.Name)
	if err := app.RunContext(ctx, args); err != nil {
		fmt.Fprintf(app.ErrWriter, "%s: %v\n", app.Name, err)
		return 1
	}
	return 0
}

// usageError turns a usage error (an unknown flag, a bad value) into one
// line that says where to look, instead of the whole help text, which
// buries the error.
func usageError(command string) cli.OnUsageErrorFunc {
	return func(_ *cli.Context, err error, _ bool) error {
		return fmt.Errorf("%w (see %s --help)", err, command)
	}
}

func onUsageErrors(cmds []*cli.Command, parent string) {
	for _, c := range cmds {
		name := parent + " " + c.Name
		if c.OnUsageError == nil {
			c.OnUsageError = usageError(name)
		}
		onUsageErrors(c.Subcommands, name)
	}
}
