package movavg

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/point"
)

// t0 is a minute boundary (2023-11-14T22:14:00Z); test times are seconds
// after it.
const t0 = 1_700_000_040 * int64(time.Second)

func at(sec float64) int64 { return t0 + int64(sec*float64(time.Second)) }

// pt builds a point: pt("cpu,host=a", at(1), "usage", 0.5, "idle", 0.4).
func pt(series string, t int64, kv ...any) *point.Point {
	parts := strings.Split(series, ",")
	p := &point.Point{Measurement: parts[0], Time: t}
	for _, tag := range parts[1:] {
		k, v, _ := strings.Cut(tag, "=")
		p.Tags = append(p.Tags, point.Tag{Key: k, Value: v})
	}
	for i := 0; i < len(kv); i += 2 {
		p.Fields = append(p.Fields, point.Field{Key: kv[i].(string), Value: toFloat(kv[i+1])})
	}
	return p
}

func toFloat(v any) float64 {
	switch v := v.(type) {
	case int:
		return float64(v)
	case float64:
		return v
	}
	panic("not a number")
}

// dump renders a point on one line, its time in seconds after t0 and its
// values with 10 significant digits: "cpu,host=a @60 usage_count=3 ...".
func dump(p point.Point) string {
	var b strings.Builder
	b.WriteString(p.Measurement)
	for _, t := range p.Tags {
		b.WriteString("," + t.Key + "=" + t.Value)
	}
	b.WriteString(" @" + strconv.FormatFloat(float64(p.Time-t0)/1e9, 'g', -1, 64))
	for _, f := range p.Fields {
		b.WriteString(" " + f.Key + "=" + strconv.FormatFloat(f.Value, 'g', 10, 64))
	}
	return b.String()
}

func dumpAll(ps []point.Point) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = dump(p)
	}
	return out
}

