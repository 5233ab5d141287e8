package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/producer/client"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/service"
)

// syntheticConfig configures `producer synthetic`.
type syntheticConfig struct {
	Delivery    deliveryConfig
	Series      int
	Rate        float64 // points/s over all series; 0: as fast as possible
	Count       int64   // points to send; 0: no limit
	Duration    time.Duration
	Interval    time.Duration // event-time step between two points of a series; 0: see pace
	Seed        uint64
	Measurement string
	AnomalyRate float64  // probability per point that an anomaly starts on its series
	GroundTruth string   // file the anomaly labels are written to, JSON lines ("": none)
	Shapes      []string // series i takes Shapes[i%len(Shapes)]; none: all wave
}

// shape returns the shape of series i.
func (c syntheticConfig) shape(i int) string {
	if len(c.Shapes) == 0 {
		return shapeWave
	}
	return c.Shapes[i%len(c.Shapes)]
}

// parseShapes splits the --shapes list; Validate checks the names.
func parseShapes(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	out := strings.Split(s, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

func (c syntheticConfig) Validate() error {
	errs := []error{c.Delivery.Validate()}
	if c.Series < 1 {
		errs = append(errs, fmt.Errorf("--series %d: want ≥ 1", c.Series))
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		errs = append(errs, fmt.Errorf("--rate %v: want a finite value ≥ 0", c.Rate))
	}
	if c.Count < 0 {
		errs = append(errs, fmt.Errorf("--count %d: want ≥ 0", c.Count))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("--duration %s: want ≥ 0", c.Duration))
	}
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("--interval %s: want > 0, or 0 to follow --rate", c.Interval))
	}
	if c.Measurement == "" {
		errs = append(errs, errors.New("--measurement is empty"))
	}
	if !(c.AnomalyRate >= 0 && c.AnomalyRate <= 1) {
		errs = append(errs, fmt.Errorf("--anomaly-rate %v: want a probability in [0, 1]", c.AnomalyRate))
	}
	for _, s := range c.Shapes {
		if !slices.Contains(shapes[:], s) {
			errs = append(errs, fmt.Errorf("--shapes %q: unknown shape %q, want a comma list of %s", strings.Join(c.Shapes, ","), s, strings.Join(shapes[:], ", ")))
		}
	}
	return errors.Join(errs...)
}

func syntheticCommand(stderr io.Writer) *cli.Command {
	env := service.EnvVars
	flags := []cli.Flag{
		&cli.IntFlag{Name: "series", Value: 10, Usage: "number of series", EnvVars: env("series")},
		&cli.Float64Flag{Name: "rate", Value: 100, Usage: "points per second over all series (0: as fast as possible)", EnvVars: env("rate")},
		&cli.Int64Flag{Name: "count", Usage: "stop after this many points (0: no limit)", EnvVars: env("count")},
		&cli.DurationFlag{Name: "duration", Usage: "stop after this long (0: no limit)", EnvVars: env("duration")},
		&cli.DurationFlag{Name: "interval", Usage: "event-time step between two points of one series (0: --series/--rate, so event time keeps pace with the clock; 1s when --rate is 0)", EnvVars: env("interval")},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed; the same seed gives the same values", EnvVars: env("seed")},
		&cli.StringFlag{Name: "measurement", Value: "synthetic", Usage: "measurement name of the points", EnvVars: env("measurement")},
		&cli.Float64Flag{Name: "anomaly-rate", Usage: "probability per point that an anomaly (spike, level_shift, drift, flat_line, dropout) starts on its series", EnvVars: env("anomaly-rate")},
		&cli.StringFlag{Name: "shapes", Value: shapeWave, Usage: "series shapes, taken in turn: wave (seasonal swing, trend, random walk, noise), bursty-counts (non-negative counts with recurring heavy-tailed bursts), flat-then-shift (long flat stretches, then lasting level shifts, labelled, at --anomaly-rate)", EnvVars: env("shapes")},
		&cli.StringFlag{Name: "ground-truth", Usage: "file to write the injected anomalies to, one JSON object per line (series, kind, start, end)", EnvVars: env("ground-truth")},
	}
	return &cli.Command{
		Name:  "synthetic",
		Usage: "generate synthetic series (seasonal waves, bursty counts, flat stretches with level shifts) with labelled anomalies",
		Flags: append(append(flags, topologyFlags()...), deliveryFlags()...),
		Action: func(c *cli.Context) error {
			d, derr := deliveryConfigFromCLI(c)
			cfg := syntheticConfig{
				Delivery:    d,
				Series:      c.Int("series"),
				Rate:        c.Float64("rate"),
				Count:       c.Int64("count"),
				Duration:    c.Duration("duration"),
				Interval:    c.Duration("interval"),
				Seed:        c.Uint64("seed"),
				Measurement: c.String("measurement"),
				AnomalyRate: c.Float64("anomaly-rate"),
				GroundTruth: c.String("ground-truth"),
				Shapes:      parseShapes(c.String("shapes")),
			}
			tcfg, terr := topologyConfigFromCLI(c)
			var topo *topology
			if tcfg.File != "" {
				var err error
				if topo, err = loadTopology(tcfg.File); err == nil {
					cfg.Series = topo.hosts()
				}
				terr = errors.Join(terr, err)
			}
			if err := errors.Join(derr, terr, cfg.Validate(), tcfg.Validate()); err != nil {
				return err
			}
			log := service.NewLogger(stderr, cfg.Delivery.Service, "producer")
			cfg.Interval = cfg.pace()
			if ahead := cfg.ahead(); ahead > 1 {
				log.Warn().Str("interval", cfg.Interval.String()).Float64("rate", cfg.Rate).Int("series", cfg.Series).
					Str("event_time_pace", fmt.Sprintf("%.3g× the clock", ahead)).
					Str("past_1h_ahead_after", (time.Duration(float64(time.Hour) / (ahead - 1))).Round(time.Second).String()).
					Msg("event time runs ahead of the clock: once it is further ahead than the consumer's --max-future, moving averages stop; leave --interval unset to follow --rate")
			} else if cfg.Rate == 0 {
				log.Warn().Str("interval", cfg.Interval.String()).
					Msg("--rate 0 sends as fast as possible: event time runs ahead of the clock as fast as points are sent")
			}
			var (
				gen   pointGenerator
				plain *generator
				topog *topologyGenerator
			)
			if topo != nil {
				topog = newTopologyGenerator(cfg, tcfg, topo)
				gen = topog
			} else {
				plain = newGenerator(cfg)
				gen = plain
			}
			var truth *groundTruth
			if cfg.GroundTruth != "" {
				var err error
				if truth, err = createGroundTruth(cfg.GroundTruth); err != nil {
					return err
				}
				if topog != nil {
					topog.onIncident = truth.addIncident
				} else {
					plain.onAnomaly = truth.add
				}
			}
			err := runSource(c.Context, cfg.Delivery, log, "synthetic", func(ctx context.Context, out sink, _ *prometheus.Registry, _ func(context.Context) error) error {
				return generate(ctx, cfg, gen, out)
			})
			if topog != nil {
				topog.finish() // the faults under way, truncated
			}
			if truth != nil {
				err = errors.Join(err, truth.close())
				log.Info().Str("file", cfg.GroundTruth).Int("anomalies", truth.n).Msg("ground truth written")
			}
			return err
		},
	}
}

