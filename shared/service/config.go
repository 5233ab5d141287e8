package service

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

// Config holds the settings every service shares.
type Config struct {
	LogFormat string // "json" or "console"
	LogLevel  string // a zerolog level name
	HTTPAddr  string // the one listener: /healthz, /readyz, /metrics
}

// Flags returns the shared flags; defaultHTTPAddr differs per service so the
// three can run side by side on one host.
func Flags(defaultHTTPAddr string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-format", Value: "json", Usage: "log format: json or console", EnvVars: EnvVars("log-format"), Category: "Service"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "log level: trace, debug, info, warn, error", EnvVars: EnvVars("log-level"), Category: "Service"},
		&cli.StringFlag{Name: "http-addr", Value: defaultHTTPAddr, Usage: "listen address for /healthz, /readyz and /metrics", EnvVars: EnvVars("http-addr"), Category: "Service"},
	}
}

// ConfigFromCLI reads the flags of Flags.
func ConfigFromCLI(c *cli.Context) Config {
	return Config{LogFormat: c.String("log-format"), LogLevel: c.String("log-level"), HTTPAddr: c.String("http-addr")}
}

// Validate reports every invalid setting, each naming its flag.
func (c Config) Validate() error {
	var errs []error
	if c.LogFormat != "json" && c.LogFormat != "console" {
		errs = append(errs, fmt.Errorf("--log-format %q: want json or console", c.LogFormat))
	}
	if _, err := zerolog.ParseLevel(c.LogLevel); err != nil || c.LogLevel == "" {
		errs = append(errs, fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", c.LogLevel))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("--http-addr %q: %w", c.HTTPAddr, err))
	}
	return errors.Join(errs...)
}

// NewLogger builds the service's logger writing to w; console format is for
// people at a terminal, json for log shippers.
func NewLogger(w io.Writer, c Config, service string) zerolog.Logger {
	if c.LogFormat == "console" {
		noColor := true
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				noColor = false
			}
		}
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: noColor}
	}
	level, err := zerolog.ParseLevel(c.LogLevel)
	if err != nil || c.LogLevel == "" {
		level = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(level).With().Timestamp().Str("service", service).Logger()
}
