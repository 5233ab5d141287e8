package movavg

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/point"
)

// exact renders a point with its absolute time and its values bit for bit
// (shortest representation that round-trips).
func exact(p point.Point) string {
	var b strings.Builder
	b.Write(point.AppendSeriesKey(nil, &p))
	b.WriteString(" " + strconv.FormatInt(p.Time, 10))
	for _, f := range p.Fields {
		b.WriteString(" " + f.Key + "=" + strconv.FormatFloat(f.Value, 'g', -1, 64))
	}
	return b.String()
}

// bySeries groups rendered points by series, in output order.
func bySeries(out []point.Point) map[string][]string {
	m := map[string][]string{}
	for _, p := range out {
		k := string(point.AppendSeriesKey(nil, &p))
		m[k] = append(m[k], exact(p))
	}
	return m
}

// yearsApart returns n points of each of three series whose times lie in
// 2011, 2013 and 2015, one every 10 s with some jitter and late points,
// interleaved point by point as they would be on one partition.
func yearsApart(n int) []*point.Point {
	starts := []int64{
		time.Date(2011, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano(),
		time.Date(2013, 7, 9, 12, 0, 0, 0, time.UTC).UnixNano(),
		time.Date(2015, 1, 20, 6, 0, 0, 0, time.UTC).UnixNano(),
	}
	rng := rand.New(rand.NewPCG(14, 1))
	var pts []*point.Point
	for i := range n {
		for s, start := range starts {
			t := start + int64(i)*int64(10*time.Second) + rng.Int64N(int64(time.Second))
			if i%9 == 4 {
				t -= int64(7 * time.Second) // late, within the lateness
			}
			if i%31 == 30 {
				t -= int64(3 * time.Minute) // too late for its window
			}
			pts = append(pts, pt(fmt.Sprintf("disk,host=h%d", s), t, "used", rng.NormFloat64()*5+50, "io", float64(rng.IntN(100))))
		}
	}
	return pts
}

var clockConfig = Config{
	Default:         Params{SMAWindow: 6, EMAAlpha: 0.2, WMAWeights: []float64{0.5, 0.3, 0.2}, Rollup: time.Minute},
	AllowedLateness: 10 * time.Second,
	MaxSeries:       100,
	IdleFlush:       time.Minute,
	IdleTimeout:     time.Hour,
}

// wall is the processing time of the i-th point of a scenario: a busy
// partition, a millisecond per point.
func wall(i int) int64 { return t0 + int64(i)*int64(time.Millisecond) }

// alone runs each series of pts in a Stage of its own, flushed at the end.
func alone(t *testing.T, cfg Config, pts []*point.Point) (map[string][]string, uint64) {
	t.Helper()
	stages := map[string]*Stage{}
	var out []point.Point
	var late uint64
	for i, p := range pts {
		k := string(point.AppendSeriesKey(nil, p))
		if stages[k] == nil {
			stages[k] = mustNew(t, cfg)
		}
		out = stages[k].Process(p, wall(i), out)
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range stages {
			yield(k)
		}
	}) {
		out = stages[k].Flush(out)
		late += stages[k].Stats().DroppedLate
	}
	return bySeries(out), late
}

func sameOutputs(t *testing.T, got, want map[string][]string) {
	t.Helper()
	for k, w := range want {
		g := got[k]
		if slices.Equal(g, w) {
			continue
		}
		rollups := func(ls []string) (n int) {
			for _, l := range ls {
				if strings.Contains(l, "_count=") {
					n++
				}
			}
			return n
		}
		i := 0
		for i < len(g) && i < len(w) && g[i] == w[i] {
			i++
		}
		first := func(ls []string) string {
			if i < len(ls) {
				return ls[i]
			}
			return "(nothing)"
		}
		t.Errorf("%s: %d points (%d rollups), alone %d (%d rollups); first difference at %d:\n\tgot  %s\n\twant %s",
			k, len(g), rollups(g), len(w), rollups(w), i, first(g), first(w))
	}
	if len(got) != len(want) {
		t.Errorf("%d series in the output, want %d", len(got), len(want))
	}
}

// TestSeriesYearsApartKeepTheirOwnClock: series whose times lie years apart,
// interleaved on one stage, get exactly the output each gets alone.
func TestSeriesYearsApartKeepTheirOwnClock(t *testing.T) {
	pts := yearsApart(600)
	want, wantLate := alone(t, clockConfig, pts)
	s := mustNew(t, clockConfig)
	var out []point.Point
	for i, p := range pts {
		out = s.Process(p, wall(i), out)
	}
	out = s.Flush(out)
	sameOutputs(t, bySeries(out), want)
	if got := s.Stats().DroppedLate; got != wantLate {
		t.Errorf("%d points dropped late, %d when alone", got, wantLate)
	}
}

// TestExpireLeavesSeriesBehindOthersAlone: the consumer's housekeeping must
// not drop a series' state because another series' time is years ahead.
func TestExpireLeavesSeriesBehindOthersAlone(t *testing.T) {
	pts := yearsApart(300)
	want, _ := alone(t, clockConfig, pts)
	s := mustNew(t, clockConfig)
	var out []point.Point
	for i, p := range pts {
		out = s.Process(p, wall(i), out)
		if i%50 == 49 { // once per batch
			out = s.Expire(wall(i), out)
		}
	}
	out = s.Flush(out)
	sameOutputs(t, bySeries(out), want)
	if st := s.Stats(); st.Expired != 0 {
		t.Errorf("%d series-fields expired, want 0: every series is busy", st.Expired)
	}
}

// TestHousekeepingDoesNotChangeOutputs: the same input with Expire called
// at different points gives the same derived values and rollups.
func TestHousekeepingDoesNotChangeOutputs(t *testing.T) {
	pts := yearsApart(300)
	runEvery := func(every int) map[string][]string {
		s := mustNew(t, clockConfig)
		var out []point.Point
		for i, p := range pts {
			out = s.Process(p, wall(i), out)
			if i%every == every-1 {
				out = s.Expire(wall(i), out)
			}
		}
		return bySeries(s.Flush(out))
	}
	want := runEvery(len(pts) + 1) // never
	for _, every := range []int{1, 7, 100} {
		t.Run(strconv.Itoa(every), func(t *testing.T) { sameOutputs(t, runEvery(every), want) })
	}
}
