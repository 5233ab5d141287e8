package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/producer/client"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/service"
)

// maxReplayLine bounds one input line, as point.DefaultMaxMessageBytes
// bounds one message: a longer line could not be produced anyway. Longer
// lines are skipped, not fatal.
const maxReplayLine = 1 << 20

// replayConfig is what `producer replay` reads and how fast it sends it;
// delivery is configured by deliveryConfig.
type replayConfig struct {
	Format      string      // auto, line, json or csv
	Measurement string      // CSV: measurement; "" means the file's base name, sanitised
	Field       string      // CSV: field key of the value column
	Tags        []point.Tag // CSV: tags of every point, sorted by key
	Speed       float64     // 0: as fast as possible; 1: original pace; X: X times faster
	ShiftToNow  bool        // move each file's times so that its first point is at its start
}

func (c replayConfig) Validate() error {
	var errs []error
	if _, ok := parseReplayFormat(c.Format); !ok {
		errs = append(errs, fmt.Errorf("--input-format %q: want auto, line, json or csv", c.Format))
	}
	if c.Speed < 0 || math.IsNaN(c.Speed) || math.IsInf(c.Speed, 0) {
		errs = append(errs, fmt.Errorf("--speed %v: want a finite value ≥ 0", c.Speed))
	}
	// Probe points apply the point model's naming rules to the flags.
	if err := (&point.Point{Measurement: "m", Fields: []point.Field{{Key: c.Field, Value: 1}}}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--field %q: %w", c.Field, err))
	}
	if c.Measurement != "" {
		if err := (&point.Point{Measurement: c.Measurement, Fields: []point.Field{{Key: "v", Value: 1}}}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--measurement %q: %w", c.Measurement, err))
		}
	}
	if err := (&point.Point{Measurement: "m", Tags: c.Tags, Fields: []point.Field{{Key: "v", Value: 1}}}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--tag: %w", err))
	}
	return errors.Join(errs...)
}

// parseTagFlags turns --tag key=value flags into sorted tags.
func parseTagFlags(flags []string) ([]point.Tag, error) {
	var (
		tags []point.Tag
		errs []error
	)
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("--tag %q: want key=value", f))
			continue
		}
		tags = append(tags, point.Tag{Key: k, Value: v})
	}
	p := point.Point{Tags: tags}
	p.SortTags()
	return p.Tags, errors.Join(errs...)
}

func replayCommand(stderr io.Writer) *cli.Command {
	env := service.EnvVars
	flags := []cli.Flag{
		&cli.StringFlag{Name: "input-format", Value: "auto", Usage: "input format: auto (by file extension: .lp/.line/.txt line protocol, .json/.jsonl/.ndjson JSON lines, .csv CSV; otherwise and on stdin per line), line, json or csv", EnvVars: env("input-format")},
		&cli.Float64Flag{Name: "speed", Usage: "pace: 0 as fast as possible, 1 the original event-time pace, X X times faster", EnvVars: env("speed")},
		&cli.BoolFlag{Name: "shift-to-now", Usage: "stamp each point when it is sent: the first when its file starts replaying, the others --speed times closer together", EnvVars: env("shift-to-now")},
		&cli.StringFlag{Name: "measurement", Usage: "CSV: measurement of the points (default: the file's base name without extension)", EnvVars: env("measurement")},
		&cli.StringFlag{Name: "field", Value: "value", Usage: "CSV: field key of the value column", EnvVars: env("field")},
		&cli.StringSliceFlag{Name: "tag", Usage: "CSV: key=value tag of every point; repeatable", EnvVars: env("tag")},
	}
	return &cli.Command{
		Name:      "replay",
		Usage:     "replay recorded points from files (or stdin) into Kafka",
		ArgsUsage: "[FILE|-]...",
		Flags:     append(flags, deliveryFlags()...),
		Action: func(c *cli.Context) error {
			d, derr := deliveryConfigFromCLI(c)
			tags, terr := parseTagFlags(c.StringSlice("tag"))
			cfg := replayConfig{
				Format:      c.String("input-format"),
				Measurement: c.String("measurement"),
				Field:       c.String("field"),
				Tags:        tags,
				Speed:       c.Float64("speed"),
				ShiftToNow:  c.Bool("shift-to-now"),
			}
			files, stdin := c.Args().Slice(), c.App.Reader
			if err := errors.Join(derr, terr, d.Validate(), cfg.Validate(), flagsAfterFiles(files), checkReadable(files)); err != nil {
				return err
			}
			log := service.NewLogger(stderr, d.Service, "producer")
			if cfg.ShiftToNow && cfg.Speed == 0 {
				log.Warn().Msg("--shift-to-now at --speed 0 (as fast as possible) keeps the files' spacing: event time runs ahead of the clock, and past the consumer's --max-future moving averages stop; set --speed")
			}
			return runSource(c.Context, d, log, "replay", func(ctx context.Context, out sink, reg *prometheus.Registry, _ func(context.Context) error) error {
				return newReplayer(cfg, out, log, reg, systemClock()).run(ctx, files, stdin)
			})
		},
	}
}

