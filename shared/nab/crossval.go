package nab

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Fold is one category's turn in a leave-one-category-out
// cross-validation: the threshold chosen on every other category, and the
// category's own series scored at it.
type Fold struct {
	Category string
	// Threshold and Settings are what the Tuner chose on the series of
	// every other category; this category's series played no part in
	// them.
	Threshold float64
	Settings  string
	// Result scores this category's series only, at Threshold. Its
	// Normalized is NaN for a category without scored windows.
	Result Result
}

// CVResult is a leave-one-category-out cross-validation under one profile.
type CVResult struct {
	// Combined scores the whole corpus, every series at the threshold of
	// its category's fold: Raw, Null, Perfect and the counts are the sums
	// over the folds, and Normalized is computed from those sums as in
	// Score. Its Threshold is NaN (there is one per fold) and its Files
	// are in corpus order.
	Combined Result
	Folds    []Fold // one per category, sorted by category
}

// Category returns the category of a series name: its first path element
// ("realTraffic" for "realTraffic/speed_t4013.csv"), or "." for a series
// at the top of the data directory.
func Category(name string) string {
	if i := strings.IndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return "."
}

// Categories returns the sorted categories of c's series.
func Categories(c *Corpus) []string {
	var cats []string
	for _, s := range c.Series {
		cats = append(cats, Category(s.Name))
	}
	slices.Sort(cats)
	return slices.Compact(cats)
}

// subset returns the part of c and scores whose series keep says yes to.
// The series are shared with c, not copied.
func subset(c *Corpus, scores map[string][]float64, keep func(name string) bool) (*Corpus, map[string][]float64) {
	sub := &Corpus{Windows: map[string][]Window{}}
	sc := map[string][]float64{}
	for _, s := range c.Series {
		if !keep(s.Name) {
			continue
		}
		sub.Series = append(sub.Series, s)
		if w, ok := c.Windows[s.Name]; ok {
			sub.Windows[s.Name] = w
		}
		sc[s.Name] = scores[s.Name]
	}
	return sub, sc
}

// Choice is what a Tuner chose: the detector settings (described, "" when
// only the threshold is tuned), the threshold, and the scores of the
// corpus' series under those settings.
type Choice struct {
	Settings  string
	Threshold float64
	Scores    map[string][]float64 // by series name: at least every series of the corpus
}

// A Tuner chooses settings and a threshold under p on the series of train
// alone, the way the detector's tuned quantities are chosen.
type Tuner func(train *Corpus, p Profile) (Choice, error)

// ThresholdTuner tunes only the threshold (Optimize) of fixed scores.
func ThresholdTuner(scores map[string][]float64) Tuner {
	return func(train *Corpus, p Profile) (Choice, error) {
		th, _, err := Optimize(train, Subset(train, scores), p)
		return Choice{Threshold: th, Scores: scores}, err
	}
}

// Subset returns the scores of c's series.
func Subset(c *Corpus, scores map[string][]float64) map[string][]float64 {
	sub := make(map[string][]float64, len(c.Series))
	for _, s := range c.Series {
		sub[s.Name] = scores[s.Name]
	}
	return sub
}

// CrossValidate scores scores under p by leave-one-category-out
// cross-validation, tuning the threshold only: CrossValidateTuned with
// ThresholdTuner(scores). It needs at least two categories.
func CrossValidate(c *Corpus, scores map[string][]float64, p Profile) (CVResult, error) {
	if err := checkInputs(c, scores, p); err != nil {
		return CVResult{}, fmt.Errorf("cross-validate under profile %q: %w", p.Name, err)
	}
	return CrossValidateTuned(c, p, ThresholdTuner(scores))
}

