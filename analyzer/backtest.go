package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/anomaly"
	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/nab"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/rules"
	"github.com/metricpipe/metricpipe/shared/service"
)

const (
	// backtestFlushEvery is how many messages a partition handles between
	// two writes with --write: the live analyzer's default batch size.
	backtestFlushEvery = 5000
	// backtestBadShown bounds the undecodable messages reported one by one
	// per partition; the summary counts them all.
	backtestBadShown = 10
)

// backtestInherited reports whether a flag of the analyzer is also one of
// backtest's: the settings that change what the engine derives, the Kafka
// connection and topics, and what --write writes to. Taking them from the
// analyzer's own list, by name, keeps their names, defaults and meaning
// one definition.
func backtestInherited(name string) bool {
	switch name {
	case "model", "season", "ar-order", "interval-z", "write-forecasts", "warm-up", "sma-window", "ema-alpha", "ema-span",
		"max-series", "series-idle-timeout", "repeat-interval",
		"topic", "partitions", "replication-factor", "isolation-level", "alert-topic", "dlq-topic", "alerts-measurement",
		"log-format", "log-level":
		return true
	}
	return strings.HasPrefix(name, "kafka-") || strings.HasPrefix(name, "influx-")
}

// backtestCommand returns `analyzer backtest`; parent is the analyzer's own
// flag list, from which it takes the flags backtestInherited names.
func backtestCommand(parent []cli.Flag) *cli.Command {
	env := service.EnvVars
	flags := []cli.Flag{
		&cli.StringFlag{Name: "rules", Usage: "YAML file of the alert rules to test (required)", EnvVars: env("rules"), Category: "Backtest"},
		&cli.StringFlag{Name: "from", Usage: "start of the span, by Kafka message timestamp: RFC 3339 (2026-11-26T03:00:00Z), \"2026-11-26 03:00:00\" (UTC), or a duration such as 6h (that long ago) (required)", EnvVars: env("from"), Category: "Backtest"},
		&cli.StringFlag{Name: "to", Usage: "end of the span, excluded, in the forms of --from (empty: the end of every partition when the command starts)", EnvVars: env("to"), Category: "Backtest"},
		&cli.BoolFlag{Name: "write", Usage: "publish the alert events to --alert-topic and write forecasts (unless --write-forecasts=false) and alerts to InfluxDB as the analyzer does (default: write nothing)", EnvVars: env("write"), Category: "Backtest"},
		&cli.BoolFlag{Name: "json", Usage: "print each alert event's JSON as the alert topic carries it, one per line, then a summary object", EnvVars: env("json"), Category: "Backtest"},
		&cli.StringFlag{Name: "labels", Usage: "anomaly windows by series key (NAB combined_windows.json format): also print precision, recall and NAB scores", EnvVars: env("labels"), Category: "Backtest"},
	}
	for _, f := range parent {
		if backtestInherited(f.Names()[0]) {
			flags = append(flags, f)
		}
	}
	return &cli.Command{
		Name:  "backtest",
		Usage: "replay a span of the raw topic through the analyzer and print the alerts its rules would have raised",
		Description: `Reads every partition of --topic from the first message whose Kafka timestamp is
at or after --from up to the first one at or after --to (or the end when the
command started), without a consumer group: nothing is committed. Messages are
decoded as the analyzer decodes them (undecodable ones are counted, reported on
stderr and skipped) and go, in offset order, through one analyzer engine per
partition with the rules of --rules and the analysis flags, exactly as the live
analyzer runs them, except for the clock: the engine's "now", which only
absence rules and series expiry read, is the partition's newest point time so
far (event time), and the absence check runs every second of it and once at
the end of the span (at --to, or at the newest point when --to is empty or in
the future). Every series starts cold at --from: warm-up and forecasts begin
there, as they would for an analyzer started at --from.

The span is chosen by Kafka message timestamps (the producer's send time),
the only time Kafka indexes; the points' own times are not filtered.

It prints the alert events (time, rule, severity, state, series, value,
expected) and per-rule counts; --json prints each event as the alert topic
carries it, then {"summary": {...}}. Without --write it writes nothing.

--labels FILE (JSON: {"<series key>": [[start, end], ...]}, times in RFC 3339
or NAB's "2006-01-02 15:04:05", UTC) scores the firing events of the listed
series: a window that holds a firing event is a true positive (its first event
only; later ones in it count as neither), a firing event outside every window a
false positive; precision = TP/(TP+FP), recall = TP/windows. Only windows that
hold at least one point of the span count. The NAB scores take the points
backtest saw of each listed series as its rows, the windows as the rows they
span, and a firing event of an anomaly rule as a detection on the row of its
event time; NAB's rules then apply as in "analyzer eval" (the first 15% of
each series' rows are probationary).

The flags shared with the analyzer may also be given before "backtest".`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("backtest takes no arguments, got %q", c.Args().Slice())
			}
			if err := inheritFlags(c, flags); err != nil {
				return err
			}
			now := time.Now()
			cfg, err := backtestConfigFromCLI(c, now)
			if err := errors.Join(err, cfg.Validate()); err != nil {
				return err
			}
			log := service.NewLogger(c.App.ErrWriter, service.ConfigFromCLI(c), "analyzer")
			return runBacktest(c.Context, cfg, c.App.Writer, c.App.ErrWriter, log, now)
		},
	}
}

