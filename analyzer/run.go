package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/service"
)

// config is the analyzer's whole configuration.
type config struct {
	Service         service.Config
	Kafka           kafkaio.Config
	Topic           kafkaio.TopicSpec
	Alerts          kafkaio.TopicSpec
	Group           kafkaio.GroupConfig
	SummaryInterval time.Duration
	MaxSeries       int
}

func (c config) Validate() error {
	errs := []error{c.Service.Validate(), c.Kafka.Validate(), c.Topic.Validate(), c.Alerts.Validate(), c.Group.Validate()}
	if c.SummaryInterval <= 0 {
		errs = append(errs, fmt.Errorf("--summary-interval %s: want > 0", c.SummaryInterval))
	}
	if c.MaxSeries < 1 {
		errs = append(errs, fmt.Errorf("--max-series %d: want ≥ 1", c.MaxSeries))
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, cfg config, log zerolog.Logger) error {
	reg := service.NewRegistry()
	admin, err := kafkaio.NewAdmin(cfg.Kafka)
	if err != nil {
		return err
	}
	t := newTally(cfg.MaxSeries, reg)
	checks := []service.Check{{Name: "kafka", Probe: admin.Ping}}
	return service.Run(ctx, log, cfg.Service.HTTPAddr, reg, checks, func(ctx context.Context) error {
		if err := admin.EnsureTopics(ctx, cfg.Topic, cfg.Alerts); err != nil {
			return err
		}
		gc, err := kafkaio.NewGroupConsumer(cfg.Kafka, cfg.Group, log, reg)
		if err != nil {
			return err
		}
		defer gc.Close()
		log.Info().Str("topic", cfg.Group.Topic).Str("group", cfg.Group.Group).Msg("analyzing")
		done := make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(cfg.SummaryInterval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					t.logSummary(log)
				}
			}
		}()
		tallyBatch := kafkaio.HandlerFunc(func(_ context.Context, batch []kafka.Message) error {
			t.add(batch, log)
			return nil
		})
		err = gc.Run(ctx, func(int) (kafkaio.Handler, error) { return tallyBatch, nil })
		<-done
		t.logSummary(log)
		return err
	})
}

// tally counts what flows through the analyzer: messages, points, series and
// undecodable messages (which the consumer dead-letters; the analyzer only
// counts them, so each bad message is dead-lettered once).
type tally struct {
	dec       point.Decoder
	maxSeries int

	mu        sync.Mutex
	messages  int64
	points    int64
	bad       int64
	series    map[string]struct{}
	untracked int64
	pts       []point.Point
	key       []byte

	pointsTotal prometheus.Counter
	badTotal    prometheus.Counter
	seriesGauge prometheus.Gauge
}

func newTally(maxSeries int, reg prometheus.Registerer) *tally {
	t := &tally{
		maxSeries:   maxSeries,
		series:      make(map[string]struct{}),
		pointsTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_analyzer_points_total", Help: "Points analyzed."}),
		badTotal:    prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_analyzer_undecodable_messages_total", Help: "Messages that could not be decoded (dead-lettered by the consumer)."}),
		seriesGauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "metricpipe_analyzer_series_tracked", Help: "Series currently tracked."}),
	}
	reg.MustRegister(t.pointsTotal, t.badTotal, t.seriesGauge)
	return t
}

func (t *tally) add(batch []kafka.Message, log zerolog.Logger) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range batch {
		m := &batch[i]
		t.messages++
		pts, err := t.dec.Decode(t.pts[:0], m.Value, kafkaio.HeaderValue(m, kafkaio.HeaderContentType))
		if err != nil {
			t.bad++
			t.badTotal.Inc()
			log.Debug().Err(err).Int("partition", m.Partition).Int64("offset", m.Offset).Msg("undecodable message skipped")
			continue
		}
		t.pts = pts
		t.points += int64(len(pts))
		t.pointsTotal.Add(float64(len(pts)))
		for j := range pts {
			t.key = point.AppendSeriesKey(t.key[:0], &pts[j])
			if _, ok := t.series[string(t.key)]; ok {
				continue
			}
			if len(t.series) >= t.maxSeries {
				t.untracked++
				continue
			}
			t.series[string(t.key)] = struct{}{}
		}
	}
	t.seriesGauge.Set(float64(len(t.series)))
}

func (t *tally) logSummary(log zerolog.Logger) {
	t.mu.Lock()
	defer t.mu.Unlock()
	log.Info().Int64("messages", t.messages).Int64("points", t.points).Int("series", len(t.series)).
		Int64("untracked_points", t.untracked).Int64("undecodable", t.bad).Msg("summary")
}