// flagsAfterFiles reports flags written after the files: flag parsing
// stops at the first file, so they would be taken for file names.
func flagsAfterFiles(args []string) error {
	for _, a := range args {
		if strings.HasPrefix(a, "-") && a != "-" {
			return fmt.Errorf("replay: %q comes after the files; put flags before them", a)
		}
	}
	return nil
}

// checkReadable reports every named file (but "-", stdin) that cannot be
// opened, so that a typo fails before connecting to Kafka.
func checkReadable(files []string) error {
	var errs []error
	for _, name := range files {
		if strings.HasPrefix(name, "-") { // stdin, or a misplaced flag reported apart
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("replay: %w", err))
			continue
		}
		f.Close()
	}
	return errors.Join(errs...)
}

// replayClock is the wall time the pacing reads and waits on; tests inject
// a fake one.
type replayClock struct {
	Now func() time.Time
	// Sleep waits d or until ctx ends, then returns ctx's error.
	Sleep func(ctx context.Context, d time.Duration) error
}

func systemClock() replayClock { return replayClock{Now: time.Now, Sleep: retry.Sleep} }

// replayStats counts what one file (or a whole replay) gave.
type replayStats struct {
	Lines     int64 // input lines holding data (not blank, comment or CSV header)
	Skipped   int64 // of Lines, malformed and not sent
	Points    int64 // points sent
	FirstSkip error // the first skipped line's *lineError, nil if none
}

func (s *replayStats) add(o replayStats) {
	s.Lines += o.Lines
	s.Skipped += o.Skipped
	s.Points += o.Points
	if s.FirstSkip == nil {
		s.FirstSkip = o.FirstSkip
	}
}

// lineError locates a malformed input line.
type lineError struct {
	File string
	Line int
	Err  error
}

func (e *lineError) Error() string {
	var de *point.DecodeError
	if !errors.As(e.Err, &de) {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	// The decoder saw a one-line payload: its own line number is always 1,
	// so say where in the line instead.
	msg := "decode error"
	if de.Err != nil {
		msg = de.Err.Error()
	}
	if de.Field != "" {
		msg = fmt.Sprintf("key %q: %s", de.Field, msg)
	}
	if de.Reason != "" {
		msg += ": " + de.Reason
	}
	return fmt.Sprintf("%s:%d: %s at column %d: %s", e.File, e.Line, de.Format, de.Offset+1, msg)
}

func (e *lineError) Unwrap() error { return e.Err }

// replayer sends the points of recorded files. It is not safe for
// concurrent use.
type replayer struct {
	cfg            replayConfig
	out            sink
	log            zerolog.Logger // info per file
	hot            zerolog.Logger // sampled, per malformed line
	clock          replayClock
	lines, skipped prometheus.Counter
	dec            point.Decoder
}

// newReplayer registers the replay metrics on reg. cfg must be valid.
func newReplayer(cfg replayConfig, out sink, log zerolog.Logger, reg prometheus.Registerer, clock replayClock) *replayer {
	r := &replayer{
		cfg: cfg, out: out, log: log, clock: clock,
		hot: log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Second}),
		lines: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_producer_replay_lines_total",
			Help: "Replayed input lines holding data, including skipped ones."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_producer_replay_skipped_total",
			Help: "Replayed input lines skipped as malformed."}),
	}
	reg.MustRegister(r.lines, r.skipped)
	return r
}