func mustNew(t testing.TB, cfg Config) *Stage {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// step is one Process call of a scenario and the points it must append.
type step struct {
	p    *point.Point
	want []string
	late bool // want Result.DroppedLate == 1
}

// run runs a scenario, checking each step's output.
func run(t *testing.T, s *Stage, steps ...step) {
	t.Helper()
	for i, st := range steps {
		out, res := s.ProcessResult(st.p, 0, nil)
		if got := dumpAll(out); strings.Join(got, "\n") != strings.Join(st.want, "\n") {
			t.Fatalf("step %d (%s): got\n\t%s\nwant\n\t%s", i, dump(*st.p), strings.Join(got, "\n\t"), strings.Join(st.want, "\n\t"))
		}
		if want := map[bool]int{true: 1}[st.late]; res.DroppedLate != want {
			t.Fatalf("step %d: DroppedLate = %d, want %d", i, res.DroppedLate, want)
		}
	}
}

func TestDerivedPoint(t *testing.T) {
	s := mustNew(t, Config{Default: Params{SMAWindow: 2, EMAAlpha: 0.5}, MaxSeries: 10})
	p1 := pt("cpu,host=a,region=eu", at(1), "usage", 1, "idle", 3)
	out, res := s.ProcessResult(p1, 0, nil)
	if res != (Result{Derived: true}) || len(out) != 1 {
		t.Fatalf("first point: %q, %+v", dumpAll(out), res)
	}
	// EMA from the first point, no SMA during warm-up.
	if got, want := dump(out[0]), "cpu,host=a,region=eu @1 usage_ema=1 idle_ema=3"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if &out[0].Tags[0] != &p1.Tags[0] {
		t.Fatal("derived point does not share the input's tags")
	}
	// Fields in another order, and a new field, are fine.
	p2 := pt("cpu,host=a,region=eu", at(2), "idle", 5, "usage", 2, "steal", 7)
	out, _ = s.ProcessResult(p2, 0, out[:0])
	if got, want := dump(out[0]), "cpu,host=a,region=eu @2 idle_sma=4 idle_ema=4 usage_sma=1.5 usage_ema=1.5 steal_ema=7"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if f := out[0].Fields; cap(f) != len(f) {
		t.Fatalf("Fields has cap %d > len %d: an append by the caller would overwrite the arena", cap(f), len(f))
	}
	if st := s.Stats(); st.Series != 3 {
		t.Fatalf("stats %+v", st)
	}
	// Rollup-only or everything-off measurements derive no point.
	s = mustNew(t, Config{Default: Params{Rollup: time.Minute}, Overrides: map[string]Params{"off": {}}, MaxSeries: 10})
	for _, p := range []*point.Point{pt("cpu", at(1), "v", 1), pt("off", at(2), "v", 1)} {
		if out, res := s.ProcessResult(p, 0, nil); len(out) != 0 || res != (Result{}) {
			t.Fatalf("%s: %q, %+v", dump(*p), dumpAll(out), res)
		}
	}
	if st := s.Stats(); st.Series != 1 || len(s.index) != 1 {
		t.Fatalf("stats %+v: the off measurement must not be tracked", st)
	}
}

func TestOverrides(t *testing.T) {
	s := mustNew(t, Config{
		Default:   Params{EMAAlpha: 0.5},
		Overrides: map[string]Params{"mem": {SMAWindow: 2}},
		MaxSeries: 10,
	})
	run(t, s,
		step{p: pt("cpu", at(1), "v", 2), want: []string{"cpu @1 v_ema=2"}},
		step{p: pt("mem", at(1), "v", 2)},
		step{p: pt("mem", at(2), "v", 4), want: []string{"mem @2 v_sma=3"}},
		step{p: pt("cpu", at(2), "v", 4), want: []string{"cpu @2 v_ema=3"}},
	)
}

func TestMaxSeries(t *testing.T) {
	s := mustNew(t, Config{Default: Params{EMAAlpha: 1}, MaxSeries: 3})
	f := func(p *point.Point, want string, untracked bool) {
		t.Helper()
		out, res := s.ProcessResult(p, 0, nil)
		if got := strings.Join(dumpAll(out), "\n"); got != want || res.Untracked != untracked {
			t.Fatalf("%s: got %q untracked=%v, want %q untracked=%v", dump(*p), got, res.Untracked, want, untracked)
		}
	}
	f(pt("cpu,host=a", at(1), "v", 1), "cpu,host=a @1 v_ema=1", false)
	f(pt("cpu,host=b", at(1), "v", 2, "w", 3), "cpu,host=b @1 v_ema=2 w_ema=3", false)
	f(pt("cpu,host=c", at(1), "v", 4), "", true)                              // a 4th series-field
	f(pt("cpu,host=a", at(2), "v", 5, "w", 6), "cpu,host=a @2 v_ema=5", true) // a new field of a known series
	f(pt("cpu,host=b", at(2), "v", 7), "cpu,host=b @2 v_ema=7", false)
	if st := s.Stats(); st.Series != 3 || st.Untracked != 2 {
		t.Fatalf("stats %+v, want 3 series and 2 untracked points", st)
	}
	if len(s.index) != 2 {
		t.Fatalf("%d series indexed, want 2: untracked series must not take memory", len(s.index))
	}
}

func TestArenaReuse(t *testing.T) {
	s := mustNew(t, Config{Default: Params{EMAAlpha: 1}, MaxSeries: 10})
	out, _ := s.ProcessResult(pt("cpu", at(1), "v", 1), 0, nil)
	first := &out[0].Fields[0]
	out, _ = s.ProcessResult(pt("cpu", at(2), "v", 2), 0, out)
	if dumpAll(out)[0] != "cpu @1 v_ema=1" {
		t.Fatalf("a later Process call changed an earlier point: %q", dumpAll(out))
	}
	s.Reset()
	out, _ = s.ProcessResult(pt("cpu", at(3), "v", 3), 0, out[:0])
	if &out[0].Fields[0] != first {
		t.Fatal("Reset did not make the arena reusable")
	}
}

// TestProcessDoesNotAllocate drives a steady state with every feature on,
// windows closing and lateness, and fails on any allocation per point.
func TestProcessDoesNotAllocate(t *testing.T) {
	s := mustNew(t, Config{
		Default:         Params{SMAWindow: 30, EMAAlpha: 0.1, WMAWeights: []float64{0.5, 0.3, 0.2}, Rollup: time.Second},
		AllowedLateness: 500 * time.Millisecond,
		MaxSeries:       1000,
	})
	const nSeries = 100
	pts := make([]point.Point, nSeries)
	for i := range pts {
		pts[i] = *pt("cpu,host=h"+strconv.Itoa(i)+",region=eu", 0, "usage", 0, "idle", 0)
	}
	out := make([]point.Point, 0, 1024)
	n := 0
	feed := func() {
		p := &pts[n%nSeries]
		// 10 points per series and second, every 7th one 800ms late.
		p.Time = t0 + int64(n/nSeries)*int64(100*time.Millisecond)
		if n%7 == 0 {
			p.Time -= int64(800 * time.Millisecond)
		}
		p.Fields[0].Value, p.Fields[1].Value = float64(n%13), float64(n%5)
		out, _ = s.ProcessResult(p, 0, out)
		if n++; n%500 == 0 {
			s.Reset()
			out = out[:0]
		}
	}
	for range 20 * nSeries * 10 { // 20 s of event time
		feed()
	}
	if avg := testing.AllocsPerRun(20_000, feed); avg != 0 {
		t.Fatalf("Process allocates %v times per point in steady state, want 0", avg)
	}
	// AllocsPerRun rounds down: also count every allocation of long runs.
	// Mallocs counts the whole process, and the runtime itself allocates a
	// few bytes now and then (one run in forty saw 16 bytes), so a window
	// may be unlucky; an allocation of Process shows in every window.
	var counts []uint64
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 20_000 {
			feed()
		}
		runtime.ReadMemStats(&after)
		if counts = append(counts, after.Mallocs-before.Mallocs); counts[len(counts)-1] == 0 {
			break
		}
	}
	if slices.Min(counts) != 0 {
		t.Fatalf("allocations in windows of 20,000 points of steady state: %v, want a window with 0", counts)
	}
	if st := s.Stats(); st.DroppedLate == 0 || st.Series != 2*nSeries {
		t.Fatalf("scenario did not exercise lateness: %+v", st)
	}
}

