package movavg

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/point"
)

func rollupConfig(lateness time.Duration) Config {
	return Config{Default: Params{Rollup: time.Minute}, AllowedLateness: lateness, MaxSeries: 100}
}

// TestRollupClosesAtWatermark: a series' windows close when its own
// watermark passes their end, whatever the other series' times.
func TestRollupClosesAtWatermark(t *testing.T) {
	s := mustNew(t, rollupConfig(0))
	run(t, s,
		step{p: pt("cpu,host=a", at(0), "v", 1)},
		step{p: pt("cpu,host=a", at(50), "v", 2)}, // last by event time
		step{p: pt("cpu,host=a", at(10), "v", 3)}, // in order enough: window still open
		step{p: pt("cpu,host=b", at(59.999), "v", 7)},
		// b's watermark reaches 60s: b's window closes, one point at the
		// window start. a's stays open: its own time is 50s.
		step{p: pt("cpu,host=b", at(60), "v", 8), want: []string{
			"cpu,host=b @0 v_count=1 v_mean=7 v_min=7 v_max=7 v_last=7 v_p95=7",
		}},
		step{p: pt("cpu,host=a", at(30), "v", 9)},
		// p95 of 4 samples is exact (type 7): 3 + 0.85·(9−3).
		step{p: pt("cpu,host=a", at(60), "v", 4), want: []string{
			"cpu,host=a @0 v_count=4 v_mean=3.75 v_min=1 v_max=9 v_last=2 v_p95=8.1",
		}},
		step{p: pt("cpu,host=a", at(30), "v", 9), late: true}, // lateness 0: closed
		step{p: pt("cpu,host=a", at(61), "v", 4)},
		// A jump over several windows closes the open ones; empty windows
		// emit nothing; b's window waits for b.
		step{p: pt("cpu,host=a", at(300), "v", 5), want: []string{
			"cpu,host=a @60 v_count=2 v_mean=4 v_min=4 v_max=4 v_last=4 v_p95=4",
		}},
	)
	if st := s.Stats(); st.DroppedLate != 1 {
		t.Fatalf("stats %+v", st)
	}
	if got := dumpAll(s.Flush(nil)); strings.Join(got, "|") != "cpu,host=a @300 v_count=1 v_mean=5 v_min=5 v_max=5 v_last=5 v_p95=5|"+
		"cpu,host=b @60 v_count=1 v_mean=8 v_min=8 v_max=8 v_last=8 v_p95=8" {
		t.Fatalf("flush: %q", got)
	}
	if openWindows(s) != 0 || len(s.Flush(nil)) != 0 {
		t.Fatal("flush left windows behind")
	}
}

func TestRollupLateness(t *testing.T) {
	s := mustNew(t, Config{Default: Params{Rollup: time.Minute, EMAAlpha: 1}, AllowedLateness: 10 * time.Second, MaxSeries: 100})
	run(t, s,
		step{p: pt("cpu", at(0), "v", 1), want: []string{"cpu @0 v_ema=1"}},
		step{p: pt("cpu", at(30), "v", 2), want: []string{"cpu @30 v_ema=2"}},
		step{p: pt("cpu", at(65), "v", 5), want: []string{"cpu @65 v_ema=5"}}, // watermark 55s: [0,60) stays open
		step{p: pt("cpu", at(20), "v", 4), want: []string{"cpu @20 v_ema=4"}}, // late, but its window is open
		step{p: pt("cpu", at(30), "v", 6), want: []string{"cpu @30 v_ema=6"}}, // ties on event time: last arrival wins
		step{p: pt("cpu", at(70), "v", 3), want: []string{ // watermark 60s
			"cpu @0 v_count=4 v_mean=3.25 v_min=1 v_max=6 v_last=6 v_p95=5.7",
			"cpu @70 v_ema=3",
		}},
		// Too late: no rollup, but the moving averages still see it.
		step{p: pt("cpu", at(5), "v", 100), late: true, want: []string{"cpu @5 v_ema=100"}},
		step{p: pt("cpu", at(59), "v", 100), late: true, want: []string{"cpu @59 v_ema=100"}},
		step{p: pt("cpu", at(61), "v", 1), want: []string{"cpu @61 v_ema=1"}},
		step{p: pt("cpu", at(130), "v", 2), want: []string{ // watermark 120s
			"cpu @60 v_count=3 v_mean=3 v_min=1 v_max=5 v_last=3 v_p95=4.8",
			"cpu @130 v_ema=2",
		}},
		step{p: pt("cpu", at(119), "v", 0), late: true, want: []string{"cpu @119 v_ema=0"}},
	)
	if st := s.Stats(); st.DroppedLate != 3 {
		t.Fatalf("DroppedLate = %d, want 3", st.DroppedLate)
	}
}