// pace returns the event-time step between two points of a series:
// Interval when set; else the wall time between them at Rate, so event time
// keeps pace with the clock; 1s when points go as fast as possible.
func (c syntheticConfig) pace() time.Duration {
	switch {
	case c.Interval > 0:
		return c.Interval
	case c.Rate > 0:
		return max(time.Nanosecond, time.Duration(float64(c.Series)/c.Rate*float64(time.Second)))
	}
	return time.Second
}

// ahead returns how many times faster than the clock event time runs at
// Rate (0 when Rate is 0: as fast as points are sent).
func (c syntheticConfig) ahead() float64 {
	if c.Rate == 0 {
		return 0
	}
	return float64(c.pace()) / (float64(c.Series) / c.Rate * float64(time.Second))
}

// pointGenerator fills p with the next point, reusing p's slices: the
// synthetic series or a topology's hosts.
type pointGenerator interface {
	next(p *point.Point)
}

// generate sends generated points until the count or duration is reached
// or ctx is done.
func generate(ctx context.Context, cfg syntheticConfig, gen pointGenerator, out sink) error {
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var (
		sent    int64
		pt      point.Point
		started = time.Now()
	)
	for ctx.Err() == nil && (cfg.Count == 0 || sent < cfg.Count) {
		n := int64(1000)
		if cfg.Rate > 0 {
			// Bursts of at most 100 ms worth of points, each sent when its
			// first point is due: the schedule, not per-burst sleeps, keeps
			// the rate however long the sends take.
			n = max(1, int64(cfg.Rate/10))
			due := started.Add(time.Duration(float64(sent) / cfg.Rate * float64(time.Second)))
			if retry.Sleep(ctx, time.Until(due)) != nil {
				break
			}
		}
		if cfg.Count > 0 {
			n = min(n, cfg.Count-sent)
		}
		for range n {
			gen.next(&pt)
			if err := out.Send(ctx, pt); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, client.ErrBufferFull) {
					continue // counted by the producer; --drop-when-full asked for it
				}
				return err
			}
			sent++
		}
	}
	return nil
}

// groundTruth writes anomaly labels as JSON lines.
type groundTruth struct {
	f   *os.File
	w   *bufio.Writer
	n   int
	err error
}

func createGroundTruth(path string) (*groundTruth, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--ground-truth: %w", err)
	}
	return &groundTruth{f: f, w: bufio.NewWriter(f)}, nil
}

func (g *groundTruth) add(l label) {
	b, err := json.Marshal(l)
	if err == nil {
		b = append(b, '\n')
		_, err = g.w.Write(b)
	}
	g.err = errors.Join(g.err, err)
	g.n++
}

func (g *groundTruth) close() error {
	err := errors.Join(g.err, g.w.Flush(), g.f.Close())
	if err != nil {
		return fmt.Errorf("write --ground-truth %s: %w", g.f.Name(), err)
	}
	return nil
}