// run replays the named files in order ("-" or no name at all: stdin). It
// stops at the first file that cannot be read or point that cannot be sent,
// and returns nil when ctx ends (a requested stop). If lines were skipped,
// the error summarises them.
func (r *replayer) run(ctx context.Context, names []string, stdin io.Reader) error {
	if len(names) == 0 {
		names = []string{"-"}
	}
	var (
		total replayStats
		err   error
	)
	for _, name := range names {
		var st replayStats
		st, err = r.replayPath(ctx, name, stdin)
		total.add(st)
		if err != nil {
			break
		}
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		err = nil
	}
	if total.Skipped > 0 {
		err = errors.Join(err, fmt.Errorf("replay: %d of %d lines skipped (first: %w)", total.Skipped, total.Lines, total.FirstSkip))
	}
	return err
}

func (r *replayer) replayPath(ctx context.Context, name string, stdin io.Reader) (replayStats, error) {
	if name == "-" {
		return r.replayFile(ctx, stdin, "stdin")
	}
	f, err := os.Open(name)
	if err != nil {
		return replayStats{}, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	return r.replayFile(ctx, f, name)
}

// replayFormat is how the lines of one input are decoded.
type replayFormat uint8

const (
	replayDetect replayFormat = iota // per line, as point.Detect does
	replayLine
	replayJSON
	replayCSV
)

// parseReplayFormat maps --input-format; auto is replayDetect until
// formatFor looks at the file name.
func parseReplayFormat(s string) (replayFormat, bool) {
	switch s {
	case "auto":
		return replayDetect, true
	case "line":
		return replayLine, true
	case "json":
		return replayJSON, true
	case "csv":
		return replayCSV, true
	}
	return 0, false
}

// formatFor picks the format of the input called name.
func (r *replayer) formatFor(name string) replayFormat {
	f, _ := parseReplayFormat(r.cfg.Format)
	if f != replayDetect {
		return f
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".lp", ".line", ".txt":
		return replayLine
	case ".json", ".jsonl", ".ndjson":
		return replayJSON
	case ".csv":
		return replayCSV
	}
	return replayDetect
}

// replayFile sends the points of the input rd, called name in logs and
// errors, line by line: malformed lines are counted, logged (sampled) and
// skipped. It returns early with ctx's error when ctx ends, with an error
// when rd fails, a CSV header is unusable or out refuses a point (other than
// client.ErrBufferFull, which the producer counts).
func (r *replayer) replayFile(ctx context.Context, rd io.Reader, name string) (replayStats, error) {
	var (
		st     replayStats
		format = r.formatFor(name)
		split  = lineSplitter{max: maxReplayLine}
		sc     = bufio.NewScanner(rd)
		pace   = pacer{speed: r.cfg.Speed, shift: r.cfg.ShiftToNow, clock: r.clock}
		schema *csvSchema
		pts    []point.Point
		err    error
		lineNo = 1
	)
	// Start small, grow to a line of maxReplayLine plus its newline.
	sc.Buffer(make([]byte, 0, 64<<10), maxReplayLine+1)
	sc.Split(split.split)
	for ; sc.Scan(); lineNo++ {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		line := sc.Bytes()
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte-order mark
		}
		if split.long {
			split.long = false
			r.skip(&st, name, lineNo, fmt.Errorf("line longer than %d bytes", maxReplayLine))
			continue
		}
		if blankLine(line, format != replayCSV) {
			continue
		}
		if format == replayCSV && schema == nil {
			if schema, err = r.newCSVSchema(line, name); err != nil {
				return st, fmt.Errorf("replay %s:%d: CSV header: %w", name, lineNo, err)
			}
			continue
		}
		pts = pts[:0]
		switch f := format; {
		case f == replayCSV:
			var p point.Point
			if p, err = schema.point(line); err == nil {
				pts = append(pts, p)
			}
		case f == replayJSON, f == replayDetect && point.Detect(line) == point.FormatJSON:
			pts, err = r.dec.DecodeJSON(pts, line)
		default:
			pts, err = r.dec.DecodeLine(pts, line)
		}
		if err != nil {
			r.skip(&st, name, lineNo, err)
			continue
		}
		// Times are checked for the whole line first, so that a line is
		// sent entirely or skipped.
		if err = pace.shiftAll(pts); err != nil {
			r.skip(&st, name, lineNo, err)
			continue
		}
		st.Lines++
		r.lines.Inc()
		for i := range pts {
			if err := pace.wait(ctx, pts[i].Time); err != nil {
				return st, err
			}
			if err := r.out.Send(ctx, pace.stamp(pts[i])); err != nil {
				if ctx.Err() != nil {
					return st, ctx.Err()
				}
				if errors.Is(err, client.ErrBufferFull) {
					continue // counted by the producer; --drop-when-full asked for it
				}
				return st, fmt.Errorf("replay %s:%d: send: %w", name, lineNo, err)
			}
			st.Points++
		}
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("replay: read %s: %w", name, err)
	}
	if split.long { // the input ended within an overlong line
		r.skip(&st, name, lineNo, fmt.Errorf("line longer than %d bytes", maxReplayLine))
	}
	r.log.Info().Str("file", name).Int64("lines", st.Lines).Int64("skipped", st.Skipped).Int64("points", st.Points).Msg("file replayed")
	return st, nil
}

