package movavg

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/stream"
)

// checkpointConfig uses every feature whose state a checkpoint holds.
func checkpointConfig() Config {
	return Config{
		Default:         Params{SMAWindow: 6, EMAAlpha: 0.2, WMAWeights: []float64{0.5, 0.3, 0.2}, Rollup: time.Minute},
		Overrides:       map[string]Params{"net": {EMAAlpha: 0.5, Rollup: 5 * time.Minute}, "off": {}},
		AllowedLateness: 10 * time.Second,
		MaxSeries:       9,
		IdleFlush:       time.Minute,
		IdleTimeout:     10 * time.Minute,
		Fields:          []FieldPattern{{"*", "*"}},
	}
}

// checkpointScenario returns the points of a partition: three series whose
// times lie years apart, a net series (its own plan) that stops early, is
// idle-flushed and then expired, a measurement computing nothing, and a
// series beyond MaxSeries. More than 13 points share some windows, so that
// P² takes over from the exact samples.
func checkpointScenario() []*point.Point {
	pts := yearsApart(400) // 6 series-fields
	var out []*point.Point
	for i, p := range pts {
		out = append(out, p)
		switch {
		case i < 300 && i%3 == 0:
			out = append(out, pt("net,host=z", at(float64(i)), "rx", float64(i%17)))
		case i%50 == 7:
			out = append(out, pt("off,host=z", at(float64(i)), "v", 1))
		case i%10 == 5:
			out = append(out, pt("mem,host=m", at(float64(i)), "used", float64(i%23), "free", float64(100-i%23)))
		case i%40 == 9:
			out = append(out, pt("mem,host=q", at(float64(i)), "used", 1)) // the 10th series-field: untracked
		}
		if i < 300 && i%3 == 1 { // bursts within a second: windows of 20 points and more
			out = append(out, pt("net,host=z", at(float64(i)+0.5), "rx", float64(i%5)))
		}
	}
	return out
}

// feeder runs a scenario on a Stage as a consumer would: each point marked
// with its index, processing time one second per point (shifted by the
// downtime after a restore), Expire every 25 points, a partition-idle Flush
// at point 1000, Reset after every point. It renders what each point gives.
type feeder struct {
	s     *Stage
	shift int64 // downtime so far
	out   []point.Point
}

func (f *feeder) now(i int) int64 { return wall(i)*1000 + f.shift } // a second per point

func (f *feeder) feed(i int, p *point.Point) []string {
	f.s.Mark(int64(i))
	var res Result
	f.out, res = f.s.ProcessResult(p, f.now(i), f.out[:0])
	if i%25 == 24 {
		f.out = f.s.Expire(f.now(i), f.out)
	}
	if i == 1000 {
		f.out = f.s.Flush(f.out)
	}
	got := make([]string, 0, len(f.out)+1)
	for _, q := range f.out {
		got = append(got, exact(q))
	}
	oldest, open := f.s.OldestOpen()
	got = append(got, fmt.Sprintf("late=%d untracked=%v oldest=%d,%v %+v", res.DroppedLate, res.Untracked, oldest, open, f.s.Stats().Series))
	f.s.Reset()
	return got
}

