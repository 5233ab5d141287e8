package movavg

import (
	"encoding/binary"
	"math"

	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/stream"
)

// Result is what Process did with one point.
type Result struct {
	// Untracked reports that fields of the point had no state because
	// MaxSeries series-fields were already tracked (all of its fields when
	// its series is new): they got no derived output and no rollups.
	Untracked bool
	// DroppedLate is 1 when the point's rollup window had already closed,
	// so that it counts in no rollup (its moving averages were computed),
	// and 0 otherwise. It is an int so that callers can add it up.
	DroppedLate int
	// Derived reports that the last point appended to out is p's derived
	// point (same measurement, tags and time as p), so a caller may merge
	// its fields into p's line instead of writing a second point.
	Derived bool
}

// Stats are a Stage's counters and gauges, for metrics.
type Stats struct {
	Series      int    // series-field states tracked, at most Config.MaxSeries
	Untracked   uint64 // points that had Result.Untracked
	DroppedLate uint64 // points too late for their rollup window
	Expired     uint64 // series-field states dropped by Expire
}

// Stage computes moving averages and rollups for the points of one Kafka
// partition; see the package documentation. It is not safe for concurrent
// use: each partition worker owns one, which is why it needs no locks.
type Stage struct {
	def       *Plan
	overrides map[string]*Plan // nil when there are none
	sel       *selection       // nil: every field
	lateness  int64
	idle      int64 // IdleTimeout, processing time
	idleFlush int64 // IdleFlush, processing time
	maxSeries int
	hash      uint64 // of what the state means: see configHash

	index   map[string]int32 // series key → index in series
	series  []series
	free    []int32 // indexes of unused slots of series
	nFields int     // tracked series-field states

	fields arena[point.Field] // Fields of the points handed out
	tags   arena[point.Tag]   // Tags of the rollup points handed out
	key    []byte             // scratch: series key
	id     []byte             // scratch: series identity
	names  map[nameKey]string // interned fieldState.keys

	untracked, droppedLate, expired uint64

	seq int64 // source position of the points being processed; see Mark
}

// The Stage is the consumer's stream stage.
var _ stream.Stage[[]point.Point] = (*Stage)(nil)

// series is the state of one series (measurement and tag set) and of its
// fields.
type series struct {
	// id holds, in one allocation, the series key (the index's key is a
	// substring of it), the measurement and the tags, so that rollup points
	// can be built without keeping a []point.Tag per series: see
	// appendIdentity. The strings of the input point are copied, since a
	// decoded point's strings pin its whole Kafka message.
	id     string
	plan   *Plan // nil for a free slot
	fields []fieldState
	// wm is the series' watermark: its latest event time minus
	// AllowedLateness, or further once Flush or Expire closed its windows.
	// Its windows close when it reaches their end; its points for a window
	// ending at or before it are late. Each series has its own, so that a
	// series whose times lie years behind another's on the same partition
	// is judged by its own time only.
	wm int64
	// seen is the processing time (Unix ns) of the series' last point, for
	// Expire.
	seen int64
}

// nameKey identifies an interned key string: field keys repeat across the
// series of a measurement, so the series share one copy of their key strings.
type nameKey struct {
	pl   *Plan
	name string
}

// maxNames bounds the interned key strings. Field keys are few in practice;
// past the bound (producers putting ids in field keys) each series-field
// gets its own copy, which Expire frees.
const maxNames = 4096

// New returns a Stage for cfg, or the errors of cfg.Validate.
func New(cfg Config) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Stage{
		def:       newPlan(cfg.Default),
		lateness:  int64(cfg.AllowedLateness),
		idle:      int64(cfg.IdleTimeout),
		idleFlush: int64(cfg.IdleFlush),
		maxSeries: cfg.MaxSeries,
		hash:      configHash(cfg),
		index:     make(map[string]int32),
		names:     make(map[nameKey]string),
		sel:       newSelection(cfg.Fields),
	}
	if len(cfg.Overrides) > 0 {
		s.overrides = make(map[string]*Plan, len(cfg.Overrides))
		for m, p := range cfg.Overrides {
			s.overrides[m] = newPlan(p)
		}
	}
	return s, nil
}

