// Package influx writes metricpipe points to InfluxDB through the v2 write
// API, which both InfluxDB 2.x (org, bucket, token) and 1.8+ (bucket "db/rp",
// empty org, token "user:password" or empty) serve, so one configuration works
// against either.
package influx

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/service"
)

// Config is where and how to write.
type Config struct {
	URL           string
	Token         service.Secret
	Org           string // empty for InfluxDB 1.8
	Bucket        string // "bucket" on 2.x; "database/retention-policy" or "database" on 1.8
	BatchSize     int    // points per write request at most
	FlushInterval time.Duration
	Timeout       time.Duration // one write request
}

// Validate reports every invalid setting, each naming its flag.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--influx-url %q: want http(s)://host:port", c.URL))
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("--influx-bucket is empty (InfluxDB 1.8: database/retention-policy)"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("--influx-batch-size %d: want ≥ 1", c.BatchSize))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("--influx-flush-interval %s: want > 0", c.FlushInterval))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--influx-timeout %s: want > 0", c.Timeout))
	}
	return errors.Join(errs...)
}

// Flags returns the InfluxDB flags shared by the services that write.
func Flags() []cli.Flag {
	const cat = "InfluxDB"
	env := service.EnvVars
	return []cli.Flag{
		&cli.StringFlag{Name: "influx-url", Value: "http://127.0.0.1:8086", Usage: "InfluxDB base URL", EnvVars: env("influx-url"), Category: cat},
		&cli.StringFlag{Name: "influx-token", Usage: "API token (2.x) or user:password (1.8 with auth); prefer the environment variable or the file", EnvVars: env("influx-token"), Category: cat},
		&cli.StringFlag{Name: "influx-token-file", Usage: "file holding the token", EnvVars: env("influx-token-file"), Category: cat},
		&cli.StringFlag{Name: "influx-org", Usage: "organization (2.x); leave empty for 1.8", EnvVars: env("influx-org"), Category: cat},
		&cli.StringFlag{Name: "influx-bucket", Value: "metricpipe", Usage: "bucket (2.x) or database/retention-policy (1.8)", EnvVars: env("influx-bucket"), Category: cat},
		&cli.IntFlag{Name: "influx-batch-size", Value: 5000, Usage: "points per write request at most", EnvVars: env("influx-batch-size"), Category: cat},
		&cli.DurationFlag{Name: "influx-flush-interval", Value: time.Second, Usage: "longest a point waits before its batch is written", EnvVars: env("influx-flush-interval"), Category: cat},
		&cli.DurationFlag{Name: "influx-timeout", Value: 30 * time.Second, Usage: "timeout of one write request", EnvVars: env("influx-timeout"), Category: cat},
	}
}

// ConfigFromCLI reads the flags of Flags. Its error, when the token file
// cannot be read, comes with the rest of the Config filled in, so the caller
// can report it together with Validate's.
func ConfigFromCLI(c *cli.Context) (Config, error) {
	tok, err := service.LoadSecret("influx-token", c.String("influx-token"), c.String("influx-token-file"))
	return Config{
		URL:           c.String("influx-url"),
		Token:         tok,
		Org:           c.String("influx-org"),
		Bucket:        c.String("influx-bucket"),
		BatchSize:     c.Int("influx-batch-size"),
		FlushInterval: c.Duration("influx-flush-interval"),
		Timeout:       c.Duration("influx-timeout"),
	}, err
}