// TestWarmResumesTheMovingAverages replays points through Warm, as a
// consumer does after a restart, and checks that what Process derives from
// the resume position on is what an uninterrupted run derived, and that
// Warm itself emits no rollups but moves the watermark.
func TestWarmResumesTheMovingAverages(t *testing.T) {
	cfg := Config{
		Default:         Params{SMAWindow: 5, EMAAlpha: 0.3, WMAWeights: []float64{0.5, 0.3, 0.2}, Rollup: time.Minute},
		AllowedLateness: 10 * time.Second,
		MaxSeries:       100,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var pts []*point.Point
	for i := range 400 {
		series := "cpu,host=" + strconv.Itoa(i%2)
		late := 0.0
		if i == 300 { // its window closed at 130 s
			late = 40
		}
		pts = append(pts, pt(series, at(float64(i/2)-late), "usage", rng.NormFloat64()*10+50, "idle", float64(i%7)))
	}
	// derived returns each moving-average value from the resume position
	// on, by series, field and time, and how many points were dropped late.
	derived := func(s *Stage, from int) (map[string]float64, uint64) {
		got := map[string]float64{}
		var out []point.Point
		for _, p := range pts[from:] {
			var res Result
			out, res = s.ProcessResult(p, 0, out[:0])
			if res.Derived {
				d := out[len(out)-1]
				for _, f := range d.Fields {
					got[dump(point.Point{Measurement: d.Measurement, Tags: d.Tags, Time: d.Time})+" "+f.Key] = f.Value
				}
			}
			s.Reset()
		}
		return got, s.Stats().DroppedLate
	}
	// 100 points of each series warmed, up to t = 119 s. 240 is a position
	// a consumer commits: once the points up to 130 s closed the window
	// [60 s, 120 s), the oldest window open starts there.
	const resume, warm = 240, 200
	want, _ := derived(mustNew(t, cfg), 0)
	cold, _ := derived(mustNew(t, cfg), resume)

	s := mustNew(t, cfg)
	for _, p := range pts[resume-warm : resume] {
		s.Warm(p, 0)
	}
	if st := s.Stats(); st.Series != 4 {
		t.Fatalf("after Warm: %+v, want 4 series-fields", st)
	}
	for i := range s.series {
		if want := at(120); s.series[i].wm != want {
			t.Fatalf("after Warm: series %d's watermark %d, want %d, the end of its last warm point's window", i, s.series[i].wm, want)
		}
	}
	if out := s.Flush(nil); len(out) != 0 {
		t.Fatalf("Warm opened rollup windows: %v", dumpAll(out))
	}
	got, late := derived(s, resume)
	if late != 1 {
		t.Errorf("dropped late: %d after Warm, want 1 as uninterrupted", late)
	}
	if len(got) != len(cold)+2*2*(5-1)+2*2*(3-1) {
		t.Errorf("%d derived values after Warm, %d cold: want the cold run's plus SMA and WMA from the first point", len(got), len(cold))
	}
	for k, v := range got {
		w, ok := want[k]
		if !ok || math.Abs(v-w) > 1e-12*math.Abs(w) {
			t.Errorf("%s = %v after Warm, uninterrupted %v", k, v, w)
		}
	}
	var differs int
	for k, v := range cold {
		if v != want[k] {
			differs++
		}
	}
	if differs == 0 {
		t.Error("a cold resume derived the same values: the scenario does not exercise Warm")
	}
}

func TestIdentityRoundTrip(t *testing.T) {
	s := mustNew(t, Config{Default: Params{Rollup: time.Minute}, MaxSeries: 10})
	tagged := &point.Point{Measurement: "net io", Tags: []point.Tag{{Key: "if ace", Value: "a,b=c"}, {Key: "z", Value: strings.Repeat("x", 300)}},
		Fields: []point.Field{{Key: "rx", Value: 1}}, Time: at(1)}
	s.ProcessResult(tagged, 0, nil)
	s.ProcessResult(pt("bare", at(2), "v", 2), 0, nil)
	out := s.Flush(nil)
	if len(out) != 2 {
		t.Fatalf("flush: %q", dumpAll(out))
	}
	if out[0].Measurement != "net io" || len(out[0].Tags) != 2 || out[0].Tags[0] != tagged.Tags[0] || out[0].Tags[1] != tagged.Tags[1] {
		t.Fatalf("rollup identity %q %+v, want %q %+v", out[0].Measurement, out[0].Tags, tagged.Measurement, tagged.Tags)
	}
	if out[1].Measurement != "bare" || out[1].Tags != nil {
		t.Fatalf("rollup identity %q %+v", out[1].Measurement, out[1].Tags)
	}
}

func TestOldestOpenTracksWindowsStillInMemory(t *testing.T) {
	s, err := New(Config{Default: Params{Rollup: time.Minute}, MaxSeries: 10})
	if err != nil {
		t.Fatal(err)
	}
	pt := func(series string, at time.Duration) *point.Point {
		return &point.Point{Measurement: "m", Tags: []point.Tag{{Key: "s", Value: series}},
			Fields: []point.Field{{Key: "v", Value: 1}}, Time: int64(at)}
	}
	if _, open := s.OldestOpen(); open {
		t.Fatal("open window before any point")
	}
	var out []point.Point
	f := func(seq int64, series string, at time.Duration, wantOldest int64, wantOpen bool) {
		t.Helper()
		s.Mark(seq)
		out, _ = s.ProcessResult(pt(series, at), 0, out[:0])
		got, open := s.OldestOpen()
		if open != wantOpen || (open && got != wantOldest) {
			t.Fatalf("after offset %d: OldestOpen = %d, %v; want %d, %v", seq, got, open, wantOldest, wantOpen)
		}
	}
	f(10, "a", 10*time.Second, 10, true)
	f(11, "b", 20*time.Second, 10, true)
	f(12, "a", 50*time.Second, 10, true)
	f(13, "a", 70*time.Second, 11, true) // closes a's first-minute window; b's waits for b
	f(14, "b", 80*time.Second, 13, true)
	s.Reset()
	out = s.Flush(out[:0])
	if _, open := s.OldestOpen(); open {
		t.Fatal("open window after Flush")
	}
}

// TestWarmLeavesWrittenWindowsAlone restarts a stage the way the consumer
// does without a checkpoint: from the committed offset, which OldestOpen
// held at the oldest window still open, after warming up on the points
// before it. A window of another series that had points before that offset
// was closed and written whole by then; the restart must not open it again
// with only its later points and overwrite it with a partial rollup.
func TestWarmLeavesWrittenWindowsAlone(t *testing.T) {
	cfg := Config{Default: Params{SMAWindow: 3, Rollup: time.Minute}, MaxSeries: 100}
	rng := rand.New(rand.NewPCG(3, 4))
	var pts []*point.Point
	next := map[string]float64{}
	for range 600 {
		// Four series at different paces, in a random interleaving.
		s := "cpu,host=" + strconv.Itoa(rng.IntN(4))
		next[s] += float64(5 + 10*len(s)%7 + rng.IntN(20))
		pts = append(pts, pt(s, at(next[s]), "usage", rng.NormFloat64()))
	}
	// stored applies rollup points to a table, the later write winning, as
	// InfluxDB does.
	stored := func(db map[string]string, out []point.Point) {
		for _, p := range out {
			if len(p.Fields) > 0 && strings.HasSuffix(p.Fields[0].Key, sufCount) {
				db[dump(point.Point{Measurement: p.Measurement, Tags: p.Tags, Time: p.Time})] = dump(p)
			}
		}
	}
	process := func(s *Stage, db map[string]string, from, to int) {
		for i := from; i < to; i++ {
			s.Mark(int64(i))
			out, _ := s.ProcessResult(pts[i], 0, nil)
			stored(db, out)
			s.Reset()
		}
	}
	want := map[string]string{}
	whole := mustNew(t, cfg)
	process(whole, want, 0, len(pts))
	stored(want, whole.Flush(nil))

	var rewritten int
	for _, crash := range []int{50, 133, 287, 401, 555} {
		got := map[string]string{}
		first := mustNew(t, cfg)
		process(first, got, 0, crash)
		committed := int64(crash)
		if o, ok := first.OldestOpen(); ok {
			committed = o
		}
		restarted := mustNew(t, cfg)
		for _, p := range pts[:committed] {
			restarted.Warm(p, 0)
		}
		process(restarted, got, int(committed), len(pts))
		stored(got, restarted.Flush(nil))
		for k, w := range want {
			if got[k] != w {
				rewritten++
				if rewritten <= 3 {
					t.Errorf("crash at %d, resumed at %d: rollup %s\n got %s\nwant %s", crash, committed, k, got[k], w)
				}
			}
		}
	}
	if rewritten > 0 {
		t.Errorf("%d rollups of %d differ after restarts", rewritten, len(want))
	}
}
