package nab

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// cvCorpus is three categories of one 100-row series each (rows 0-14 are
// probationary), scores 0 except where set:
//
//	a/x.csv  window [50, 59]; 0.9 at row 50 (its first row), 0.55 at row 20 (a false alarm)
//	b/y.csv  window [50, 59]; 0.5 at row 50, 0.8 at row 20 (a false alarm)
//	c/z.csv  no window; 0.6 at row 30 (a false alarm)
//
// No false alarm follows a window, so each costs the full A_FP. On all
// three series the best threshold is 0.5 (detect both windows); b's fold
// is trained on a and c only, where 0.9 is best, so b's window is missed.
func cvCorpus() (*Corpus, map[string][]float64) {
	c := &Corpus{Windows: map[string][]Window{
		"a/x.csv": {{50, 59}},
		"b/y.csv": {{50, 59}},
	}}
	scores := map[string][]float64{}
	for name, set := range map[string]map[int]float64{
		"a/x.csv": {50: 0.9, 20: 0.55},
		"b/y.csv": {50: 0.5, 20: 0.8},
		"c/z.csv": {30: 0.6},
	} {
		sc := make([]float64, 100)
		for i, v := range set {
			sc[i] = v
		}
		scores[name] = sc
	}
	for _, name := range []string{"a/x.csv", "b/y.csv", "c/z.csv"} {
		c.Series = append(c.Series, Series{Name: name, Times: make([]time.Time, 100), Values: make([]float64, 100)})
	}
	return c, scores
}

func TestCrossValidate(t *testing.T) {
	profiles := map[string]Profile{}
	for _, p := range Profiles() {
		profiles[p.Name] = p
	}
	type fold struct {
		th, raw    float64
		tp, fp, fn int
	}
	for _, tc := range []struct {
		profile string
		folds   map[string]fold
		// raw is the sum of the folds' raw scores; null −2·A_FN and
		// perfect 2·A_TP (two windows).
		raw, normalized float64
		inSample        float64 // Optimize's normalised score on all three
	}{
		{
			profile: "standard",
			folds: map[string]fold{
				// a: trained on b, c: 0.5 earns −1 −0.11 −0.11 +2 = 0.78 > −1 (fire nowhere).
				// a at 0.5: window at its first row +1, false alarm at 0.55 −0.11.
				"a": {th: 0.5, raw: 0.89, tp: 1, fp: 1},
				// b: trained on a, c: 0.9 earns +1; lower ones add false alarms only.
				// b at 0.9: window missed −1; its false alarm at 0.8 is below.
				"b": {th: 0.9, raw: -1, fn: 1},
				// c: trained on a, b: 0.5 earns −2 +2 −0.11 −0.11 +2 = 1.78.
				"c": {th: 0.5, raw: -0.11, fp: 1},
			},
			raw:        0.89 - 1 - 0.11,
			normalized: 100 * (0.89 - 1 - 0.11 + 2) / 4, // 44.5
			// In sample, 0.5 for all: 2 windows, 3 false alarms: 2 − 0.33.
			inSample: 100 * (2 - 0.33 + 2) / 4, // 91.75
		},
		{
			profile: "reward_low_FP_rate",
			folds: map[string]fold{
				"a": {th: 0.5, raw: 0.78, tp: 1, fp: 1},
				"b": {th: 0.9, raw: -1, fn: 1},
				"c": {th: 0.5, raw: -0.22, fp: 1},
			},
			raw:        0.78 - 1 - 0.22,
			normalized: 100 * (0.78 - 1 - 0.22 + 2) / 4, // 39
			inSample:   100 * (2 - 0.66 + 2) / 4,        // 83.5
		},
		{
			profile: "reward_low_FN_rate",
			folds: map[string]fold{
				// b: trained on a, c: 0.9 earns +1 against −2 firing nowhere.
				"a": {th: 0.5, raw: 0.89, tp: 1, fp: 1},
				"b": {th: 0.9, raw: -2, fn: 1},
				"c": {th: 0.5, raw: -0.11, fp: 1},
			},
			raw:        0.89 - 2 - 0.11,
			normalized: 100 * (0.89 - 2 - 0.11 + 4) / 6, // 46.33
			inSample:   100 * (2 - 0.33 + 4) / 6,        // 94.5
		},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			c, scores := cvCorpus()
			p := profiles[tc.profile]
			cv, err := CrossValidate(c, scores, p)
			if err != nil {
				t.Fatal(err)
			}
			near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
			if len(cv.Folds) != len(tc.folds) {
				t.Fatalf("%d folds, want %d", len(cv.Folds), len(tc.folds))
			}
			for i, f := range cv.Folds {
				want, ok := tc.folds[f.Category]
				if !ok || (i > 0 && cv.Folds[i-1].Category >= f.Category) {
					t.Fatalf("fold %d: category %q: want a, b, c in order", i, f.Category)
				}
				r := f.Result
				if f.Threshold != want.th || r.Threshold != want.th || !near(r.Raw, want.raw) ||
					r.TP != want.tp || r.FP != want.fp || r.FN != want.fn || len(r.Files) != 1 {
					t.Errorf("fold %s: threshold %v, raw %v, TP %d FP %d FN %d, %d files; want %+v and 1 file",
						f.Category, f.Threshold, r.Raw, r.TP, r.FP, r.FN, len(r.Files), want)
				}
			}
			cb := cv.Combined
			if !near(cb.Raw, tc.raw) || !near(cb.Null, -2*p.FN) || !near(cb.Perfect, 2*p.TP) ||
				!near(cb.Normalized, tc.normalized) || !math.IsNaN(cb.Threshold) || cb.Profile != p.Name ||
				cb.TP != 1 || cb.FP != 2 || cb.FN != 1 {
				t.Errorf("combined %+v; want raw %v, null %v, perfect %v, score %v, TP 1 FP 2 FN 1, threshold NaN",
					cb, tc.raw, -2*p.FN, 2*p.TP, tc.normalized)
			}
			for i, f := range cb.Files {
				if f.Name != c.Series[i].Name || !near(f.Raw, tc.folds[Category(f.Name)].raw) {
					t.Errorf("combined file %d: %+v; want %s with its fold's raw score", i, f, c.Series[i].Name)
				}
			}
			// The in-sample score is higher: the held-out b is what it loses.
			if _, r, err := Optimize(c, scores, p); err != nil || !near(r.Normalized, tc.inSample) {
				t.Errorf("in sample: %v, %v; want %v", r.Normalized, err, tc.inSample)
			}
		})
	}
}

