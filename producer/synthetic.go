package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
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
	Interval    time.Duration // event-time step between two points of a series
	Seed        uint64
	Measurement string
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
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("--interval %s: want > 0", c.Interval))
	}
	if c.Measurement == "" {
		errs = append(errs, errors.New("--measurement is empty"))
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
		&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "event-time step between two points of one series", EnvVars: env("interval")},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed; the same seed gives the same values", EnvVars: env("seed")},
		&cli.StringFlag{Name: "measurement", Value: "synthetic", Usage: "measurement name of the points", EnvVars: env("measurement")},
	}
	return &cli.Command{
		Name:  "synthetic",
		Usage: "generate synthetic series (seasonality, trend, noise, random walk)",
		Flags: append(flags, deliveryFlags()...),
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
			}
			if err := errors.Join(derr, cfg.Validate()); err != nil {
				return err
			}
			log := service.NewLogger(stderr, cfg.Delivery.Service, "producer")
			gen := newGenerator(cfg)
			return runSource(c.Context, cfg.Delivery, log, "synthetic", func(ctx context.Context, out sink, _ *prometheus.Registry, _ func(context.Context) error) error {
				return generate(ctx, cfg, gen, out)
			})
		},
	}
}

// generate sends generated points until the count or duration is reached
// or ctx is done.
func generate(ctx context.Context, cfg syntheticConfig, gen *generator, out sink) error {
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

// generator produces the synthetic series: each a level with a daily-like
// seasonal swing, a slow trend, a random walk and noise, reproducible from the
// seed. Series take turns, so every series advances at the same pace.
type generator struct {
	rng         *rand.Rand
	measurement string
	interval    time.Duration
	start       int64
	series      []seriesState
	turn        int
}

type seriesState struct {
	tags               []point.Tag
	level, amp, period float64 // period in points
	trend, walk, noise float64
	step               int64
	fields             [1]point.Field
}

func newGenerator(cfg syntheticConfig) *generator {
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	g := &generator{
		rng:         rng,
		measurement: cfg.Measurement,
		interval:    cfg.Interval,
		start:       time.Now().Truncate(cfg.Interval).UnixNano(),
		series:      make([]seriesState, cfg.Series),
	}
	for i := range g.series {
		s := &g.series[i]
		s.tags = []point.Tag{{Key: "host", Value: "host-" + strconv.Itoa(i%100)}, {Key: "series", Value: strconv.Itoa(i)}}
		s.level = 10 + rng.Float64()*90
		s.amp = s.level * (0.05 + rng.Float64()*0.25)
		s.period = float64(24*time.Hour/cfg.Interval) / (1 + float64(rng.IntN(24))) // a day, or a few hours
		s.trend = (rng.Float64() - 0.5) * s.level * 1e-4
		s.noise = s.level * 0.01
	}
	return g
}

// next fills p with the next point; p's slices are reused between calls.
func (g *generator) next(p *point.Point) {
	s := &g.series[g.turn]
	g.turn = (g.turn + 1) % len(g.series)
	x := float64(s.step)
	s.walk += g.rng.NormFloat64() * s.noise * 0.3
	v := s.level + s.amp*math.Sin(2*math.Pi*x/s.period) + s.trend*x + s.walk + g.rng.NormFloat64()*s.noise
	s.fields[0] = point.Field{Key: "value", Value: v}
	p.Measurement = g.measurement
	p.Tags = s.tags
	p.Fields = s.fields[:]
	p.Time = g.start + s.step*int64(g.interval)
	s.step++
}