// Mark sets the source position (a Kafka offset) of the points processed
// next. Positions must not decrease. OldestOpen reports the lowest position
// that contributed to a window still open.
func (s *Stage) Mark(seq int64) { s.seq = seq }

// OldestOpen returns the lowest position (see Mark) among the points that
// opened a rollup window still open, and false when no window is open. A
// consumer must not commit past it unless a checkpoint holds the window:
// without one, a restart rebuilds it by replaying from there. It scans
// every series, so call it once per batch, not per point.
func (s *Stage) OldestOpen() (int64, bool) {
	oldest, found := int64(math.MaxInt64), false
	for i := range s.series {
		for j := range s.series[i].fields {
			for _, w := range s.series[i].fields[j].wins {
				if w.firstSeq < oldest {
					oldest, found = w.firstSeq, true
				}
			}
		}
	}
	return oldest, found
}

// Process feeds p, a valid point with its Time set, that arrived at
// processing time now (Unix ns), and appends what it derives to out; see
// ProcessResult.
func (s *Stage) Process(p *point.Point, now int64, out []point.Point) []point.Point {
	out, _ = s.ProcessResult(p, now, out)
	return out
}

// ProcessResult is Process, also reporting what it did with p. It appends
// to out:
//
//   - the rollup points of the windows of p's series that p's event time
//     closed (p's time minus AllowedLateness reached their end), one per
//     window start; other series' windows are left alone;
//   - then at most one derived point for p: p's measurement and p.Tags (the
//     same slice, not a copy) at p.Time, with the fields <f>_sma, <f>_ema
//     and <f>_wma of each field f of p that are enabled for the measurement
//     and warmed up (and selected by Config.Fields). Nothing is appended
//     when there is no such field.
//
// The appended points' Fields, and the rollup points' Tags, are carved from
// memory the Stage owns and reuses: they stay valid until the next call to
// Reset. ProcessResult keeps no reference to p or its strings. now only
// stamps p's series as active, for Expire: what is derived does not depend
// on it.
//
// In steady state (p's series-fields tracked, the Stage's buffers grown to
// their working size, room in out, Reset after each batch) it does not
// allocate.
//
// Moving averages follow arrival order; rollups follow event time.
func (s *Stage) ProcessResult(p *point.Point, now int64, out []point.Point) ([]point.Point, Result) {
	var res Result
	pl := s.planFor(p.Measurement)
	if pl.off() || !s.sel.any(p) {
		return out, res
	}
	idx, ok := s.track(p, pl)
	if !ok {
		s.untracked++
		res.Untracked = true
		return out, res
	}
	sr := &s.series[idx]
	sr.seen = now
	if wm := satSub(p.Time, s.lateness); wm > sr.wm {
		sr.wm = wm
		if pl.rollup > 0 {
			out = s.emitWindows(sr, wm, out)
		}
	}

	rollup := pl.rollup > 0
	var start int64
	if rollup {
		start = windowStart(p.Time, pl.rollup)
		if satAdd(start, pl.rollup) <= sr.wm { // closed already (p's own time never closes it)
			rollup = false
			res.DroppedLate = 1
			s.droppedLate++
		}
	}
	var fs []point.Field
	if pl.derived > 0 {
		fs = s.fields.reserve(pl.derived * len(p.Fields))
	}
	k := 0 // position among the selected fields, as they are tracked
	for i := range p.Fields {
		pf := &p.Fields[i]
		if !s.sel.selected(p.Measurement, pf.Key) {
			continue
		}
		j := s.trackField(sr, pl, k, pf.Key)
		k++
		if j < 0 {
			res.Untracked = true
			continue
		}
		f := &sr.fields[j]
		f.Add(pl, pf.Value)
		if pl.derived > 0 {
			fs = f.appendDerived(fs, pl)
		}
		if rollup {
			w, opened := f.openWindow(start)
			if opened {
				w.firstSeq = s.seq
			}
			w.add(p.Time, pf.Value)
		}
	}
	if res.Untracked {
		s.untracked++
	}
	if len(fs) > 0 {
		s.fields.commit(len(fs))
		out = append(out, point.Point{Measurement: p.Measurement, Tags: p.Tags, Fields: fs[:len(fs):len(fs)], Time: p.Time})
		res.Derived = true
	}
	return out, res
}

