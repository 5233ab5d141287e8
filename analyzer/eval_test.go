package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/nab"
)

// evalCorpus is three categories of one 100-row series each, scores 0
// except where set (rows 0-14 are probationary, no false alarm follows a
// window):
//
//	a/x.csv  window [50, 59]; 0.9 at row 50, 0.55 at row 20
//	b/y.csv  window [50, 59]; 0.5 at row 50, 0.8 at row 20
//	c/z.csv  no window; 0.6 at row 30
//
// In sample, 0.5 is best for every profile (both windows, three false
// alarms). Without b, 0.9 is best, so b's window is missed when b is left
// out; without a or without c, 0.5 is best.
func evalCorpus(names ...string) (*nab.Corpus, map[string][]float64) {
	set := map[string]map[int]float64{
		"a/x.csv": {50: 0.9, 20: 0.55},
		"b/y.csv": {50: 0.5, 20: 0.8},
		"c/z.csv": {30: 0.6},
	}
	c := &nab.Corpus{Windows: map[string][]nab.Window{}}
	scores := map[string][]float64{}
	for _, name := range names {
		if name != "c/z.csv" {
			c.Windows[name] = []nab.Window{{Start: 50, End: 59}}
		}
		c.Series = append(c.Series, nab.Series{Name: name, Times: make([]time.Time, 100), Values: make([]float64, 100)})
		sc := make([]float64, 100)
		for i, v := range set[name] {
			sc[i] = v
		}
		scores[name] = sc
	}
	return c, scores
}

func TestWriteScores(t *testing.T) {
	for _, tc := range []struct {
		name   string
		series []string
		saved  map[string]float64
		// want are lines (spaces squeezed) expected in this order; absent
		// must not appear.
		want   []string
		absent []string
		chosen float64 // the threshold returned for every profile; 0: none
	}{
		{
			name:   "cross-validation first, in sample second",
			series: []string{"a/x.csv", "b/y.csv", "c/z.csv"},
			want: []string{
				"NAB score, leave-one-category-out cross-validation over 3 categories (a, b, c):",
				"profile score raw TP FP FN",
				// a at 0.5: +1 −0.11; b at 0.9: −1; c at 0.5: −0.11.
				// 100·(−0.22+2)/4 = 44.5.
				"standard 44.50 -0.220 1 2 1",
				// 100·(0.78−1−0.22+2)/4 = 39.
				"reward_low_FP_rate 39.00 -0.440 1 2 1",
				// 100·(0.89−2−0.11+4)/6 = 46.33.
				"reward_low_FN_rate 46.33 -1.220 1 2 1",
				"standard, per category (threshold chosen on the other categories):",
				"category files windows threshold score raw TP FP FN",
				"a 1 1 0.5 94.50 0.890 1 1 0",
				"b 1 1 0.9 0.00 -1.000 0 0 1",
				"c 1 0 0.5 - -0.110 0 1 0",
				"reward_low_FP_rate, per category (threshold chosen on the other categories):",
				"reward_low_FN_rate, per category (threshold chosen on the other categories):",
				"b 1 1 0.9 0.00 -2.000 0 0 1",
				"its central 90% over 2000 draws of 3 series from these, with replacement, each scored as above:",
				// The 5% tail: draws of b once, c twice (1 in 9): 100·(−1.22+1)/2.
				// The 95%: a twice, c once (1 in 9): 100·(1.67+2)/4.
				"standard 44.50 -11.00 to 91.75",
				"in sample (optimistic: thresholds chosen on all 3 series and scored on them):",
				"profile threshold score raw TP FP FN",
				// 100·(2−0.33+2)/4 = 91.75.
				"standard 0.5 91.75 1.670 2 3 0",
				"reward_low_FP_rate 0.5 83.50 1.340 2 3 0",
				"reward_low_FN_rate 0.5 94.50 1.670 2 3 0",
			},
			chosen: 0.5,
		},
		{
			name:   "one category: in sample only",
			series: []string{"a/x.csv"},
			want: []string{
				"no cross-validation: it needs at least two categories (data subdirectories), this corpus has 1",
				"in sample (optimistic: thresholds chosen on all 1 series and scored on them):",
				"standard 0.9 100.00 1.000 1 0 0",
			},
			absent: []string{"per category"},
			chosen: 0.9,
		},
		{
			name:   "saved thresholds: nothing tuned",
			series: []string{"a/x.csv", "b/y.csv", "c/z.csv"},
			saved:  map[string]float64{"standard": 0.9, "reward_low_FP_rate": 0.9, "reward_low_FN_rate": 0.9},
			want: []string{
				"NAB score at the thresholds from saved.json (none chosen on this corpus):",
				"standard 0.9 50.00 0.000 1 0 1",
			},
			absent: []string{"cross-validation", "in sample", "per category"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, scores := evalCorpus(tc.series...)
			var b bytes.Buffer
			chosen, _, err := writeScores(&b, c, scores, nil, tc.saved, "saved.json")
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, l := range strings.Split(b.String(), "\n") {
				lines = append(lines, strings.Join(strings.Fields(l), " "))
			}
			next := 0
			for _, want := range tc.want {
				i := next
				for i < len(lines) && lines[i] != want {
					i++
				}
				if i == len(lines) {
					t.Fatalf("no line %q after line %d in:\n%s", want, next, b.String())
				}
				next = i + 1
			}
			for _, a := range tc.absent {
				if strings.Contains(b.String(), a) {
					t.Errorf("%q in:\n%s", a, b.String())
				}
			}
			if tc.chosen == 0 {
				if chosen != nil {
					t.Errorf("chosen thresholds %v with saved ones; want none", chosen)
				}
				return
			}
			for _, p := range nab.Profiles() {
				if chosen[p.Name] != tc.chosen {
					t.Errorf("chosen threshold of %s: %v; want %v (in sample)", p.Name, chosen[p.Name], tc.chosen)
				}
			}
		})
	}
}

