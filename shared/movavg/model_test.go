package movavg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/point"
)

// model is a naive reference implementation of the stage: it keeps every
// value and recomputes everything from scratch.
type model struct {
	p         Params
	lateness  int64
	idle      int64
	idleFlush int64
	wm        map[string]int64               // series → watermark
	seen      map[string]int64               // series → processing time of its last point
	vals      map[string][]float64           // "series\x00field" → values since (re)start
	wins      map[string]map[int64]*modelWin // "series\x00field" → start → window
}

type modelWin struct {
	vals  []float64
	times []int64
}

func newModel(cfg Config) *model {
	return &model{p: cfg.Default, lateness: int64(cfg.AllowedLateness), idle: int64(cfg.IdleTimeout), idleFlush: int64(cfg.IdleFlush),
		wm: map[string]int64{}, seen: map[string]int64{}, vals: map[string][]float64{}, wins: map[string]map[int64]*modelWin{}}
}

func seriesOf(key string) string {
	series, _, _ := strings.Cut(key, "\x00")
	return series
}

// rollups renders the windows selected by pick, grouped by series and start,
// as the stage should emit them, and deletes them.
func (m *model) rollups(pick func(key string, start int64) bool) map[string]map[string]float64 {
	got := map[string]map[string]float64{}
	for key, ws := range m.wins {
		series, field, _ := strings.Cut(key, "\x00")
		for start, w := range ws {
			if !pick(key, start) {
				continue
			}
			id := fmt.Sprintf("%s @%d", series, start)
			if got[id] == nil {
				got[id] = map[string]float64{}
			}
			sorted := slices.Sorted(slices.Values(w.vals))
			var sum float64
			for _, v := range w.vals {
				sum += v
			}
			lastAt, last := int64(math.MinInt64), 0.0
			for i, t := range w.times {
				if t >= lastAt {
					lastAt, last = t, w.vals[i]
				}
			}
			n := len(sorted)
			p95 := math.NaN() // only checked against min and max
			if n <= p2Exact {
				p95 = exactQuantile(sorted, p2Quantile)
			}
			for suf, v := range map[string]float64{"_count": float64(n), "_mean": sum / float64(n), "_min": sorted[0],
				"_max": sorted[n-1], "_last": last, "_p95": p95} {
				got[id][field+suf] = v
			}
			delete(ws, start)
		}
	}
	return got
}

func (m *model) process(p *point.Point, now int64) (derived map[string]float64, rollups map[string]map[string]float64, late bool) {
	r := int64(m.p.Rollup)
	series := string(point.AppendSeriesKey(nil, p))
	m.seen[series] = now
	wm, ok := m.wm[series]
	if !ok {
		wm = math.MinInt64
	}
	m.wm[series] = max(wm, p.Time-m.lateness)
	rollups = m.rollups(func(key string, start int64) bool { return seriesOf(key) == series && start+r <= m.wm[series] })
	start := windowStart(p.Time, r)
	late = start+r <= m.wm[series]
	derived = map[string]float64{}
	for _, f := range p.Fields {
		key := series + "\x00" + f.Key
		m.vals[key] = append(m.vals[key], f.Value)
		vs := m.vals[key]
		if n := m.p.SMAWindow; len(vs) >= n {
			var sum float64
			for _, v := range vs[len(vs)-n:] {
				sum += v
			}
			derived[f.Key+"_sma"] = sum / float64(n)
		}
		ema := vs[0]
		for _, v := range vs[1:] {
			ema += m.p.EMAAlpha * (v - ema)
		}
		derived[f.Key+"_ema"] = ema
		if w := m.p.WMAWeights; len(vs) >= len(w) {
			var y float64
			for i, a := range w {
				y += a * vs[len(vs)-1-i]
			}
			derived[f.Key+"_wma"] = y
		}
		if !late {
			if m.wins[key] == nil {
				m.wins[key] = map[int64]*modelWin{}
			}
			w := m.wins[key][start]
			if w == nil {
				w = &modelWin{}
				m.wins[key][start] = w
			}
			w.vals = append(w.vals, f.Value)
			w.times = append(w.times, p.Time)
		}
	}
	return derived, rollups, late
}

func (m *model) expire(now int64) map[string]map[string]float64 {
	r := int64(m.p.Rollup)
	until := map[string]int64{} // series → windows ending at or before it are flushed
	for series, seen := range m.seen {
		switch {
		case now-seen > m.idle:
			until[series] = math.MaxInt64
		case m.idleFlush > 0 && now-seen > m.idleFlush:
			until[series] = m.wm[series] + (now - seen) // its clock run on at wall-clock pace
		default:
			continue
		}
		for key, ws := range m.wins {
			for start := range ws {
				if seriesOf(key) == series && start+r <= until[series] {
					m.wm[series] = max(m.wm[series], start+r)
				}
			}
		}
	}
	out := m.rollups(func(key string, start int64) bool {
		u, ok := until[seriesOf(key)]
		return ok && start+r <= u
	})
	for series, seen := range m.seen {
		if now-seen > m.idle {
			delete(m.seen, series)
			delete(m.wm, series)
			for key := range m.vals {
				if seriesOf(key) == series {
					delete(m.vals, key)
				}
			}
		}
	}
	return out
}