// Warm feeds p, a valid point with its Time set that an earlier owner of
// the partition already processed, to the moving averages only: it opens
// no rollup window, emits nothing and counts nothing, but moves p's series'
// watermark to the end of p's rollup window at least, since that window
// was written (see the comment inside), and stamps the series active at
// processing time now. The points warmed must be those before a committed
// offset. Replaying the points just before a restart's resume position
// through Warm makes the moving averages of the replayed and later points
// what an uninterrupted run computed (SMA and WMA once a series-field has
// SMAWindow and len(WMAWeights) warm points, up to rounding; EMA converging
// by a factor 1−α per point). Call it on a fresh Stage, before Process. It
// is the fallback for when no checkpoint can be restored.
func (s *Stage) Warm(p *point.Point, now int64) {
	pl := s.planFor(p.Measurement)
	if pl.off() || !s.sel.any(p) { // rollup-only series need their watermark
		return
	}
	idx, ok := s.track(p, pl)
	if !ok {
		return
	}
	sr := &s.series[idx]
	sr.seen = now
	sr.wm = max(sr.wm, satSub(p.Time, s.lateness))
	if pl.rollup > 0 {
		// p's window was written whole by the earlier owner: the resume
		// position, a committed offset, is held at the first point of every
		// window still open (OldestOpen), so a window with a point before
		// it had closed. Its later points must not open it again, and
		// overwrite it with a partial rollup: they count as late.
		sr.wm = max(sr.wm, satAdd(windowStart(p.Time, pl.rollup), pl.rollup))
	}
	k := 0
	for i := range p.Fields {
		if !s.sel.selected(p.Measurement, p.Fields[i].Key) {
			continue
		}
		j := s.trackField(sr, pl, k, p.Fields[i].Key)
		k++
		if j < 0 {
			continue
		}
		sr.fields[j].Add(pl, p.Fields[i].Value)
	}
}

// Flush appends the rollup points of every open window to out and closes
// those windows for good: it moves each series' watermark to the latest end
// among its windows, so a later point for a flushed window counts as
// DroppedLate instead of opening it again (its partial rollup would
// overwrite the flushed one in InfluxDB). Use it when a partition falls
// idle, so its windows need not wait for event time to move on. The points
// are valid until the next Reset.
func (s *Stage) Flush(out []point.Point) []point.Point {
	for i := range s.series {
		out = s.flushSeries(&s.series[i], out)
	}
	return out
}

// flushSeries closes every open window of sr, as Flush does.
func (s *Stage) flushSeries(sr *series, out []point.Point) []point.Point {
	return s.flushUntil(sr, math.MaxInt64, out)
}

// flushUntil closes the open windows of sr that end at or before until and
// moves sr's watermark to the latest end among them, no further: a point
// for a later window is not late because of a flush.
func (s *Stage) flushUntil(sr *series, until int64, out []point.Point) []point.Point {
	if sr.plan == nil || sr.plan.rollup == 0 {
		return out
	}
	for j := range sr.fields {
		for _, w := range sr.fields[j].wins {
			if end := satAdd(w.start, sr.plan.rollup); end <= until {
				sr.wm = max(sr.wm, end)
			}
		}
	}
	return s.emitWindows(sr, until, out)
}