// TestCheckpointRestoreContinuesExactly: for several split points k, a
// stage checkpointed after point k, restored into a new Stage after an hour
// of downtime and fed the rest gives, bit for bit, what the uninterrupted
// stage gave: derived values, rollups (P² included), late and untracked
// points, expiry, idle flushes and OldestOpen.
func TestCheckpointRestoreContinuesExactly(t *testing.T) {
	cfg := checkpointConfig()
	pts := checkpointScenario()
	ref := &feeder{s: mustNew(t, cfg)}
	want := make([][]string, len(pts))
	for i, p := range pts {
		want[i] = ref.feed(i, p)
	}
	if st := ref.s.Stats(); st.DroppedLate == 0 || st.Expired == 0 || st.Untracked == 0 {
		t.Fatalf("scenario does not exercise lateness, expiry and MaxSeries: %+v", st)
	}
	wantFinal := fmt.Sprint(bySeries(ref.s.Flush(nil)))
	for _, k := range []int{0, 1, 2, 37, 333, 700, 1000, 1001, 1500, len(pts) - 1, len(pts)} {
		t.Run(strconv.Itoa(k), func(t *testing.T) {
			a := &feeder{s: mustNew(t, cfg)}
			for i, p := range pts[:k] {
				a.feed(i, p)
			}
			taken := a.now(k)
			cp := a.s.Checkpoint([]byte("prefix"))
			if !bytes.HasPrefix(cp, []byte("prefix")) {
				t.Fatal("Checkpoint did not append to dst")
			}
			cp = cp[len("prefix"):]

			// Restored at the time it was taken, it checkpoints to the same bytes.
			same := mustNew(t, cfg)
			if err := same.Restore(cp, taken, taken); err != nil {
				t.Fatal(err)
			}
			if again := same.Checkpoint(nil); !bytes.Equal(again, cp) {
				t.Fatalf("checkpoint of the restored stage differs: %d bytes, %d before", len(again), len(cp))
			}

			b := &feeder{s: mustNew(t, cfg), shift: int64(time.Hour)}
			b.s.untracked = 99 // counters are not state: Restore keeps them
			if err := b.s.Restore(cp, taken, taken+b.shift); err != nil {
				t.Fatal(err)
			}
			if b.s.Stats().Untracked != 99 {
				t.Fatal("Restore reset the counters")
			}
			for i, p := range pts[k:] {
				got := b.feed(k+i, p)
				if fmt.Sprint(got) != fmt.Sprint(want[k+i]) {
					t.Fatalf("point %d (%s) after a restore at %d: got\n\t%q\nwant\n\t%q", k+i, exact(*p), k, got, want[k+i])
				}
			}
			if got := fmt.Sprint(bySeries(b.s.Flush(nil))); got != wantFinal {
				t.Fatalf("final flush: got %v, want %v", got, wantFinal)
			}
		})
	}
}

// validCheckpoint returns the checkpoint of a stage in the middle of
// checkpointScenario.
func validCheckpoint(t testing.TB) []byte {
	f := &feeder{s: mustNew(t, checkpointConfig())}
	for i, p := range checkpointScenario()[:700] {
		f.feed(i, p)
	}
	return f.s.Checkpoint(nil)
}

func emptyStage(t *testing.T, s *Stage) {
	t.Helper()
	if st := s.Stats(); st.Series != 0 || len(s.index) != 0 || len(s.series) != 0 || len(s.free) != 0 {
		t.Fatalf("stage not left empty: %+v, %d indexed, %d slots", st, len(s.index), len(s.series))
	}
	// and usable
	if out := s.Process(pt("disk,host=h0", at(1), "used", 1), 0, nil); len(out) != 1 {
		t.Fatalf("after a failed restore: %q", dumpAll(out))
	}
}

// TestRestoreRefusesIncompatible: a checkpoint of another kind, version or
// configuration is refused with ErrIncompatible and leaves the stage empty;
// settings that do not change what the state means do not matter.
func TestRestoreRefusesIncompatible(t *testing.T) {
	cp := validCheckpoint(t)
	f := func(name string, src []byte, mutate func(*Config), wantErr error) {
		t.Helper()
		cfg := checkpointConfig()
		mutate(&cfg)
		s := mustNew(t, cfg)
		s.Process(pt("disk,host=old", at(0), "used", 1), 0, nil) // to be replaced
		err := s.Restore(src, 0, 0)
		if wantErr == nil {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			return
		}
		if !errors.Is(err, wantErr) {
			t.Errorf("%s: %v, want %v", name, err, wantErr)
			return
		}
		emptyStage(t, s)
	}
	same := func(*Config) {}
	f("same", cp, same, nil)
	hdr := len(stream.AppendHeader(nil, checkpointKind, checkpointVersion, configHash(checkpointConfig())))
	f("another kind", append(stream.AppendHeader(nil, "forecast", checkpointVersion, configHash(checkpointConfig())), cp[hdr:]...), same, stream.ErrIncompatible)
	f("another version", append(stream.AppendHeader(nil, checkpointKind, checkpointVersion+1, configHash(checkpointConfig())), cp[hdr:]...), same, stream.ErrIncompatible)
	for name, mutate := range map[string]func(*Config){
		"sma":              func(c *Config) { c.Default.SMAWindow++ },
		"ema":              func(c *Config) { c.Default.EMAAlpha = math.Nextafter(c.Default.EMAAlpha, 1) },
		"wma":              func(c *Config) { c.Default.WMAWeights = []float64{0.5, 0.3, 0.2, 0} },
		"wma off":          func(c *Config) { c.Default.WMAWeights = nil },
		"rollup":           func(c *Config) { c.Default.Rollup = 2 * time.Minute },
		"override":         func(c *Config) { c.Overrides["net"] = Params{EMAAlpha: 0.5, Rollup: time.Minute} },
		"override renamed": func(c *Config) { c.Overrides["nat"] = c.Overrides["net"]; delete(c.Overrides, "net") },
		"lateness":         func(c *Config) { c.AllowedLateness = 20 * time.Second },
		"fields":           func(c *Config) { c.Fields = nil },
		"max series lower": func(c *Config) { c.MaxSeries = 8 },
	} {
		f(name, cp, mutate, stream.ErrIncompatible)
	}
	for name, mutate := range map[string]func(*Config){
		"max series higher": func(c *Config) { c.MaxSeries = 1000 },
		"idle timeout":      func(c *Config) { c.IdleTimeout = time.Hour },
		"idle flush":        func(c *Config) { c.IdleFlush = 0 },
	} {
		f(name, cp, mutate, nil)
	}
}