// writeEvalCorpus writes a two-category NAB corpus to a temporary folder:
// in each category one series of 3,000 one-minute points of noise with a
// jump of 30 at row 2,000, labelled, and one without. It returns the data
// folder and the labels file.
func writeEvalCorpus(t *testing.T) (data, labels string) {
	t.Helper()
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	rng := rand.New(rand.NewPCG(31, 32))
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	windows := map[string][]string{}
	for _, cat := range []string{"x", "y"} {
		for _, name := range []string{"jump.csv", "quiet.csv"} {
			var b strings.Builder
			b.WriteString("timestamp,value\n")
			for i := range 3000 {
				v := 100 + rng.NormFloat64()
				if name == "jump.csv" && i >= 2000 {
					v += 30
				}
				fmt.Fprintf(&b, "%s,%.3f\n", start.Add(time.Duration(i)*time.Minute).Format(nab.TimeLayout), v)
			}
			if err := os.MkdirAll(filepath.Join(data, cat), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(data, cat, name), []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			windows[cat+"/"+name] = nil
			if name == "jump.csv" {
				windows[cat+"/"+name] = []string{
					start.Add(1950*time.Minute).Format(nab.TimeLayout) + ".000000",
					start.Add(2050*time.Minute).Format(nab.TimeLayout) + ".000000"}
			}
		}
	}
	pairs := map[string][][]string{}
	for name, w := range windows {
		pairs[name] = [][]string{}
		if w != nil {
			pairs[name] = [][]string{w}
		}
	}
	js, err := json.Marshal(pairs)
	if err != nil {
		t.Fatal(err)
	}
	labels = filepath.Join(dir, "windows.json")
	if err := os.WriteFile(labels, js, 0o644); err != nil {
		t.Fatal(err)
	}
	return data, labels
}

// TestEvalTunesPerFold: `analyzer eval` re-chooses the tuned settings in
// every fold and says which; --fail-below fails the run when the headline
// score is under the floor, naming profile, floor and score.
func TestEvalTunesPerFold(t *testing.T) {
	data, labels := writeEvalCorpus(t)
	run := func(extra ...string) (string, error) {
		var out bytes.Buffer
		app := newApp(&out, &out)
		args := append([]string{"analyzer", "eval", "--data", data, "--labels", labels, "--out", t.TempDir()}, extra...)
		err := app.Run(args)
		return out.String(), err
	}
	out, err := run("--fail-below", "standard=50")
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, out)
	}
	for _, want := range []string{
		"each category scored with the threshold and onset-z, calm-z, calm-len, min-episode, max-episode, escalation, recurrence-half-life chosen on the other categories only",
		"standard, per category (settings and threshold chosen on the other categories):",
		"onset-z=", "cross-validated with the analyzer's settings fixed", "tuning ran the detector with",
		"what choosing the settings per category costs: the headline minus that, and its central 90% over the same draws:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	out, err = run("--fail-below", "standard=101", "--fail-below", "reward_low_FP_rate=0")
	if err == nil || !strings.Contains(err.Error(), "--fail-below standard=101: the cross-validated standard score is") || strings.Contains(err.Error(), "reward_low_FP_rate") {
		t.Errorf("eval with a floor of 101: %v, want the standard floor reported alone\n%s", err, out)
	}
	if _, err := run("--fail-below", "standard"); err == nil || !strings.Contains(err.Error(), "want PROFILE=SCORE") {
		t.Errorf("--fail-below standard: %v, want a usage error", err)
	}
}