// Expire does the stage's processing-time housekeeping at now (Unix ns,
// wall time), series by series, against the processing time of each
// series' last point. A series quiet for longer than IdleFlush has the
// windows flushed (closed for good, as Flush does) that its own watermark
// would have closed had it kept moving at wall-clock pace since its last
// point: a series that stopped has its last windows written once
// Rollup + AllowedLateness (and IdleFlush) went by, while a live series
// slower than IdleFlush (a scrape every 90 s, 5-minute windows) loses none
// of its points. A series quiet for longer than IdleTimeout is forgotten,
// all its windows flushed first. The rollup points are appended to out,
// valid until the next Reset. Other series' event times play no part. It
// scans every series: call it every few seconds, not per point.
func (s *Stage) Expire(now int64, out []point.Point) []point.Point {
	if s.idle == 0 && s.idleFlush == 0 {
		return out
	}
	for i := range s.series {
		sr := &s.series[i]
		if sr.plan == nil {
			continue
		}
		quiet := quietFor(now, sr.seen)
		switch {
		case s.idle > 0 && quiet > s.idle:
			out = s.flushSeries(sr, out)
			s.nFields -= len(sr.fields)
			s.expired += uint64(len(sr.fields))
			delete(s.index, seriesKey(sr.id))
			*sr = series{}
			s.free = append(s.free, int32(i))
		case s.idleFlush > 0 && quiet > s.idleFlush:
			out = s.flushUntil(sr, satShift(sr.wm, quiet), out)
		}
	}
	return out
}

// quietFor returns now − seen, 0 when seen is not before now, and
// MaxInt64 when the difference overflows.
func quietFor(now, seen int64) int64 {
	if now <= seen {
		return 0
	}
	if d := now - seen; d > 0 {
		return d
	}
	return math.MaxInt64
}

// Reset makes the memory behind the points handed out since the last Reset
// available again: those points' Fields (and rollup points' Tags) are
// invalid afterwards. Call it once a batch was written; until then that
// memory grows with every derived point.
func (s *Stage) Reset() {
	s.fields.reset()
	s.tags.reset()
}

// Stats returns the stage's counters.
func (s *Stage) Stats() Stats {
	return Stats{Series: s.nFields, Untracked: s.untracked, DroppedLate: s.droppedLate, Expired: s.expired}
}

// planFor returns the plan of a measurement.
func (s *Stage) planFor(measurement string) *Plan {
	if s.overrides != nil {
		if o, ok := s.overrides[measurement]; ok {
			return o
		}
	}
	return s.def
}

// track returns the index of p's series in s.series, starting to track it
// when it is new; false when it is new and MaxSeries are tracked.
func (s *Stage) track(p *point.Point, pl *Plan) (int32, bool) {
	s.key = point.AppendSeriesKey(s.key[:0], p)
	idx, ok := s.index[string(s.key)]
	if !ok {
		if s.nFields >= s.maxSeries {
			return 0, false
		}
		idx = s.addSeries(p, pl)
	}
	return idx, true
}

// trackField returns the index of field name, the i-th of its point, in
// sr.fields, starting to track it when it is new; -1 when it is new and
// MaxSeries are tracked.
func (s *Stage) trackField(sr *series, pl *Plan, i int, name string) int {
	j := sr.find(i, name)
	if j < 0 && s.nFields < s.maxSeries {
		j = s.addField(sr, pl, name)
	}
	return j
}

// find returns the index of the field called name in sr.fields, or -1.
// Points of a series usually list their fields in the same order, so the
// i-th field is tried first.
func (sr *series) find(i int, name string) int {
	if i < len(sr.fields) && sr.fields[i].name() == name {
		return i
	}
	for j := range sr.fields {
		if sr.fields[j].name() == name {
			return j
		}
	}
	return -1
}