// backtestConfig is the configuration of `analyzer backtest`.
type backtestConfig struct {
	Kafka     kafkaio.Config
	Influx    influx.Config // with Write only
	Topic     string
	Alerts    kafkaio.TopicSpec // with Write only
	DLQ       kafkaio.TopicSpec // with Write only: what InfluxDB refuses
	Isolation string            // --isolation-level
	Analysis  analysis
	RulesFile string
	// From and To bound the span by message timestamp, To excluded; a zero
	// To is the partitions' ends at the start.
	From, To          time.Time
	Write, JSON       bool
	LabelsFile        string
	AlertsMeasurement string
}

// backtestConfigFromCLI reads the flags; now resolves durations in --from
// and --to. Its error comes with the rest filled in.
func backtestConfigFromCLI(c *cli.Context, now time.Time) (backtestConfig, error) {
	kc, kerr := kafkaio.ConfigFromCLI(c)
	a, aerr := analysisFromCLI(c)
	cfg := backtestConfig{
		Kafka: kc, Topic: c.String("topic"),
		Alerts:    kafkaio.TopicSpecFromCLI(c, c.String("alert-topic")),
		DLQ:       kafkaio.TopicSpecFromCLI(c, c.String("dlq-topic")),
		Isolation: c.String("isolation-level"),
		Analysis:  a, RulesFile: c.String("rules"),
		Write: c.Bool("write"), JSON: c.Bool("json"), LabelsFile: c.String("labels"),
		AlertsMeasurement: c.String("alerts-measurement"),
	}
	errs := []error{kerr, aerr}
	if cfg.Write {
		ic, err := influx.ConfigFromCLI(c)
		cfg.Influx = ic
		errs = append(errs, err)
	}
	var err error
	if cfg.From, err = parseBacktestTime("--from", c.String("from"), now); err != nil {
		errs = append(errs, err)
	}
	if c.String("to") != "" {
		if cfg.To, err = parseBacktestTime("--to", c.String("to"), now); err != nil {
			errs = append(errs, err)
		}
	}
	return cfg, errors.Join(errs...)
}

// Validate reports every invalid setting, each naming its flag.
func (c backtestConfig) Validate() error {
	errs := []error{c.Kafka.Validate(), c.Analysis.Validate()}
	if c.Topic == "" {
		errs = append(errs, errors.New("--topic: empty"))
	}
	if c.RulesFile == "" {
		errs = append(errs, errors.New("--rules is required"))
	}
	if c.From.IsZero() {
		errs = append(errs, errors.New("--from is required"))
	}
	if !c.To.IsZero() && !c.To.After(c.From) {
		errs = append(errs, fmt.Errorf("--to %s: want after --from %s", c.To.Format(time.RFC3339Nano), c.From.Format(time.RFC3339Nano)))
	}
	if c.Isolation != kafkaio.ReadCommitted && c.Isolation != kafkaio.ReadUncommitted {
		errs = append(errs, fmt.Errorf("--isolation-level %q: want %s or %s", c.Isolation, kafkaio.ReadCommitted, kafkaio.ReadUncommitted))
	}
	if c.Write {
		errs = append(errs, c.Influx.Validate(), c.Alerts.Validate(), c.DLQ.Validate())
		if c.AlertsMeasurement == "" {
			errs = append(errs, errors.New("--alerts-measurement is empty"))
		}
	}
	return errors.Join(errs...)
}

// parseBacktestTime reads a time flag: RFC 3339, NAB's layout or a date
// (both UTC), or a positive duration before now. Empty is the zero time.
func parseBacktestTime(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, nab.TimeLayout, "2006-01-02T15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time (2026-11-26T03:00:00Z), \"2026-11-26 03:00:00\" (UTC) or a positive duration such as 6h", flag, s)
}

// backtestSpan maps a partition's offsets for the span's bounds to the
// offsets to read, [Start, End): startAt is the offset Kafka found for
// --from, endAt the one for --to (both -1 when no message is that recent;
// endAt also -1 without --to), end the partition's end. A span whose start
// is at or past its end is empty.
func backtestSpan(partition int, startAt, endAt, end int64) tailSpan {
	stop := end
	if endAt >= 0 {
		stop = min(endAt, end)
	}
	start := startAt
	if start < 0 || start > stop {
		start = stop
	}
	return tailSpan{Partition: partition, Start: start, End: stop}
}