// CrossValidateTuned scores a detector under p by leave-one-category-out
// cross-validation: for each category (see Categories) tune chooses the
// settings and threshold on the series of every other category, and the
// category's series are scored with them. Combined is then an honest
// estimate of the score on unseen series, unlike Optimize's, which
// chooses the threshold on the very series it scores, as long as tune
// chooses everything that was chosen by looking at scores. It needs at
// least two categories. Errors are tune's and those of Score.
func CrossValidateTuned(c *Corpus, p Profile, tune Tuner) (CVResult, error) {
	if err := c.Validate(); err != nil {
		return CVResult{}, fmt.Errorf("cross-validate under profile %q: %w", p.Name, err)
	}
	cats := Categories(c)
	if len(cats) < 2 {
		return CVResult{}, fmt.Errorf("cross-validate under profile %q: %d categories (%s): want at least 2",
			p.Name, len(cats), strings.Join(cats, ", "))
	}
	res := CVResult{Combined: Result{Profile: p.Name, Threshold: math.NaN()}}
	files := map[string]FileResult{}
	for _, cat := range cats {
		train, _ := subset(c, nil, func(name string) bool { return Category(name) != cat })
		ch, err := tune(train, p)
		if err != nil {
			return CVResult{}, fmt.Errorf("cross-validate category %s: %w", cat, err)
		}
		test, testScores := subset(c, ch.Scores, func(name string) bool { return Category(name) == cat })
		if err := checkInputs(test, testScores, p); err != nil {
			return CVResult{}, fmt.Errorf("cross-validate category %s: %w", cat, err)
		}
		r := score(test, testScores, p, ch.Threshold)
		res.Folds = append(res.Folds, Fold{Category: cat, Threshold: ch.Threshold, Settings: ch.Settings, Result: r})
		res.Combined.Raw += r.Raw
		res.Combined.Null += r.Null
		res.Combined.Perfect += r.Perfect
		res.Combined.TP += r.TP
		res.Combined.FP += r.FP
		res.Combined.FN += r.FN
		for _, f := range r.Files {
			files[f.Name] = f
		}
	}
	for _, s := range c.Series {
		res.Combined.Files = append(res.Combined.Files, files[s.Name])
	}
	res.Combined.Normalized = math.NaN()
	if res.Combined.Perfect != res.Combined.Null {
		res.Combined.Normalized = 100 * (res.Combined.Raw - res.Combined.Null) / (res.Combined.Perfect - res.Combined.Null)
	}
	return res, nil
}

// formatScore writes a normalised score with two decimals, or "-" when it
// is undefined (no scored window).
func formatScore(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// WriteCVReport writes cross-validations to w as plain text tables: one
// line per profile with the combined score, then, per profile, one line
// per category with the threshold chosen without it (6 significant
// digits), its score ("-" when it has no window to score), raw score and
// TP/FP/FN counts. It returns any write error.
func WriteCVReport(w io.Writer, results []CVResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "profile\tscore\traw\tTP\tFP\tFN\n")
	for _, r := range results {
		c := r.Combined
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%d\t%d\t%d\n", c.Profile, formatScore(c.Normalized), c.Raw, c.TP, c.FP, c.FN)
	}
	err := tw.Flush()
	for _, r := range results {
		if err != nil {
			return err
		}
		tuned := slices.ContainsFunc(r.Folds, func(f Fold) bool { return f.Settings != "" })
		what := "threshold"
		if tuned {
			what = "settings and threshold"
		}
		fmt.Fprintf(w, "\n%s, per category (%s chosen on the other categories):\n", r.Combined.Profile, what)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  category\tfiles\twindows\tthreshold\tscore\traw\tTP\tFP\tFN")
		if tuned {
			fmt.Fprintf(tw, "\tsettings")
		}
		fmt.Fprintln(tw)
		for _, f := range r.Folds {
			fr := f.Result
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%s\t%.3f\t%d\t%d\t%d", f.Category, len(fr.Files), fr.TP+fr.FN,
				strconv.FormatFloat(f.Threshold, 'g', 6, 64), formatScore(fr.Normalized), fr.Raw, fr.TP, fr.FP, fr.FN)
			if tuned {
				fmt.Fprintf(tw, "\t%s", f.Settings)
			}
			fmt.Fprintln(tw)
		}
		err = tw.Flush()
	}
	return err
}
