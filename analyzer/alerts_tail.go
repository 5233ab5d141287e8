package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/incident"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/service"
)

const (
	// tailDedupWindow is how many distinct events alerts tail remembers to
	// drop repeats: replays after an analyzer restart repeat recent events,
	// not old ones, and 10,000 keys cost about a megabyte.
	tailDedupWindow = 10000
	// tailQueue bounds the messages fetched but not yet printed, across
	// partitions; readers block when it is full.
	tailQueue = 256
	// tailCatchUpIdle bounds, with --follow=false, the wait for a partition's
	// next message before its end offset is reached. Only offsets that hold
	// no message (transaction markers) or an unreachable broker make it
	// expire, so the command cannot hang where it promised to exit.
	tailCatchUpIdle = 15 * time.Second
	// tailMaxWait is how long the broker holds a fetch open at the end of a
	// partition. Closing a reader waits for its fetch, so this is also how
	// long Ctrl-C or the end of --follow=false can take; kafka-go's default
	// of 10s would be felt. The cost is two empty fetches a second per
	// partition while nothing is published.
	tailMaxWait = 500 * time.Millisecond
)

// alertsCommand returns `analyzer alerts`, the operator's view of the alert
// topic.
func alertsCommand() *cli.Command {
	return &cli.Command{
		Name:        "alerts",
		Usage:       "read the alert topic",
		Subcommands: []*cli.Command{alertsTailCommand()},
	}
}

func alertsTailCommand() *cli.Command {
	env := service.EnvVars
	// shared are the flags the analyzer itself also has; see inheritFlags.
	shared := append([]cli.Flag{
		&cli.StringFlag{Name: "alert-topic", Value: kafkaio.DefaultAlertTopic, Usage: "topic alert events are published to", EnvVars: env("alert-topic"), Category: "Kafka"},
		&cli.StringFlag{Name: "incidents-topic", Value: DefaultIncidentTopic, Usage: "topic incidents are published to, keyed by incident id", EnvVars: env("incidents-topic"), Category: "Kafka"},
	}, kafkaio.Flags("metricpipe-alerts-tail")...)
	flags := []cli.Flag{
		&cli.StringFlag{Name: "from", Value: "end", Usage: "where to start: end (only new alerts), beginning (everything retained) or a duration such as 1h (alerts published that long ago or later)", EnvVars: env("from")},
		&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Value: true, Usage: "keep printing new alerts until interrupted; --follow=false prints what is there up to the current end and exits", EnvVars: env("follow")},
		&cli.BoolFlag{Name: "json", Usage: "print each event's JSON as published, one event per line", EnvVars: env("json")},
		&cli.BoolFlag{Name: "incidents", Usage: "print the incidents of --incidents-topic, each with its alerts and likely origins, instead of alert events", EnvVars: env("incidents")},
		&cli.StringFlag{Name: "state", Usage: "print only `STATE` events: firing or resolved; with --incidents open, resolved or merged (default: all)", EnvVars: env("state")},
		&cli.StringFlag{Name: "severity", Value: alert.SeverityInfo, Usage: "print only events at least this severe: info, warning or critical (events without a severity count as warning; unknown severities are always printed)", EnvVars: env("severity")},
		&cli.StringFlag{Name: "color", Value: "auto", Usage: "colour the lines: auto (when stdout is a terminal and NO_COLOR is unset), always or never", EnvVars: env("color")},
	}
	return &cli.Command{
		Name:  "tail",
		Usage: "print alert events from the alert topic as they are published",
		Description: `Prints one line per alert event: its time, state, severity, rule, series,
values, how long it has been firing (or how long it fired), and its summary.
Durations come from the events' own times; times are shown in the local time
zone (TZ=UTC for UTC). --json prints the events exactly as published instead;
the filters and the deduplication below apply alike.

It reads every partition of the topic without a consumer group, so tailing
never moves the analyzer's offsets. One alert's events keep their order (they
share a key, hence a partition); events of different alerts are interleaved as
they arrive.

Repeated events are printed once. Replays after an analyzer restart repeat
events, and --repeat-interval re-announces firing alerts: an event with the
fingerprint, state and starts_at of one already printed is dropped, so a
firing alert shows once, then once more when it resolves. The last 10,000
distinct events are remembered.

Messages that are not alert events are reported on stderr with their
partition and offset, and skipped. With --follow=false it exits once it has
read up to the end offsets the topic had when it started; otherwise it runs
until interrupted (Ctrl-C exits 0).

With --incidents it reads the incidents topic instead and prints each
incident event as a block: a header line (time, state, severity, id, alert
and firing counts, the most likely origin with its lead, the summary), the
incident's alerts indented one per line, then its first three likely origins
with the evidence that ranks them. An absorbed incident prints one line
naming the incident it was merged into. Every change republishes a whole
incident with its version + 1: an event is printed only when its version is
newer than the last printed for its id, so replays show once.

The Kafka flags, --alert-topic and --incidents-topic may also be given before
"alerts tail", as to the analyzer itself.`,
		Flags: append(flags, shared...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("alerts tail takes no arguments, got %q", c.Args().Slice())
			}
			if err := inheritFlags(c, shared); err != nil {
				return err
			}
			cfg, err := tailConfigFromCLI(c)
			if err := errors.Join(err, cfg.Validate()); err != nil {
				return err
			}
			color := tailColor(cfg.Color, c.App.Writer, os.Getenv("NO_COLOR"))
			return runTail(c.Context, cfg, tailFormat{Color: color, Loc: time.Local}, c.App.Writer, c.App.ErrWriter, time.Now)
		},
	}
}