// split renders the stage's output like the model's.
func split(t *testing.T, out []point.Point) (derived []map[string]float64, rollups map[string]map[string]float64) {
	rollups = map[string]map[string]float64{}
	for _, p := range out {
		fs := map[string]float64{}
		for _, f := range p.Fields {
			fs[f.Key] = f.Value
		}
		if !strings.HasSuffix(p.Fields[0].Key, "_count") {
			derived = append(derived, fs)
			continue
		}
		id := fmt.Sprintf("%s @%d", point.AppendSeriesKey(nil, &p), p.Time)
		if rollups[id] != nil {
			t.Fatalf("rollup %s emitted twice in one call", id)
		}
		rollups[id] = fs
	}
	return derived, rollups
}

// near compares with a relative tolerance, absolute below 1 (a running sum
// and a fresh one differ by rounding).
func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*max(1, math.Abs(got), math.Abs(want))
}

func sameValues(t *testing.T, what string, got, want map[string]float64) {
	t.Helper()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	})
	if len(got) != len(want) {
		t.Fatalf("%s: got fields %v, want %v", what, got, want)
	}
	for _, k := range keys {
		g, ok := got[k]
		w := want[k]
		if !ok || (!math.IsNaN(w) && !near(g, w)) {
			t.Fatalf("%s: %s = %v, want %v (all: %v vs %v)", what, k, g, w, got, want)
		}
		if field, ok := strings.CutSuffix(k, "_p95"); ok && math.IsNaN(w) && (g < want[field+"_min"] || g > want[field+"_max"]) {
			t.Fatalf("%s: %s = %v outside [min, max]", what, k, g)
		}
	}
}

func sameRollups(t *testing.T, what string, got, want map[string]map[string]float64) {
	t.Helper()
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(got) != len(want) {
		gotIDs := make([]string, 0, len(got))
		for id := range got {
			gotIDs = append(gotIDs, id)
		}
		sort.Strings(gotIDs)
		t.Fatalf("%s: rollups %q, want %q", what, gotIDs, ids)
	}
	for _, id := range ids {
		sameValues(t, what+" "+id, got[id], want[id])
	}
}

// TestStageAgainstModel drives a stage and the model with random, partly
// late and partly idle traffic and compares every output.
func TestStageAgainstModel(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			cfg := Config{
				Default:         Params{SMAWindow: 3, EMAAlpha: 0.3, WMAWeights: []float64{0.6, -0.1, 0.5}, Rollup: 10 * time.Second},
				AllowedLateness: time.Duration(rng.IntN(4)) * 2 * time.Second,
				MaxSeries:       1000,
				IdleTimeout:     30 * time.Second,
				IdleFlush:       time.Duration(rng.IntN(3)) * 10 * time.Second, // 0 (never), 10s, 20s
			}
			s := mustNew(t, cfg)
			m := newModel(cfg)
			now := t0
			var dropped uint64
			for i := range 3000 {
				now += int64(rng.IntN(5)) * int64(250*time.Millisecond) // coarse, so that boundaries are hit exactly
				series := fmt.Sprintf("cpu,host=h%d", rng.IntN(6))
				if (i > 1500 && rng.IntN(2) == 0) || (i > 2000 && i < 2400) {
					series = "cpu,host=h0" // the others go idle, then come back
				}
				var kv []any
				for _, f := range []string{"a", "b", "c"} {
					if len(kv) == 0 || rng.IntN(3) == 0 {
						kv = append(kv, f, math.Round(rng.NormFloat64()*100)/4)
					}
				}
				tm := now
				if rng.IntN(5) == 0 {
					tm -= int64(rng.IntN(33)) * int64(250*time.Millisecond) // late, maybe too late
				}
				p := pt(series, tm, kv...)
				// Processing time follows the feed: a real-time source
				// whose points are sometimes late.
				wantD, wantR, late := m.process(p, now)
				out, res := s.ProcessResult(p, now, nil)
				gotD, gotR := split(t, out)
				what := fmt.Sprintf("point %d (%s)", i, dump(*p))
				sameRollups(t, what, gotR, wantR)
				if len(gotD) != 1 {
					t.Fatalf("%s: %d derived points", what, len(gotD))
				}
				sameValues(t, what, gotD[0], wantD)
				if late != (res.DroppedLate == 1) {
					t.Fatalf("%s: DroppedLate %d, model says late=%v", what, res.DroppedLate, late)
				}
				if late {
					dropped++
				}
				if i%100 == 99 {
					_, gotR := split(t, s.Expire(now, nil))
					sameRollups(t, fmt.Sprintf("expire after point %d", i), gotR, m.expire(now))
					if st := s.Stats(); st.Series != len(m.vals) {
						t.Fatalf("after expire: %d series-fields, model has %d", st.Series, len(m.vals))
					}
				}
			}
			_, gotR := split(t, s.Flush(nil))
			sameRollups(t, "flush", gotR, m.rollups(func(string, int64) bool { return true }))
			if st := s.Stats(); st.DroppedLate != dropped || dropped == 0 || st.Expired == 0 {
				t.Fatalf("stats %+v, model dropped %d", st, dropped)
			}
		})
	}
}
