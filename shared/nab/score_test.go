package nab

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// spec describes one synthetic series: n rows one minute apart, values 0..n-1.
type spec struct {
	name string
	n    int
	wins []Window
}

func newCorpus(specs ...spec) *Corpus {
	c := &Corpus{Windows: map[string][]Window{}}
	base := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
	for _, sp := range specs {
		s := Series{Name: sp.name}
		for i := range sp.n {
			s.Times = append(s.Times, base.Add(time.Duration(i)*time.Minute))
			s.Values = append(s.Values, float64(i))
		}
		c.Series = append(c.Series, s)
		c.Windows[sp.name] = sp.wins
	}
	return c
}

// fire returns scores of 1 at the given rows of each series and 0 elsewhere.
func fire(c *Corpus, rows map[string][]int) map[string][]float64 {
	sc := map[string][]float64{}
	for _, s := range c.Series {
		sc[s.Name] = make([]float64, len(s.Times))
		for _, i := range rows[s.Name] {
			sc[s.Name][i] = 1
		}
	}
	return sc
}

func mustScore(t *testing.T, c *Corpus, sc map[string][]float64, p Profile, th float64) Result {
	t.Helper()
	r, err := Score(c, sc, p, th)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// One series of 100 rows: probation is rows 0..14, one window of width 10.
var one = spec{"a/one.csv", 100, []Window{{40, 49}}}

func TestScoreHandCases(t *testing.T) {
	std := Profiles()[0]
	f := func(name string, rows []int, wantRaw float64, tp, fp, fn int) {
		t.Helper()
		c := newCorpus(one)
		r := mustScore(t, c, fire(c, map[string][]int{one.name: rows}), std, 0.5)
		if math.Abs(r.Raw-wantRaw) > 1e-12 || r.TP != tp || r.FP != fp || r.FN != fn {
			t.Errorf("%s: got raw %.15g TP %d FP %d FN %d, want %.15g %d %d %d", name, r.Raw, r.TP, r.FP, r.FN, wantRaw, tp, fp, fn)
		}
		if want := 100 * (wantRaw + 1) / 2; math.Abs(r.Normalized-want) > 1e-9 {
			t.Errorf("%s: normalized %v, want %v", name, r.Normalized, want)
		}
	}
	f("never fires", nil, -1, 0, 0, 1)
	f("first row of window", []int{40}, 1, 1, 0, 0)
	// Last row: p = -(49-49+1)/10 = -0.1; S(-0.1) = tanh(0.25) = 0.2449186624,
	// S(-1) = tanh(2.5) = 0.9866142982, reward 0.2449186624/0.9866142982.
	f("last row of window", []int{49}, 0.24824154977542992, 1, 0, 0)
	// Row 42 then 45: only row 42 counts, p = -0.8, S(-0.8)/S(-1) = tanh(2)/tanh(2.5).
	f("earliest detection only", []int{42, 45}, 0.9771068409226045, 1, 0, 0)
	f("earliest detection only, later first in list", []int{45, 42, 43}, 0.9771068409226045, 1, 0, 0)
	// Row 20 comes before any window: full cost 0.11, and the window is missed.
	f("FP without earlier window", []int{20}, -1.11, 0, 1, 1)
	// Row 50: p = (50-49)/(10-1) = 1/9, S(1/9) = -0.2708471185, cost 0.11·S = -0.0297931830.
	f("FP right after window", []int{40, 50}, 1-0.029793183036839352, 1, 1, 0)
	// Row 99, 50 rows = 5 widths after the window: p = 50/9 >= 3, full cost.
	f("FP 5 widths after window", []int{40, 99}, 0.89, 1, 1, 0)
	f("every FP row counts", []int{40, 98, 99}, 0.78, 1, 2, 0)
	f("probation detection counts for nothing", []int{5, 14}, -1, 0, 0, 1)
	f("probation detection plus window start", []int{14, 40}, 1, 1, 0, 0)
}

// TestScoreProfiles checks the two anchors of normalisation, in every
// profile, over several files, windows, and a window that ends inside the
// probationary period (which is not scored at all).
func TestScoreProfiles(t *testing.T) {
	c := newCorpus(
		one,
		spec{"a/two.csv", 200, []Window{{60, 69}, {150, 179}}},
		spec{"b/none.csv", 50, nil},
		spec{"b/early.csv", 100, []Window{{2, 10}, {50, 59}}},
	)
	perfect := fire(c, map[string][]int{"a/one.csv": {40}, "a/two.csv": {60, 150}, "b/early.csv": {50}})
	for _, p := range Profiles() {
		r := mustScore(t, c, perfect, p, 1)
		if r.Normalized != 100 || r.TP != 4 || r.FP != 0 || r.FN != 0 || r.Perfect != 4*p.TP || r.Null != -4*p.FN {
			t.Errorf("%s perfect: %+v", p.Name, r)
		}
		r = mustScore(t, c, fire(c, nil), p, 1)
		if r.Normalized != 0 || r.TP != 0 || r.FN != 4 || r.Raw != r.Null {
			t.Errorf("%s never fires: %+v", p.Name, r)
		}
		if len(r.Files) != 4 || r.Files[1].Name != "a/two.csv" || r.Files[1].FN != 2 || r.Files[1].Raw != -2*p.FN {
			t.Errorf("%s files: %+v", p.Name, r.Files)
		}
	}
}

func TestScoreFPDecay(t *testing.T) {
	std := Profiles()[0]
	c := newCorpus(one)
	cost := func(row int) float64 {
		r := mustScore(t, c, fire(c, map[string][]int{one.name: {40, row}}), std, 1)
		return r.Raw - 1
	}
	near, far := cost(50), cost(99)
	full := func(c float64) bool { return math.Abs(c+std.FP) < 1e-15 }
	if !(near < 0 && far < near && full(far)) {
		t.Fatalf("cost right after the window %v, 5 widths later %v: want -0.11 < %v < 0", near, far, near)
	}
	// Costs grow with the distance, until they reach A_FP three widths on.
	prev := 0.0
	for row := 50; row < 100; row++ {
		if got := cost(row); got > prev || (row >= 49+27) != full(got) {
			t.Fatalf("row %d costs %v, previous %v", row, got, prev)
		} else {
			prev = got
		}
	}
	// A one-row window: p = 1/0 = +Inf, the full cost.
	c = newCorpus(spec{"a/w1.csv", 100, []Window{{40, 40}}})
	if r := mustScore(t, c, fire(c, map[string][]int{"a/w1.csv": {40, 41}}), std, 1); r.Raw != 1-std.FP {
		t.Fatalf("FP after one-row window: raw %v, want %v", r.Raw, 1-std.FP)
	}
}

func TestScoreNaNNeverFires(t *testing.T) {
	c := newCorpus(one)
	sc := fire(c, nil)
	for i := range sc[one.name] {
		sc[one.name][i] = math.NaN()
	}
	if r := mustScore(t, c, sc, Profiles()[0], math.Inf(-1)); r.Raw != -1 || r.FP != 0 {
		t.Fatalf("NaN scores: %+v", r)
	}
}

func TestScoreErrors(t *testing.T) {
	f := func(c *Corpus, sc map[string][]float64, p Profile, want ...string) {
		t.Helper()
		_, err := Score(c, sc, p, 0.5)
		if err == nil {
			t.Fatalf("want error %q", want)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	}
	std := Profiles()[0]
	c := newCorpus(one, spec{"a/b.csv", 10, nil})
	f(c, map[string][]float64{one.name: make([]float64, 99), "x.csv": nil}, std,
		"99 scores for a/one.csv, which has 100 rows", "no scores for a/b.csv", "scores for x.csv, which is not in the corpus")
	f(newCorpus(one), fire(newCorpus(one), nil), Profile{FP: -1, FN: math.NaN()},
		"profile name: empty", "weight FP -1", "weight FN NaN", "weight TP 0: want > 0")
	bad := newCorpus(spec{"a.csv", 10, []Window{{5, 3}}}, spec{"b.csv", 10, []Window{{1, 4}, {4, 6}}})
	bad.Windows["c.csv"] = nil
	f(bad, fire(bad, nil), std, "a.csv window 0 [5, 3]", "b.csv window 1 [4, 6]: starts at or before", `windows of "c.csv"`)
}

func TestOptimizeHandCases(t *testing.T) {
	f := func(name string, p Profile, rows map[int]float64, wantTh, wantRaw float64) {
		t.Helper()
		c := newCorpus(one)
		sc := fire(c, nil)
		for i, v := range rows {
			sc[one.name][i] = v
		}
		th, r, err := Optimize(c, sc, p)
		if err != nil {
			t.Fatal(err)
		}
		if th != wantTh || math.Abs(r.Raw-wantRaw) > 1e-12 || r.Threshold != th {
			t.Errorf("%s: threshold %v raw %v, want %v %v", name, th, r.Raw, wantTh, wantRaw)
		}
	}
	std := Profiles()[0]
	// Window start 0.6, FPs 0.9 and 0.8 far from the window, 0 elsewhere.
	// 0.9 → -1-0.11; 0.8 → -1-0.22; 0.6 → 1-0.22 = 0.78; 0 → 75 more FPs;
	// firing nowhere → -1. Best: 0.6.
	fps := map[int]float64{40: 0.6, 20: 0.9, 80: 0.8}
	f("detect despite two FPs", std, fps, 0.6, 0.78)
	// With A_FP 1.5, 0.6 gives 1-3 = -2: firing nowhere (-1) is best.
	f("fire nowhere", Profile{"harsh", 1, 1.5, 1}, fps, math.Nextafter(0.9, 2), -1)
	// 0.7 (row 40) and 0.6 (row 45) both give 1: the higher wins.
	f("tie", std, map[int]float64{40: 0.7, 45: 0.6}, 0.7, 1)
	// The earliest detection comes in at a lower threshold and raises the score.
	f("earlier detection later", std, map[int]float64{45: 0.7, 40: 0.6}, 0.6, 1)
	// Probation rows are no candidates: 0.95 there changes nothing.
	f("probation", std, map[int]float64{5: 0.95, 40: 0.5}, 0.5, 1)
}

// TestOptimizeExact compares Optimize with a brute-force search over every
// distinct score on random corpora with many ties.
func TestOptimizeExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 30 {
		var specs []spec
		for k := range 3 {
			n := 50 + rng.IntN(150)
			var wins []Window
			for start := rng.IntN(20); ; {
				w := Window{start, start + rng.IntN(15)}
				if w.End >= n {
					break
				}
				wins = append(wins, w)
				start = w.End + 1 + rng.IntN(60)
			}
			specs = append(specs, spec{fmt.Sprintf("s%d.csv", k), n, wins})
		}
		c := newCorpus(specs...)
		sc := map[string][]float64{}
		var cands []float64
		for _, s := range c.Series {
			for range s.Times {
				v := float64(rng.IntN(40)) / 40 // many ties
				sc[s.Name] = append(sc[s.Name], v)
				cands = append(cands, v)
			}
		}
		slices.Sort(cands)
		cands = slices.Compact(cands)
		cands = append(cands, 2)
		for _, p := range append(Profiles(), Profile{"x", 1, 0.01, 3}) {
			th, r, err := Optimize(c, sc, p)
			if err != nil {
				t.Fatal(err)
			}
			best := math.Inf(-1)
			for _, cand := range cands {
				best = max(best, mustScore(t, c, sc, p, cand).Raw)
			}
			if math.Abs(r.Raw-best) > 1e-9 {
				t.Fatalf("round %d %s: Optimize threshold %v raw %v, brute force best %v", round, p.Name, th, r.Raw, best)
			}
		}
	}
}

func TestProfiles(t *testing.T) {
	p := Profiles()
	p[0].FP = 9
	if q := Profiles(); q[0] != (Profile{"standard", 1, 0.11, 1}) || q[1] != (Profile{"reward_low_FP_rate", 1, 0.22, 1}) || q[2] != (Profile{"reward_low_FN_rate", 1, 0.11, 2}) {
		t.Fatalf("Profiles() = %v", q)
	}
	for _, p := range Profiles() {
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestProbation(t *testing.T) {
	// NAB: min(floor(0.15*n), 750), in floating point.
	for n := range 20000 {
		if got, want := probation(n), int(min(math.Floor(0.15*float64(n)), 750)); got != want {
			t.Fatalf("probation(%d) = %d, want %d", n, got, want)
		}
	}
}