// inheritFlags gives `analyzer --kafka-brokers k:9092 alerts tail` the
// value given to the analyzer: urfave/cli v2 lets a subcommand's own default
// shadow its parent's flag of the same name. A flag set after `tail`, or in
// the environment (which both read alike), keeps its value.
func inheritFlags(c *cli.Context, flags []cli.Flag) error {
	lineage := c.Lineage()
	for _, f := range flags {
		name := f.Names()[0]
		if c.IsSet(name) {
			continue
		}
		for _, anc := range lineage[1:] {
			if !anc.IsSet(name) {
				continue
			}
			var err error
			switch f.(type) {
			case *cli.StringSliceFlag:
				for _, v := range anc.StringSlice(name) {
					err = errors.Join(err, c.Set(name, v))
				}
			case *cli.BoolFlag:
				err = c.Set(name, strconv.FormatBool(anc.Bool(name)))
			default:
				err = c.Set(name, anc.String(name))
			}
			if err != nil {
				return fmt.Errorf("--%s: %w", name, err)
			}
			break
		}
	}
	return nil
}

// tailConfig is the configuration of alerts tail.
type tailConfig struct {
	Kafka     kafkaio.Config
	Topic     string // --alert-topic, or --incidents-topic with Incidents
	Incidents bool
	From      string // end, beginning or a duration
	Follow    bool
	JSON      bool
	State     string // "", firing or resolved; with Incidents open, resolved or merged
	Severity  string // the least severity printed
	Color     string // auto, always or never
}

func tailConfigFromCLI(c *cli.Context) (tailConfig, error) {
	kc, err := kafkaio.ConfigFromCLI(c)
	cfg := tailConfig{
		Kafka:     kc,
		Topic:     c.String("alert-topic"),
		Incidents: c.Bool("incidents"),
		From:      c.String("from"),
		Follow:    c.Bool("follow"),
		JSON:      c.Bool("json"),
		State:     c.String("state"),
		Severity:  c.String("severity"),
		Color:     c.String("color"),
	}
	if cfg.Incidents {
		cfg.Topic = c.String("incidents-topic")
	}
	return cfg, err
}