func (r *replayer) skip(st *replayStats, name string, line int, err error) {
	le := &lineError{File: name, Line: line, Err: err}
	st.Lines++
	st.Skipped++
	if st.FirstSkip == nil {
		st.FirstSkip = le
	}
	r.lines.Inc()
	r.skipped.Inc()
	r.hot.Warn().Str("file", name).Int("line", line).Err(err).Msg("malformed line skipped")
}

// blankLine reports a line without data: empty or white space, or, when
// comments is set, a line-protocol comment.
func blankLine(line []byte, comments bool) bool {
	t := bytes.TrimLeft(line, " \t")
	return len(bytes.TrimSpace(t)) == 0 || comments && t[0] == '#'
}

// lineSplitter is a bufio.SplitFunc that yields lines without their "\n"
// or "\r\n" and, instead of failing the scan as bufio.ScanLines does,
// discards a line longer than max and yields its tail with long set.
type lineSplitter struct {
	max  int
	long bool
}

func (s *lineSplitter) split(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, bytes.TrimSuffix(data[:i], []byte{'\r'}), nil
	}
	if atEOF && len(data) > 0 {
		return len(data), bytes.TrimSuffix(data, []byte{'\r'}), nil
	}
	if len(data) > s.max {
		s.long = true
		return len(data), nil, nil // drop what we have, read on to the newline
	}
	return 0, nil, nil
}

// pacer paces and re-stamps the points of one input. Time 0 ("not given")
// is neither paced nor shifted.
type pacer struct {
	speed   float64
	shift   bool
	clock   replayClock
	started bool
	t0      int64     // event time of the first timed point
	wall0   time.Time // when it was due
}

// start anchors the schedule at the first timed point.
func (pc *pacer) start(t int64) {
	if !pc.started && t != 0 {
		pc.started, pc.t0, pc.wall0 = true, t, pc.clock.Now()
	}
}