func TestCrossValidateErrors(t *testing.T) {
	c, scores := cvCorpus()
	one := &Corpus{Series: c.Series[:1], Windows: map[string][]Window{"a/x.csv": c.Windows["a/x.csv"]}}
	if _, err := CrossValidate(one, map[string][]float64{"a/x.csv": scores["a/x.csv"]}, Profiles()[0]); err == nil ||
		!strings.Contains(err.Error(), "1 categories (a): want at least 2") {
		t.Errorf("one category: %v; want an error saying 2 are needed", err)
	}
	delete(scores, "b/y.csv")
	if _, err := CrossValidate(c, scores, Profiles()[0]); err == nil || !strings.Contains(err.Error(), "no scores for b/y.csv") {
		t.Errorf("missing scores: %v; want an error naming b/y.csv", err)
	}
}

func TestCategories(t *testing.T) {
	c := &Corpus{Series: []Series{{Name: "top.csv"}, {Name: "realTraffic/s.csv"}, {Name: "art/deep/x.csv"}, {Name: "art/y.csv"}}}
	if got := strings.Join(Categories(c), " "); got != ". art realTraffic" {
		t.Errorf("Categories: %q; want \". art realTraffic\"", got)
	}
}

func TestWriteCVReport(t *testing.T) {
	c, scores := cvCorpus()
	cv, err := CrossValidate(c, scores, Profiles()[0])
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteCVReport(&b, []CVResult{cv}); err != nil {
		t.Fatal(err)
	}
	want := `profile   score  raw     TP  FP  FN
standard  44.50  -0.220  1   2   1

standard, per category (threshold chosen on the other categories):
  category  files  windows  threshold  score  raw     TP  FP  FN
  a         1      1        0.5        94.50  0.890   1   1   0
  b         1      1        0.9        0.00   -1.000  0   0   1
  c         1      0        0.5        -      -0.110  0   1   0
`
	if b.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestCrossValidateTuned: each fold's tuner sees only the other
// categories, and the left-out category is scored with what it chose. The
// tuner here picks, among two sets of scores, the one whose best score on
// its training series is higher: "good" scores every window perfectly on
// a and c, "bad" detects nothing. b is left out of one fold, whose tuner
// sees a and c and picks "good"; on b, "good" fires late (row 58) and
// "bad" never, so b is scored as a late detection.
func TestCrossValidateTuned(t *testing.T) {
	c, _ := cvCorpus()
	good := map[string][]float64{}
	bad := map[string][]float64{}
	for _, s := range c.Series {
		good[s.Name], bad[s.Name] = make([]float64, 100), make([]float64, 100)
	}
	good["a/x.csv"][50] = 1
	good["b/y.csv"][58] = 1
	p := Profiles()[0]
	var seen [][]string
	tune := func(train *Corpus, p Profile) (Choice, error) {
		var names []string
		for _, s := range train.Series {
			names = append(names, s.Name)
		}
		seen = append(seen, names)
		_, rg, _ := Optimize(train, Subset(train, good), p)
		_, rb, _ := Optimize(train, Subset(train, bad), p)
		if rg.Raw >= rb.Raw {
			th, _, err := Optimize(train, Subset(train, good), p)
			return Choice{Settings: "good", Threshold: th, Scores: good}, err
		}
		th, _, err := Optimize(train, Subset(train, bad), p)
		return Choice{Settings: "bad", Threshold: th, Scores: bad}, err
	}
	cv, err := CrossValidateTuned(c, p, tune)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"b/y.csv", "c/z.csv"}, {"a/x.csv", "c/z.csv"}, {"a/x.csv", "b/y.csv"}}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("tuner saw %v, want %v", seen, want)
	}
	for _, f := range cv.Folds {
		if f.Settings != "good" {
			t.Errorf("fold %s: settings %q, want good", f.Category, f.Settings)
		}
	}
	if b := cv.Folds[1].Result; b.TP != 1 || b.Raw >= 0.5 {
		t.Errorf("fold b: TP %d raw %.3f, want the late detection at row 58 (TP 1, raw < 0.5)", b.TP, b.Raw)
	}
	var buf bytes.Buffer
	if err := WriteCVReport(&buf, []CVResult{cv}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "settings and threshold chosen on the other categories") || !strings.Contains(buf.String(), "good") {
		t.Errorf("report names no settings:\n%s", buf.String())
	}
}