// Validate reports every invalid setting, each naming its flag.
func (c tailConfig) Validate() error {
	errs := []error{c.Kafka.Validate()}
	switch {
	case c.Topic == "" && c.Incidents:
		errs = append(errs, errors.New("--incidents-topic: empty"))
	case c.Topic == "":
		errs = append(errs, errors.New("--alert-topic: empty"))
	}
	if _, err := parseTailFrom(c.From); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.Incidents:
		if err := validIncidentTailState(c.State); err != nil {
			errs = append(errs, err)
		}
	case c.State != "" && c.State != string(alert.Firing) && c.State != string(alert.Resolved):
		errs = append(errs, fmt.Errorf("--state %q: want firing or resolved", c.State))
	}
	if _, ok := tailSeverityRank(c.Severity); !ok || c.Severity == "" {
		errs = append(errs, fmt.Errorf("--severity %q: want info, warning or critical", c.Severity))
	}
	if c.Color != "auto" && c.Color != "always" && c.Color != "never" {
		errs = append(errs, fmt.Errorf("--color %q: want auto, always or never", c.Color))
	}
	return errors.Join(errs...)
}

func (c tailConfig) filter() tailFilter[alert.State] {
	rank, _ := tailSeverityRank(c.Severity)
	return tailFilter[alert.State]{State: alert.State(c.State), MinRank: rank}
}

// tailFrom is where reading starts: the end (zero value), the beginning, or
// the first message published Ago before the start of the command.
type tailFrom struct {
	Beginning bool
	Ago       time.Duration
}

func parseTailFrom(s string) (tailFrom, error) {
	switch s {
	case "end":
		return tailFrom{}, nil
	case "beginning":
		return tailFrom{Beginning: true}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return tailFrom{}, fmt.Errorf("--from %q: want end, beginning or a positive duration such as 1h", s)
	}
	return tailFrom{Ago: d}, nil
}

// tailColor decides whether lines are coloured: mode is --color, noColor
// the NO_COLOR environment variable (https://no-color.org: set and not
// empty disables colour unless asked for explicitly).
func tailColor(mode string, stdout io.Writer, noColor string) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	return noColor == "" && tailIsTerminal(stdout)
}

// tailIsTerminal reports whether w is a character device: a terminal, or
// /dev/null, where colour does no harm.
func tailIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// runTail prints the alert topic's events, or with cfg.Incidents the
// incidents topic's, to stdout until ctx is cancelled or, with cfg.Follow
// off, until the end offsets found at the start are reached; cancellation
// is a normal end and returns nil. Undecodable messages are reported to
// stderr. now is the clock, read once for --from and once per event for its
// age.
func runTail(ctx context.Context, cfg tailConfig, format tailFormat, stdout, stderr io.Writer, now func() time.Time) error {
	out := bufio.NewWriter(stdout)
	if cfg.Incidents {
		filter, seen := cfg.incidentTailFilter(), newIncidentTailSeen(tailDedupWindow)
		p := &tailPrinter[incident.Event]{out: out, errOut: stderr, topic: cfg.Topic, json: cfg.JSON, now: now,
			what: "an incident event", decode: incident.Decode, render: format.incident,
			keep: func(e incident.Event) bool { return filter.match(e.State, e.Severity) && seen.add(e.ID, e.Version) }}
		return readTail(ctx, cfg, out, p.print, "incidents", now)
	}
	filter, seen := cfg.filter(), newTailSeen(tailDedupWindow)
	p := &tailPrinter[alert.Event]{out: out, errOut: stderr, topic: cfg.Topic, json: cfg.JSON, now: now,
		what: "an alert event", decode: alert.Decode, render: format.line,
		keep: func(e alert.Event) bool { return filter.match(e.State, e.Severity) && seen.add(tailKeyOf(e)) }}
	return readTail(ctx, cfg, out, p.print, "alerts", now)
}