// backtestSpans lists the topic's partitions with the offsets of the span:
// Kafka's offset-for-time lookup (ListOffsets with a timestamp) for from and
// to, the high watermark at the start for the end.
func backtestSpans(ctx context.Context, client *kafka.Client, topic string, from, to time.Time) ([]tailSpan, error) {
	ends, err := tailSpans(ctx, client, topic, tailFrom{}, from)
	if err != nil {
		return nil, err
	}
	parts := make([]int, len(ends))
	for i, s := range ends {
		parts[i] = s.Partition
	}
	starts, err := tailListOffsets(ctx, client, topic, parts, from.UnixMilli())
	if err != nil {
		return nil, err
	}
	stops := map[int]int64{}
	if !to.IsZero() {
		if stops, err = tailListOffsets(ctx, client, topic, parts, to.UnixMilli()); err != nil {
			return nil, err
		}
	}
	spans := make([]tailSpan, len(ends))
	for i, s := range ends {
		stop, ok := stops[s.Partition]
		if !ok {
			stop = -1
		}
		spans[i] = backtestSpan(s.Partition, starts[s.Partition], stop, s.End)
	}
	return spans, nil
}

// badMessage is an undecodable message, reported and skipped.
type badMessage struct {
	Partition int
	Offset    int64
	Err       error
}

// partitionRun is what backtesting one partition found.
type partitionRun struct {
	Span                          tailSpan
	Messages, Points, Undecodable int64
	Bad                           []badMessage // the first backtestBadShown
	Events                        []alert.Event
	Seen                          map[string]*nab.Series // points of labelled series, by series key
}

