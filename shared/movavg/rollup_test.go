package movavg

import (
	"math"
	"strings"
	"testing"
	"time"
)

func rollupConfig(lateness time.Duration) Config {
	return Config{Default: Params{Rollup: time.Minute}, AllowedLateness: lateness, MaxSeries: 100}
}

func TestRollupClosesAtWatermark(t *testing.T) {
	s := mustNew(t, rollupConfig(0))
	run(t, s,
		step{p: pt("cpu,host=a", at(0), "v", 1)},
		step{p: pt("cpu,host=a", at(50), "v", 2)}, // last by event time
		step{p: pt("cpu,host=a", at(10), "v", 3)}, // in order enough: window still open
		step{p: pt("cpu,host=b", at(59.999), "v", 7)},
		// The watermark reaches 60s: both series' windows close, one point
		// each at the window start; p95 of 3 samples is exact (type 7).
		step{p: pt("cpu,host=b", at(60), "v", 8), want: []string{
			"cpu,host=a @0 v_count=3 v_mean=2 v_min=1 v_max=3 v_last=2 v_p95=2.9",
			"cpu,host=b @0 v_count=1 v_mean=7 v_min=7 v_max=7 v_last=7 v_p95=7",
		}},
		step{p: pt("cpu,host=a", at(30), "v", 9), late: true}, // lateness 0: closed
		step{p: pt("cpu,host=a", at(61), "v", 4)},
		// A jump over several windows closes the open ones; empty windows
		// emit nothing.
		step{p: pt("cpu,host=a", at(300), "v", 5), want: []string{
			"cpu,host=b @60 v_count=1 v_mean=8 v_min=8 v_max=8 v_last=8 v_p95=8",
			"cpu,host=a @60 v_count=1 v_mean=4 v_min=4 v_max=4 v_last=4 v_p95=4",
		}},
	)
	if st := s.Stats(); st.DroppedLate != 1 || st.Watermark != at(300) {
		t.Fatalf("stats %+v", st)
	}
	if got := dumpAll(s.Flush(nil)); strings.Join(got, "|") != "cpu,host=a @300 v_count=1 v_mean=5 v_min=5 v_max=5 v_last=5 v_p95=5" {
		t.Fatalf("flush: %q", got)
	}
	if len(s.dues) != 0 || len(s.Flush(nil)) != 0 {
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
	s.Process(pt("m", at(0), "v", 1.5e308), nil)
	s.Process(pt("m", at(1), "v", 1.5e308), nil)
	out := s.Flush(nil)
	// The mean overflows and is left out.
	if got := dumpAll(out); strings.Join(got, "|") != "m @0 v_count=2 v_min=1.5e+308 v_max=1.5e+308 v_last=1.5e+308 v_p95=1.5e+308" {
		t.Fatalf("got %q", got)
	}
}

func TestExpire(t *testing.T) {
	cfg := rollupConfig(0)
	cfg.Default.SMAWindow = 2
	cfg.IdleTimeout = 2 * time.Minute
	s := mustNew(t, cfg)
	run(t, s,
		step{p: pt("cpu,host=a", at(0), "v", 1)},
		step{p: pt("cpu,host=a", at(30), "v", 3), want: []string{"cpu,host=a @30 v_sma=2"}},
		step{p: pt("cpu,host=b", at(40), "x", 1, "y", 2)},
	)
	// Nothing is idle for 2 minutes yet.
	if out := s.Expire(at(150), nil); len(out) != 0 || s.Stats().Series != 3 {
		t.Fatalf("early expire: %q, %+v", dumpAll(out), s.Stats())
	}
	// now is ahead of the stage's event time: a's window is still open and
	// is emitted before a is dropped.
	out := s.Expire(at(160), nil)
	if got := dumpAll(out); strings.Join(got, "|") != "cpu,host=a @0 v_count=2 v_mean=2 v_min=1 v_max=3 v_last=3 v_p95=2.9" {
		t.Fatalf("expire: %q", got)
	}
	if st := s.Stats(); st.Series != 2 || st.Expired != 1 || len(s.index) != 1 {
		t.Fatalf("stats %+v, %d indexed", st, len(s.index))
	}
	// a starts over: warm-up again.
	run(t, s,
		step{p: pt("cpu,host=a", at(50), "v", 5)},
		step{p: pt("cpu,host=b", at(170), "x", 2), want: []string{
			"cpu,host=a @0 v_count=1 v_mean=5 v_min=5 v_max=5 v_last=5 v_p95=5",
			"cpu,host=b @0 x_count=1 x_mean=1 x_min=1 x_max=1 x_last=1 x_p95=1 y_count=1 y_mean=2 y_min=2 y_max=2 y_last=2 y_p95=2",
			"cpu,host=b @170 x_sma=1.5",
		}},
	)
	// a and b.y went quiet and expire (their windows closed already); b.x
	// lives on with its open window.
	out = s.Expire(at(171), nil)
	if len(out) != 0 {
		t.Fatalf("expire emitted %q; the windows were closed already", dumpAll(out))
	}
	if st := s.Stats(); st.Series != 1 || st.Expired != 3 {
		t.Fatalf("stats %+v", st)
	}
	run(t, s, step{p: pt("cpu,host=b", at(175), "x", 4), want: []string{"cpu,host=b @175 x_sma=3"}})
	if got := dumpAll(s.Flush(nil)); strings.Join(got, "|") != "cpu,host=b @120 x_count=2 x_mean=3 x_min=2 x_max=4 x_last=4 x_p95=3.9" {
		t.Fatalf("flush: %q", got)
	}
	// Flush closed the windows for good: a point for one is late now.
	if _, res := s.Process(pt("cpu,host=b", at(179), "x", 1), nil); res.DroppedLate != 1 {
		t.Fatal("a point for a flushed window was not dropped as late")
	}
	// The freed slot is reused.
	run(t, s, step{p: pt("cpu,host=c", at(181), "v", 1)})
	if len(s.series) != 2 {
		t.Fatalf("%d series slots, want 2", len(s.series))
	}
	// IdleTimeout 0: never.
	s = mustNew(t, rollupConfig(0))
	s.Process(pt("cpu", at(0), "v", 1), nil)
	if s.Expire(math.MaxInt64, nil); s.Stats().Series != 1 {
		t.Fatal("expired with IdleTimeout 0")
	}
}

func TestWindowStart(t *testing.T) {
	f := func(ts, r, want int64) {
		t.Helper()
		if got := windowStart(ts, r); got != want {
			t.Fatalf("windowStart(%d, %d) = %d, want %d", ts, r, got, want)
		}
	}
	f(0, 60, 0)
	f(59, 60, 0)
	f(60, 60, 60)
	f(-1, 60, -60)
	f(-60, 60, -60)
	f(-61, 60, -120)
	f(math.MaxInt64, 1000, math.MaxInt64-807)
	f(math.MinInt64, 1000, math.MinInt64) // clamped: the aligned start is not representable
}