// readTail reads cfg.Topic as runTail describes and hands every message to
// handle, one at a time in one goroutine, flushing out whenever it has caught
// up. handle returns only errors writing to out; what names its output in
// those errors.
func readTail(ctx context.Context, cfg tailConfig, out *bufio.Writer, handle func(kafka.Message) error, what string, now func() time.Time) error {
	from, err := parseTailFrom(cfg.From)
	if err != nil {
		return err
	}
	client, dialer, closeIdle, err := partitionClient(cfg.Kafka)
	if err != nil {
		return err
	}
	defer closeIdle()
	spans, err := tailSpans(ctx, client, cfg.Topic, from, now())
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if !cfg.Follow {
		spans = slices.DeleteFunc(spans, func(s tailSpan) bool { return s.Start >= s.End })
	}

	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	g, gctx := errgroup.WithContext(readCtx)
	msgs := make(chan kafka.Message, tailQueue)
	for _, s := range spans {
		rc := kafka.ReaderConfig{Brokers: cfg.Kafka.Brokers, Topic: cfg.Topic, Partition: s.Partition, Dialer: dialer, MaxWait: tailMaxWait}
		g.Go(func() error { return tailPartition(gctx, rc, s, cfg.Follow, msgs) })
	}
	go func() {
		_ = g.Wait() // returned below
		close(msgs)
	}()
	var printErr error
	for m := range msgs {
		if printErr != nil {
			continue // drain until the readers have stopped
		}
		printErr = handle(m)
		if printErr == nil && len(msgs) == 0 {
			printErr = out.Flush() // caught up: show what we have
		}
		if printErr != nil {
			stopReading()
		}
	}
	readErr := g.Wait()
	if printErr == nil {
		printErr = out.Flush()
	}
	switch {
	case printErr != nil:
		return fmt.Errorf("print %s: %w", what, printErr)
	case ctx.Err() != nil:
		return nil // interrupted: a normal end
	}
	return readErr
}

// tailSpan is the part of one partition to read: from Start, and with
// --follow=false up to End (the high watermark when the command started).
type tailSpan struct {
	Partition  int
	Start, End int64
}

// tailSpans lists the topic's partitions with their start and end offsets.
func tailSpans(ctx context.Context, client *kafka.Client, topic string, from tailFrom, now time.Time) ([]tailSpan, error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %q: %w", topic, err)
	}
	if len(meta.Topics) != 1 {
		return nil, fmt.Errorf("metadata of %q: topic not found", topic)
	}
	if err := meta.Topics[0].Error; err != nil {
		return nil, fmt.Errorf("topic %q: %w", topic, err)
	}
	parts := make([]int, 0, len(meta.Topics[0].Partitions))
	for _, p := range meta.Topics[0].Partitions {
		parts = append(parts, p.ID)
	}
	slices.Sort(parts)
	ends, err := tailListOffsets(ctx, client, topic, parts, kafka.LastOffset)
	if err != nil {
		return nil, err
	}
	starts := ends
	switch {
	case from.Beginning:
		starts, err = tailListOffsets(ctx, client, topic, parts, kafka.FirstOffset)
	case from.Ago > 0:
		starts, err = tailListOffsets(ctx, client, topic, parts, now.Add(-from.Ago).UnixMilli())
	}
	if err != nil {
		return nil, err
	}
	spans := make([]tailSpan, len(parts))
	for i, p := range parts {
		start := starts[p]
		if start < 0 { // no message that recent
			start = ends[p]
		}
		spans[i] = tailSpan{Partition: p, Start: start, End: ends[p]}
	}
	return spans, nil
}

// tailListOffsets asks for one offset of each partition: ts is
// kafka.FirstOffset, kafka.LastOffset (the high watermark) or a time in Unix
// milliseconds, for the offset of the first message whose timestamp is at or
// after it (-1 when there is none): Kafka's offset-by-time lookup.
func tailListOffsets(ctx context.Context, client *kafka.Client, topic string, parts []int, ts int64) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, len(parts))
	for i, p := range parts {
		reqs[i] = kafka.OffsetRequest{Partition: p, Timestamp: ts}
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %q: %w", topic, err)
	}
	out := make(map[int]int64, len(parts))
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("list offsets of %q partition %d: %w", topic, p.Partition, p.Error)
		}
		switch ts {
		case kafka.FirstOffset:
			out[p.Partition] = p.FirstOffset
		case kafka.LastOffset:
			out[p.Partition] = p.LastOffset
		default: // one answer, keyed by its offset
			for off := range p.Offsets {
				out[p.Partition] = off
			}
		}
	}
	for _, p := range parts {
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("list offsets of %q: no answer for partition %d", topic, p)
		}
	}
	return out, nil
}