// shifted is t as --shift-to-now stamps it: when it is sent, so that event
// time keeps pace with the clock. At --speed X the distances from the first
// point shrink X times; at speed 0 (as fast as possible) they are kept.
// False if that leaves the range of a Point's time.
func (pc *pacer) shifted(t int64) (int64, bool) {
	if !pc.shift || t == 0 {
		return t, true
	}
	d := t - pc.t0
	if (pc.t0 >= 0) != (d <= t) {
		return 0, false
	}
	if pc.speed > 0 {
		f := float64(d) / pc.speed
		if math.Abs(f) >= math.MaxInt64/2 {
			return 0, false
		}
		d = int64(f)
	}
	s := pc.wall0.UnixNano() + d
	return s, (d >= 0) == (s >= pc.wall0.UnixNano())
}

// shiftAll fails if a time of pts cannot be shifted.
func (pc *pacer) shiftAll(pts []point.Point) error {
	for i := range pts {
		pc.start(pts[i].Time)
		if _, ok := pc.shifted(pts[i].Time); !ok {
			return fmt.Errorf("time %d out of range when shifted to start at %s", pts[i].Time, pc.wall0.Format(time.RFC3339Nano))
		}
	}
	return nil
}

// wait sleeps until event time t is due: the schedule is anchored at the
// first point, so the time sends take does not add up into drift. Times
// earlier than the latest are sent at once.
func (pc *pacer) wait(ctx context.Context, t int64) error {
	if pc.speed == 0 || t == 0 {
		return ctx.Err()
	}
	pc.start(t)
	d := (float64(t) - float64(pc.t0)) / pc.speed
	d = min(d, float64(math.MaxInt64)/2) // a conversion beyond int64 is undefined
	due := pc.wall0.Add(time.Duration(d))
	return pc.clock.Sleep(ctx, due.Sub(pc.clock.Now()))
}

// stamp returns p with its time shifted; shiftAll checked it.
func (pc *pacer) stamp(p point.Point) point.Point {
	p.Time, _ = pc.shifted(p.Time)
	return p
}

// csvSchema maps the columns of one CSV input to points.
type csvSchema struct {
	measurement string
	tags        []point.Tag
	ncols       int
	timeCol     int
	valueCol    int      // the --field column; required in every row
	extra       []int    // further numeric columns, optional per row
	keys        []string // field key by column
}

// newCSVSchema reads the header: the time column is the one named timestamp,
// time, ts, date or datetime (case-insensitive), else the first; the value
// column is the one named --field, else "value", else the first other one.
// Other columns whose name is a valid field key are extra fields.
func (r *replayer) newCSVSchema(header []byte, name string) (*csvSchema, error) {
	cols, err := splitCSV(header)
	if err != nil {
		return nil, err
	}
	if len(cols) < 2 {
		return nil, fmt.Errorf("%d columns, want a time and at least one value column", len(cols))
	}
	s := &csvSchema{measurement: r.cfg.Measurement, tags: r.cfg.Tags, ncols: len(cols), timeCol: -1, valueCol: -1, keys: make([]string, len(cols))}
	if s.measurement == "" {
		s.measurement = measurementFromFile(name)
	}
	for i, c := range cols {
		switch strings.ToLower(c) {
		case "timestamp", "time", "ts", "date", "datetime":
			if s.timeCol < 0 {
				s.timeCol = i
			}
		}
	}
	s.timeCol = max(s.timeCol, 0)
	for _, match := range []func(string) bool{
		func(c string) bool { return c == r.cfg.Field },
		func(c string) bool { return strings.EqualFold(c, "value") },
		func(string) bool { return true },
	} {
		for i, c := range cols {
			if i != s.timeCol && s.valueCol < 0 && match(c) {
				s.valueCol = i
			}
		}
	}
	s.keys[s.valueCol] = r.cfg.Field
	for i, c := range cols {
		if i == s.timeCol || i == s.valueCol {
			continue
		}
		probe := point.Point{Measurement: "m", Fields: []point.Field{{Key: r.cfg.Field, Value: 1}, {Key: c, Value: 1}}}
		if err := probe.Validate(); err != nil {
			r.log.Warn().Str("file", name).Str("column", c).Err(err).Msg("CSV column ignored")
			continue
		}
		s.keys[i] = c
		s.extra = append(s.extra, i)
	}
	return s, nil
}