// addSeries starts tracking the series of p, whose key is in s.key.
func (s *Stage) addSeries(p *point.Point, pl *Plan) int32 {
	s.id = appendIdentity(s.id[:0], s.key, p)
	id := string(s.id)
	var idx int32
	if n := len(s.free); n > 0 {
		idx, s.free = s.free[n-1], s.free[:n-1]
	} else {
		idx = int32(len(s.series))
		s.series = append(s.series, series{})
	}
	s.series[idx] = series{
		id:     id,
		plan:   pl,
		fields: make([]fieldState, 0, min(len(p.Fields), s.maxSeries-s.nFields)),
		wm:     math.MinInt64,
	}
	s.index[seriesKey(id)] = idx
	return idx
}

// addField starts tracking field name of sr and returns its index.
func (s *Stage) addField(sr *series, pl *Plan, name string) int {
	keys, ok := s.names[nameKey{pl, name}]
	if !ok {
		keys = pl.keysFor(name)
		if len(s.names) < maxNames {
			s.names[nameKey{pl, keys[:len(name)]}] = keys
		}
	}
	f := fieldState{keys: keys, flen: uint32(len(name)), Averages: NewAverages(pl)}
	sr.fields = append(sr.fields, f)
	s.nFields++
	return len(sr.fields) - 1
}

// appendIdentity appends the identity of p's series to b: the series key,
// the measurement, the number of tags and each tag key and value, every
// string preceded by its length as a uvarint.
func appendIdentity(b, key []byte, p *point.Point) []byte {
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = appendString(b, p.Measurement)
	b = binary.AppendUvarint(b, uint64(len(p.Tags)))
	for _, t := range p.Tags {
		b = appendString(b, t.Key)
		b = appendString(b, t.Value)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// readLen reads a uvarint written by appendIdentity off s.
func readLen(s string) (int, string) {
	var n uint64
	for i, shift := 0, uint(0); i < len(s); i, shift = i+1, shift+7 {
		c := s[i]
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int(n), s[i+1:]
		}
	}
	return 0, "" // not reached: ids are well formed
}

func readString(s string) (string, string) {
	n, s := readLen(s)
	return s[:n], s[n:]
}

func seriesKey(id string) string {
	k, _ := readString(id)
	return k
}

// identity returns the measurement and tags of sr, the tags carved from the
// tag arena.
func (s *Stage) identity(sr *series) (string, []point.Tag) {
	_, rest := readString(sr.id)
	meas, rest := readString(rest)
	n, rest := readLen(rest)
	if n == 0 {
		return meas, nil
	}
	tags := s.tags.reserve(n)
	for range n {
		var k, v string
		k, rest = readString(rest)
		v, rest = readString(rest)
		tags = append(tags, point.Tag{Key: k, Value: v})
	}
	s.tags.commit(n)
	return meas, tags[:n:n]
}

// arena hands out slices of T valid until reset, reusing its chunks so that
// in steady state (the same batch sizes) it does not allocate.
type arena[T any] struct {
	chunks [][]T
	cur    int // chunk being filled
}

// arenaChunk is the length of a chunk: 4096 fields are 96 KiB, enough for a
// few thousand derived points before the next chunk is needed.
const arenaChunk = 4096

// reserve returns an empty slice with room for n elements (n ≥ 1); commit
// then says how many of them were used.
func (a *arena[T]) reserve(n int) []T {
	for ; a.cur < len(a.chunks); a.cur++ {
		if c := a.chunks[a.cur]; cap(c)-len(c) >= n {
			return c[len(c):len(c):cap(c)]
		}
	}
	a.chunks = append(a.chunks, make([]T, 0, max(arenaChunk, n)))
	return a.chunks[a.cur][:0]
}

func (a *arena[T]) commit(n int) {
	c := a.chunks[a.cur]
	a.chunks[a.cur] = c[:len(c)+n]
}

func (a *arena[T]) reset() {
	for i := range a.chunks {
		a.chunks[i] = a.chunks[i][:0]
	}
	a.cur = 0
}