func TestRollupGroupsFields(t *testing.T) {
	s := mustNew(t, rollupConfig(30*time.Second))
	run(t, s,
		step{p: pt("cpu,host=a", at(0), "a", 1, "b", 10)},
		step{p: pt("cpu,host=a", at(10), "a", 3)},
		step{p: pt("cpu,host=a", at(70), "b", 20)}, // a has no point in [60,120)
		step{p: pt("cpu,host=a", at(45), "c", 5)},  // a late new field joins the open window
		step{p: pt("cpu,host=a", at(90), "a", 2), want: []string{
			"cpu,host=a @0 a_count=2 a_mean=2 a_min=1 a_max=3 a_last=3 a_p95=2.9" +
				" b_count=1 b_mean=10 b_min=10 b_max=10 b_last=10 b_p95=10" +
				" c_count=1 c_mean=5 c_min=5 c_max=5 c_last=5 c_p95=5",
		}},
		step{p: pt("cpu,host=a", at(150), "a", 2), want: []string{
			"cpu,host=a @60 a_count=1 a_mean=2 a_min=2 a_max=2 a_last=2 a_p95=2" +
				" b_count=1 b_mean=20 b_min=20 b_max=20 b_last=20 b_p95=20",
		}},
	)
}

func TestRollupOverflow(t *testing.T) {
	s := mustNew(t, rollupConfig(0))
	s.ProcessResult(pt("m", at(0), "v", 1.5e308), 0, nil)
	s.ProcessResult(pt("m", at(1), "v", 1.5e308), 0, nil)
	out := s.Flush(nil)
	// The mean overflows and is left out.
	if got := dumpAll(out); strings.Join(got, "|") != "m @0 v_count=2 v_min=1.5e+308 v_max=1.5e+308 v_last=1.5e+308 v_p95=1.5e+308" {
		t.Fatalf("got %q", got)
	}
}

// TestExpire: series idle in processing time are forgotten after
// IdleTimeout, their windows flushed first, whatever their event times.
func TestExpire(t *testing.T) {
	cfg := rollupConfig(0)
	cfg.Default.SMAWindow = 2
	cfg.IdleTimeout = 2 * time.Minute
	s := mustNew(t, cfg)
	// at(x) serves as processing time too: a real-time feed, except where
	// a point's event time says otherwise.
	f := func(p *point.Point, now int64, want ...string) {
		t.Helper()
		if got := dumpAll(s.Process(p, now, nil)); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("%s: got %q, want %q", dump(*p), got, want)
		}
	}
	f(pt("cpu,host=a", at(0), "v", 1), at(0))
	f(pt("cpu,host=a", at(30), "v", 3), at(30), "cpu,host=a @30 v_sma=2")
	f(pt("cpu,host=b", at(40), "x", 1, "y", 2), at(40))
	// Nothing is idle for more than 2 minutes yet.
	if out := s.Expire(at(150), nil); len(out) != 0 || s.Stats().Series != 3 {
		t.Fatalf("early expire: %q, %+v", dumpAll(out), s.Stats())
	}
	// a's window is still open and is emitted before a is dropped.
	out := s.Expire(at(151), nil)
	if got := dumpAll(out); strings.Join(got, "|") != "cpu,host=a @0 v_count=2 v_mean=2 v_min=1 v_max=3 v_last=3 v_p95=2.9" {
		t.Fatalf("expire: %q", got)
	}
	if st := s.Stats(); st.Series != 2 || st.Expired != 1 || len(s.index) != 1 {
		t.Fatalf("stats %+v, %d indexed", st, len(s.index))
	}
	// a starts over (warm-up again) in the freed slot.
	f(pt("cpu,host=a", at(200), "v", 5), at(152))
	if len(s.series) != 2 {
		t.Fatalf("%d series slots, want 2", len(s.series))
	}
	f(pt("cpu,host=b", at(170), "x", 2), at(200),
		"cpu,host=b @0 x_count=1 x_mean=1 x_min=1 x_max=1 x_last=1 x_p95=1 y_count=1 y_mean=2 y_min=2 y_max=2 y_last=2 y_p95=2",
		"cpu,host=b @170 x_sma=1.5")
	// a went quiet again; b, whose event time is behind a's, is busy.
	out = s.Expire(at(291), nil)
	if got := dumpAll(out); strings.Join(got, "|") != "cpu,host=a @180 v_count=1 v_mean=5 v_min=5 v_max=5 v_last=5 v_p95=5" {
		t.Fatalf("expire: %q", got)
	}
	if st := s.Stats(); st.Series != 2 || st.Expired != 2 {
		t.Fatalf("stats %+v", st)
	}
	f(pt("cpu,host=b", at(175), "x", 4), at(292), "cpu,host=b @175 x_sma=3")
	// IdleTimeout and IdleFlush 0: never.
	s = mustNew(t, rollupConfig(0))
	s.Process(pt("cpu", at(0), "v", 1), at(0), nil)
	if out := s.Expire(math.MaxInt64, nil); s.Stats().Series != 1 || len(out) != 0 {
		t.Fatal("expired with IdleTimeout and IdleFlush 0")
	}
}