// TestRestoreRefusesCorrupt: every truncation of a checkpoint, and bytes
// added after it, are ErrCorrupt, never a panic; the stage is left empty.
func TestRestoreRefusesCorrupt(t *testing.T) {
	cp := validCheckpoint(t)
	s := mustNew(t, checkpointConfig())
	for n := range len(cp) {
		if err := s.Restore(cp[:n], 0, 0); !errors.Is(err, stream.ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: %v, want ErrCorrupt", n, len(cp), err)
		}
		if s.nFields != 0 || len(s.series) != 0 {
			t.Fatalf("truncated to %d bytes: stage not left empty", n)
		}
	}
	if err := s.Restore(append(cp[:len(cp):len(cp)], 0), 0, 0); !errors.Is(err, stream.ErrCorrupt) {
		t.Fatalf("a byte too many: %v, want ErrCorrupt", err)
	}
	emptyStage(t, s)
	// Every single-byte change decodes to an error or to a usable stage.
	step := 1
	if testing.Short() {
		step = 7
	}
	for i := 0; i < len(cp); i += step {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(cp)
			b[i] ^= x
			restoreAndUse(t, b)
		}
	}
}

// restoreAndUse restores src into a fresh stage and, when it is accepted,
// drives the stage a little and checks that it checkpoints to something it
// restores identically.
func restoreAndUse(t *testing.T, src []byte) {
	t.Helper()
	s := mustNew(t, checkpointConfig())
	if err := s.Restore(src, 0, 0); err != nil {
		if !errors.Is(err, stream.ErrCorrupt) && !errors.Is(err, stream.ErrIncompatible) {
			t.Fatalf("Restore(%x): %v, want ErrCorrupt or ErrIncompatible", src, err)
		}
		if s.nFields != 0 || len(s.series) != 0 || len(s.index) != 0 {
			t.Fatalf("Restore(%x) failed but left state behind", src)
		}
		return
	}
	cp := s.Checkpoint(nil)
	again := mustNew(t, checkpointConfig())
	if err := again.Restore(cp, 0, 0); err != nil {
		t.Fatalf("re-restore of an accepted checkpoint: %v", err)
	}
	if b := again.Checkpoint(nil); !bytes.Equal(b, cp) {
		t.Fatal("an accepted checkpoint does not round-trip")
	}
	var out []point.Point
	for i, p := range yearsApart(20) {
		out = s.Process(p, int64(i), out)
	}
	out = s.Expire(math.MaxInt64/2, out)
	out = s.Flush(out)
	s.OldestOpen()
	_ = out
}

// FuzzRestore: Restore never panics; it refuses with ErrCorrupt or
// ErrIncompatible, leaving the stage empty, or accepts a state that works
// and round-trips.
func FuzzRestore(f *testing.F) {
	f.Add(validCheckpoint(f))
	small := mustNew(f, checkpointConfig())
	small.Process(pt("disk,host=a", at(0), "used", 1), 0, nil)
	f.Add(small.Checkpoint(nil))
	f.Add(mustNew(f, checkpointConfig()).Checkpoint(nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, src []byte) { restoreAndUse(t, src) })
}