// runBacktest backtests the span of cfg and prints the report to stdout,
// undecodable messages to stderr. now bounds the final absence check.
func runBacktest(ctx context.Context, cfg backtestConfig, stdout, stderr io.Writer, log zerolog.Logger, now time.Time) error {
	set, err := rules.Load(cfg.RulesFile)
	if err != nil {
		return err
	}
	params, err := anomaly.NewParams(cfg.Analysis.Anomaly)
	if err != nil {
		return err
	}
	var labels map[string][]labelWindow
	if cfg.LabelsFile != "" {
		if labels, err = loadBacktestLabels(cfg.LabelsFile); err != nil {
			return err
		}
	}
	client, dialer, closeIdle, err := partitionClient(cfg.Kafka)
	if err != nil {
		return err
	}
	defer closeIdle()
	spans, err := backtestSpans(ctx, client, cfg.Topic, cfg.From, cfg.To)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	out := &output{metrics: newMetrics(reg), backoff: retry.DefaultBackoff(), measurement: cfg.AlertsMeasurement, log: log,
		hotLog: log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Second})}
	if cfg.Write {
		closeAll, err := openBacktestOutput(ctx, cfg, out, log, reg)
		if err != nil {
			return err
		}
		defer closeAll()
	}
	book := &ruleBook{set: set, gen: 1}
	var current atomic.Pointer[ruleBook]
	current.Store(book)
	// The final absence check: at --to, unless it lies ahead of now.
	end := int64(0)
	if !cfg.To.IsZero() && !cfg.To.After(now) {
		end = cfg.To.UnixNano()
	}
	isolation := kafka.ReadCommitted
	if cfg.Isolation == kafkaio.ReadUncommitted {
		isolation = kafka.ReadUncommitted
	}
	runs := make([]partitionRun, len(spans))
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range spans {
		runs[i].Span = s
		if s.Start >= s.End {
			continue
		}
		h := &handler{out: out, dec: newDecoder(), eng: newEngine(&cfg.Analysis, params, book), rules: &current,
			series: out.metrics.series.WithLabelValues(strconv.Itoa(s.Partition))}
		rc := kafka.ReaderConfig{Brokers: cfg.Kafka.Brokers, Topic: cfg.Topic, Partition: s.Partition, Dialer: dialer,
			MaxWait: tailMaxWait, IsolationLevel: isolation}
		g.Go(func() error { return backtestPartition(gctx, rc, h, &runs[i], cfg.Write, labels, end) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, r := range runs {
		for _, b := range r.Bad {
			fmt.Fprintf(stderr, "warning: %s partition %d offset %d: undecodable, skipped: %s\n", cfg.Topic, b.Partition, b.Offset, tailPrintable(b.Err.Error()))
		}
		if r.Undecodable > int64(len(r.Bad)) {
			fmt.Fprintf(stderr, "warning: %s partition %d: %d more undecodable messages skipped\n", cfg.Topic, r.Span.Partition, r.Undecodable-int64(len(r.Bad)))
		}
	}
	rep, err := newBacktestReport(cfg, set, runs, labels)
	if err != nil {
		return err
	}
	if cfg.JSON {
		return rep.writeJSON(stdout)
	}
	return rep.writeText(stdout)
}

// openBacktestOutput gives out the live analyzer's outputs: the alert
// topic, InfluxDB and the dead-letter topic for what InfluxDB refuses. The
// returned function closes them.
func openBacktestOutput(ctx context.Context, cfg backtestConfig, out *output, log zerolog.Logger, reg prometheus.Registerer) (func(), error) {
	admin, err := kafkaio.NewAdmin(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	if err := admin.EnsureTopics(ctx, cfg.Alerts, cfg.DLQ); err != nil {
		return nil, err
	}
	sink, err := influx.NewSink(cfg.Influx)
	if err != nil {
		return nil, err
	}
	out.writer = influx.NewWriter(sink, log, reg, "analyzer")
	dlq, err := kafkaio.NewDeadLetters(cfg.Kafka, cfg.DLQ.Name, "analyzer")
	if err != nil {
		sink.Close()
		return nil, err
	}
	out.dlq = dlq
	w, err := kafkaio.NewWriter(cfg.Kafka, cfg.Alerts.Name, kafkaio.WriterOptions{})
	if err != nil {
		dlq.Close()
		sink.Close()
		return nil, err
	}
	out.alerts = w
	return func() { w.Close(); dlq.Close(); sink.Close() }, nil
}

// backtestPartition runs h over the messages of run.Span in offset order and
// records what it found in run. The engine's clock is the newest point time
// seen so far; end, when not 0 and later, is the clock of the final absence
// check. With write, h flushes (publishes and writes) every
// backtestFlushEvery messages and at the end; without, nothing leaves.
func backtestPartition(ctx context.Context, rc kafka.ReaderConfig, h *handler, run *partitionRun, write bool, labels map[string][]labelWindow, end int64) error {
	msgs := make(chan kafka.Message, tailQueue)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(msgs)
		return tailPartition(gctx, rc, run.Span, false, msgs)
	})
	g.Go(func() error {
		h.syncRules()
		var clock int64
		pending := 0
		keep := func(from int) {
			run.Events = append(run.Events, h.res.events[from:]...)
			if !write {
				h.res.Reset()
			}
		}
		flush := func() error {
			pending = 0
			if write {
				return h.flush(gctx)
			}
			return nil
		}
		for m := range msgs {
			run.Messages++
			pts, err := h.decode(&m)
			if err != nil {
				run.Undecodable++
				h.out.metrics.undecodable.Inc()
				if len(run.Bad) < backtestBadShown {
					run.Bad = append(run.Bad, badMessage{Partition: m.Partition, Offset: m.Offset, Err: err})
				}
				continue
			}
			from := len(h.res.events)
			for j := range pts {
				p := &pts[j]
				clock = max(clock, p.Time)
				if labels != nil {
					run.see(h.eng, p, labels)
				}
				h.eng.Process(p, clock, &h.res)
			}
			run.Points += int64(len(pts))
			if clock-h.checkedAt >= absenceEvery {
				h.housekeep(clock)
			}
			keep(from)
			if pending++; pending >= backtestFlushEvery {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if gctx.Err() != nil {
			return nil // the reader's error says why
		}
		if run.Messages > 0 {
			from := len(h.res.events)
			h.housekeep(max(clock, end))
			keep(from)
		}
		return flush()
	})
	return g.Wait()
}

// see records p's fields of labelled series as rows for scoring: the points
// the engine analyzes, those in time order.
func (run *partitionRun) see(e *engine, p *point.Point, labels map[string][]labelWindow) {
	for _, f := range p.Fields {
		e.key = seriesKey(e.key[:0], p, f.Key)
		if _, ok := labels[string(e.key)]; !ok {
			continue
		}
		if run.Seen == nil {
			run.Seen = map[string]*nab.Series{}
		}
		s := run.Seen[string(e.key)]
		if s == nil {
			s = &nab.Series{Name: string(e.key)}
			run.Seen[s.Name] = s
		}
		t := time.Unix(0, p.Time).UTC()
		if n := len(s.Times); n > 0 && t.Before(s.Times[n-1]) {
			continue // late: the engine does not analyze it either
		}
		s.Times = append(s.Times, t)
		s.Values = append(s.Values, f.Value)
	}
}

// sortEvents orders events by event time, then series and rule, keeping
// each alert's own order.
func sortEvents(events []alert.Event) {
	slices.SortStableFunc(events, func(a, b alert.Event) int {
		if c := a.EventTime.Compare(b.EventTime); c != 0 {
			return c
		}
		if c := strings.Compare(a.Series, b.Series); c != 0 {
			return c
		}
		return strings.Compare(a.Rule, b.Rule)
	})
}