// TestIdleFlush: the windows of a series quiet in processing time for
// longer than IdleFlush are flushed, once its own clock run on at wall-clock
// pace would have closed them, and closed for good; the series keeps its
// averages, and another series far ahead in event time changes nothing.
func TestIdleFlush(t *testing.T) {
	cfg := rollupConfig(0)
	cfg.Default.EMAAlpha = 0.5
	cfg.IdleFlush = 30 * time.Second
	s := mustNew(t, cfg)
	var out []point.Point
	out = s.Process(pt("cpu,host=c", at(0), "v", 1), at(0), out)
	out = s.Process(pt("cpu,host=c", at(10), "v", 2), at(1), out)
	out = s.Process(pt("cpu,host=d", at(100_000), "v", 1), at(20), out) // years ahead, say
	// c is quiet for 49.5 s: its clock would be at 59.5 s, its window
	// [0, 60) still open. d's window [99960, 100020) would have closed.
	out = s.Expire(at(50.5), out[:0])
	if got := dumpAll(out); strings.Join(got, "|") != "cpu,host=d @99960 v_count=1 v_mean=1 v_min=1 v_max=1 v_last=1 v_p95=1" {
		t.Fatalf("idle flush of d: %q", got)
	}
	out = s.Expire(at(51.001), out[:0])
	if got := dumpAll(out); strings.Join(got, "|") != "cpu,host=c @0 v_count=2 v_mean=1.5 v_min=1 v_max=2 v_last=2 v_p95=1.95" {
		t.Fatalf("idle flush of c: %q", got)
	}
	// c's window is closed for good: a point for it is late, but averaged.
	out, res := s.ProcessResult(pt("cpu,host=c", at(50), "v", 3), at(52), out[:0])
	if res.DroppedLate != 1 || strings.Join(dumpAll(out), "|") != "cpu,host=c @50 v_ema=2.25" {
		t.Fatalf("after the flush: %q, %+v", dumpAll(out), res)
	}
	// A point for the next window is not late.
	if _, res := s.ProcessResult(pt("cpu,host=c", at(61), "v", 3), at(53), nil); res.DroppedLate != 0 {
		t.Fatal("a point after the flushed window was dropped late")
	}
	if st := s.Stats(); st.Series != 2 || st.Expired != 0 {
		t.Fatalf("stats %+v: IdleFlush must not forget series", st)
	}
}

// TestIdleFlushWaitsForTheSeriesClock: a live series slower than
// IdleFlush (a scrape every 90 s, 5-minute windows, IdleFlush 1m) keeps
// every point in its windows: a quiet series' window is flushed only once
// its own clock, run on at wall-clock pace, would have closed it.
func TestIdleFlushWaitsForTheSeriesClock(t *testing.T) {
	cfg := Config{Default: Params{Rollup: 5 * time.Minute}, MaxSeries: 10, IdleFlush: time.Minute}
	s := mustNew(t, cfg)
	var out []point.Point
	for sec := 60.0; sec <= 960; sec += 5 { // Expire every 5 s, as the consumer; at(60) starts a window
		if int(sec)%90 == 60 {
			out = s.Process(pt("cpu,host=slow", at(sec), "v", sec), at(sec), out)
		}
		out = s.Expire(at(sec), out)
	}
	if got := strings.Join(dumpAll(out), "|"); got != "cpu,host=slow @60 v_count=4 v_mean=195 v_min=60 v_max=330 v_last=330 v_p95=316.5|"+
		"cpu,host=slow @360 v_count=3 v_mean=510 v_min=420 v_max=600 v_last=600 v_p95=591|"+
		"cpu,host=slow @660 v_count=3 v_mean=780 v_min=690 v_max=870 v_last=870 v_p95=861" || s.Stats().DroppedLate != 0 {
		t.Fatalf("rollups %q, %d dropped late; want every point in its window", got, s.Stats().DroppedLate)
	}
}