// point builds the point of one CSV row: the value column must hold a
// finite number; extra columns that are empty or not numbers are left out.
func (s *csvSchema) point(line []byte) (point.Point, error) {
	cells, err := splitCSV(line)
	if err != nil {
		return point.Point{}, err
	}
	if len(cells) > s.ncols || len(cells) <= max(s.timeCol, s.valueCol) {
		return point.Point{}, fmt.Errorf("%d columns, header has %d", len(cells), s.ncols)
	}
	t, err := parseCSVTime(cells[s.timeCol])
	if err != nil {
		return point.Point{}, err
	}
	v, err := parseCSVValue(cells[s.valueCol])
	if err != nil {
		return point.Point{}, fmt.Errorf("column %q: %w", s.keys[s.valueCol], err)
	}
	fields := make([]point.Field, 1, 1+len(s.extra))
	fields[0] = point.Field{Key: s.keys[s.valueCol], Value: v}
	for _, i := range s.extra {
		if i >= len(cells) {
			break
		}
		if v, err := parseCSVValue(cells[i]); err == nil {
			fields = append(fields, point.Field{Key: s.keys[i], Value: v})
		}
	}
	p := point.Point{Measurement: s.measurement, Tags: s.tags, Fields: fields, Time: t}
	return p, p.Validate()
}

// splitCSV splits one CSV record and trims its cells; records with quotes
// take the slower encoding/csv path. A quoted cell cannot span lines.
func splitCSV(line []byte) ([]string, error) {
	var cells []string
	if bytes.IndexByte(line, '"') < 0 {
		cells = strings.Split(string(line), ",")
	} else {
		cr := csv.NewReader(bytes.NewReader(line))
		cr.FieldsPerRecord = -1
		var err error
		if cells, err = cr.Read(); err != nil {
			return nil, fmt.Errorf("CSV: %w", err)
		}
	}
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells, nil
}

func parseCSVValue(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("value %q is not a finite number", s)
	}
	return v, nil
}

// csvTimeLayouts are the text timestamps a CSV may hold; those without a
// zone are UTC. "2006-01-02 15:04:05" is the Numenta Anomaly Benchmark's.
var csvTimeLayouts = [...]string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04", "2006-01-02"}

// parseCSVTime parses a CSV timestamp to Unix nanoseconds: one of
// csvTimeLayouts, or an integer of Unix seconds, milliseconds, microseconds
// or nanoseconds, told apart by magnitude (seconds below 1e11, i.e. before
// the year 5138; milliseconds below 1e14; microseconds below 1e17).
func parseCSVTime(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		a := n
		if a < 0 {
			a = -a
		}
		var unit int64
		switch {
		case a < 1e11:
			unit = int64(time.Second)
		case a < 1e14:
			unit = int64(time.Millisecond)
		case a < 1e17:
			unit = int64(time.Microsecond)
		default:
			return n, nil
		}
		if a > math.MaxInt64/unit {
			return 0, fmt.Errorf("timestamp %q out of range", s)
		}
		return n * unit, nil
	}
	for _, layout := range csvTimeLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if t.Before(minUnixNano) || t.After(maxUnixNano) {
			return 0, fmt.Errorf("timestamp %q out of range", s)
		}
		return t.UnixNano(), nil
	}
	return 0, fmt.Errorf("timestamp %q: want RFC 3339, YYYY-MM-DD HH:MM:SS or Unix seconds, ms or ns", s)
}

// The times a Point can hold.
var (
	minUnixNano = time.Unix(0, math.MinInt64)
	maxUnixNano = time.Unix(0, math.MaxInt64)
)

// measurementFromFile is the default CSV measurement: the base name without
// extension, with anything but letters, digits, '_', '-' and '.' replaced
// by '_'.
func measurementFromFile(name string) string {
	base := filepath.Base(name)
	base = strings.TrimSuffix(base, filepath.Ext(base))
	m := strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, base)
	if m == "" || m == "." {
		return "replay"
	}
	return m
}