// tailPartition sends the messages of one partition, from span.Start, to
// out; without follow it returns nil once the message before span.End was
// sent. It returns ctx's error when cancelled.
func tailPartition(ctx context.Context, rc kafka.ReaderConfig, span tailSpan, follow bool, out chan<- kafka.Message) error {
	r := kafka.NewReader(rc)
	defer r.Close() // no group, nothing to commit: its error changes nothing
	if err := r.SetOffset(span.Start); err != nil {
		return fmt.Errorf("read %s partition %d: %w", rc.Topic, span.Partition, err)
	}
	for next := span.Start; follow || next < span.End; {
		readCtx, cancel := ctx, context.CancelFunc(func() {})
		if !follow {
			readCtx, cancel = context.WithTimeout(ctx, tailCatchUpIdle)
		}
		m, err := r.ReadMessage(readCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("read %s partition %d: nothing at offset %d or after for %s, before its end offset %d",
				rc.Topic, span.Partition, next, tailCatchUpIdle, span.End)
		case err != nil:
			return fmt.Errorf("read %s partition %d at offset %d: %w", rc.Topic, span.Partition, next, err)
		}
		select {
		case out <- m:
		case <-ctx.Done():
			return ctx.Err()
		}
		next = m.Offset + 1
	}
	return nil
}

// tailPrinter decodes, filters, deduplicates and prints the events of
// one topic, alert or incident events. It is not safe for concurrent use:
// one goroutine owns it.
type tailPrinter[E any] struct {
	out    *bufio.Writer
	errOut io.Writer
	topic  string
	json   bool
	what   string // the events, for the warning about a message that is none
	decode func([]byte) (E, error)
	keep   func(E) bool // --state and --severity, then the deduplication
	render func(E, time.Time) string
	now    func() time.Time
}

// print prints m, or warns on errOut when it is not an event. It returns
// only errors writing to out.
func (p *tailPrinter[E]) print(m kafka.Message) error {
	e, err := p.decode(m.Value)
	if err != nil {
		// Lines before the warning reach the terminal before it.
		if err := p.out.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(p.errOut, "warning: %s partition %d offset %d: not %s, skipped: %s\n",
			p.topic, m.Partition, m.Offset, p.what, tailPrintable(err.Error()))
		return nil
	}
	if !p.keep(e) {
		return nil
	}
	if p.json {
		return writeJSONLine(p.out, m.Value)
	}
	_, err = p.out.WriteString(p.render(e, p.now()) + "\n")
	return err
}

// writeJSONLine writes v, valid JSON, and a newline. Published bytes are
// kept as they are unless they span lines, which would break one event per
// line: then insignificant whitespace is removed.
func writeJSONLine(w *bufio.Writer, v []byte) error {
	if bytes.ContainsAny(v, "\r\n") {
		var b bytes.Buffer
		if err := json.Compact(&b, v); err == nil {
			v = b.Bytes()
		}
	}
	if _, err := w.Write(v); err != nil {
		return err
	}
	return w.WriteByte('\n')
}

// partitionClient returns the client (offsets, metadata) and the dialer
// (partition readers) of a command that reads a topic by partition, with
// no consumer group (alerts tail, backtest), and closeIdle to call when
// done.
func partitionClient(k kafkaio.Config) (client *kafka.Client, dialer *kafka.Dialer, closeIdle func(), err error) {
	tr, err := k.Transport()
	if err != nil {
		return nil, nil, nil, err
	}
	if dialer, err = k.Dialer(); err != nil {
		tr.CloseIdleConnections()
		return nil, nil, nil, err
	}
	return &kafka.Client{Addr: kafka.TCP(k.Brokers...), Transport: tr}, dialer, tr.CloseIdleConnections, nil
}
