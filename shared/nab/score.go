package nab

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
)

// Profile weighs the outcomes of detections, like NAB's application
// profiles.
type Profile struct {
	Name string
	TP   float64 // A_TP: reward of a detection on the first row of a window
	FP   float64 // A_FP: cost of a false positive far from any window
	FN   float64 // A_FN: cost of a missed window
}

// Profiles returns NAB's three profiles, standard first, in a new slice the
// caller owns.
func Profiles() []Profile {
	return []Profile{
		{Name: "standard", TP: 1, FP: 0.11, FN: 1},
		{Name: "reward_low_FP_rate", TP: 1, FP: 0.22, FN: 1},
		{Name: "reward_low_FN_rate", TP: 1, FP: 0.11, FN: 2},
	}
}

// Validate reports every problem of p, joined: an empty name, a weight
// that is negative or not finite, or a zero TP weight (which would make
// every detector score the same).
func (p Profile) Validate() error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("profile name: empty"))
	}
	for _, w := range []struct {
		name string
		v    float64
	}{{"TP", p.TP}, {"FP", p.FP}, {"FN", p.FN}} {
		if !(w.v >= 0) || math.IsInf(w.v, 0) {
			errs = append(errs, fmt.Errorf("profile %q weight %s %v: want a finite number >= 0", p.Name, w.name, w.v))
		}
	}
	if p.TP == 0 {
		errs = append(errs, fmt.Errorf("profile %q weight TP 0: want > 0", p.Name))
	}
	return errors.Join(errs...)
}

// Result is the score of a detector's output over a corpus under one
// profile and threshold.
type Result struct {
	Profile   string
	Threshold float64
	// Raw is the sum of every file's raw score.
	Raw float64
	// Null is the raw score of a detector that never fires: −A_FN per
	// scored window. Perfect is A_TP per scored window.
	Null, Perfect float64
	// Normalized is 100·(Raw−Null)/(Perfect−Null): 0 for a detector that
	// never fires, 100 for a perfect one; NaN when no window is scored.
	Normalized float64
	// TP counts detected windows, FN missed windows, FP false-positive
	// rows; probationary rows count nowhere.
	TP, FP, FN int
	Files      []FileResult // one per series, in corpus order
}

// FileResult is the part of a Result due to one series.
type FileResult struct {
	Name       string
	Raw        float64
	TP, FP, FN int
}

// probation returns the number of leading rows of an n-row series that are
// not scored. NAB computes min(floor(0.15·n), 750) in floating point; the
// integer form below gives the same value for every n (checked for
// n <= 5000, beyond which both are 750).
func probation(n int) int { return min(15*n/100, 750) }

// scaledSigmoid is NAB's S(p) = 2/(1+e^(5p)) − 1, taken as −1 from p = 3
// on (as NAB's code does; also covers p = +Inf).
func scaledSigmoid(p float64) float64 {
	if p >= 3 {
		return -1
	}
	return 2/(1+math.Exp(5*p)) - 1
}

// walk calls fn for every scored row i of an n-row series with windows
// wins, in row order, with the index in wins of the window holding i (−1
// outside all windows) and what a detection at i is worth under p: a
// reward inside a window, a (negative) cost outside.
func walk(n int, wins []Window, p Profile, fn func(i, win int, worth float64)) {
	maxS := scaledSigmoid(-1)
	next := 0                   // first window that does not end before i
	prevEnd, prevWidth := -1, 0 // the most recent window ending before i
	for i := probation(n); i < n; i++ {
		for next < len(wins) && wins[next].End < i {
			prevEnd, prevWidth = wins[next].End, wins[next].End-wins[next].Start+1
			next++
		}
		if next < len(wins) && wins[next].Start <= i {
			w := wins[next]
			pos := -float64(w.End-i+1) / float64(w.End-w.Start+1)
			// TP·(S/maxS) rather than TP·S/maxS: the first row of a window
			// then earns exactly TP, so a perfect detector scores exactly 100.
			fn(i, next, p.TP*(scaledSigmoid(pos)/maxS))
			continue
		}
		pos := 3.0 // no earlier window: full cost
		if prevEnd >= 0 {
			// +Inf for a one-row window: full cost as well.
			pos = float64(i-prevEnd) / float64(prevWidth-1)
		}
		fn(i, -1, p.FP*scaledSigmoid(pos))
	}
}

// scoredWindows counts the windows of an n-row series that end after the
// probationary period.
func scoredWindows(n int, wins []Window) int {
	k := 0
	for _, w := range wins {
		if w.End >= probation(n) {
			k++
		}
	}
	return k
}

// checkInputs reports, joined, every reason why scores cannot be scored
// against c under p.
func checkInputs(c *Corpus, scores map[string][]float64, p Profile) error {
	errs := []error{p.Validate(), c.Validate()}
	known := make(map[string]bool, len(c.Series))
	for _, s := range c.Series {
		known[s.Name] = true
		sc, ok := scores[s.Name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%w: no scores for %s", ErrMismatch, s.Name))
		case len(sc) != len(s.Times):
			errs = append(errs, fmt.Errorf("%w: %d scores for %s, which has %d rows", ErrMismatch, len(sc), s.Name, len(s.Times)))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(scores)) {
		if !known[name] {
			errs = append(errs, fmt.Errorf("%w: scores for %s, which is not in the corpus", ErrMismatch, name))
		}
	}
	return errors.Join(errs...)
}

// Score scores the detector output scores (one score per row for every
// series of c, keyed by series name) under p, a row being a detection when
// its score is >= threshold. It returns an error wrapping ErrMismatch when
// scores and c do not match, and one naming every bad field of p or c.
// It only reads its arguments.
func Score(c *Corpus, scores map[string][]float64, p Profile, threshold float64) (Result, error) {
	if err := checkInputs(c, scores, p); err != nil {
		return Result{}, fmt.Errorf("score under profile %q: %w", p.Name, err)
	}
	return score(c, scores, p, threshold), nil
}

func score(c *Corpus, scores map[string][]float64, p Profile, threshold float64) Result {
	r := Result{Profile: p.Name, Threshold: threshold, Files: make([]FileResult, 0, len(c.Series))}
	windows := 0
	for _, s := range c.Series {
		wins, sc := c.Windows[s.Name], scores[s.Name]
		f := FileResult{Name: s.Name}
		detected := make([]bool, len(wins))
		walk(len(sc), wins, p, func(i, w int, worth float64) {
			switch {
			case !(sc[i] >= threshold): // NaN is no detection
			case w < 0:
				f.FP++
				f.Raw += worth
			case !detected[w]: // the earliest detection of the window
				detected[w] = true
				f.TP++
				f.Raw += worth
			}
		})
		k := scoredWindows(len(sc), wins)
		f.FN = k - f.TP
		f.Raw -= float64(f.FN) * p.FN
		windows += k
		r.Raw += f.Raw
		r.TP += f.TP
		r.FP += f.FP
		r.FN += f.FN
		r.Files = append(r.Files, f)
	}
	r.Null = -p.FN * float64(windows)
	r.Perfect = p.TP * float64(windows)
	r.Normalized = math.NaN()
	if windows > 0 {
		r.Normalized = 100 * (r.Raw - r.Null) / (r.Perfect - r.Null)
	}
	return r
}

// Optimize returns the threshold, shared by all series, that maximises the
// raw score of scores under p, and the Result at that threshold. Among
// equally good thresholds it returns the highest.
//
// The search is exact: the scored rows are sorted by score, highest first,
// and the raw score is updated as each distinct score value is admitted as
// the threshold, which takes O(n log n) for n rows. NaN scores are never
// detections. When firing nowhere is best, the threshold is the smallest
// float64 above every score (math.MaxFloat64 when no row is scored).
// Errors are those of Score.
func Optimize(c *Corpus, scores map[string][]float64, p Profile) (float64, Result, error) {
	if err := checkInputs(c, scores, p); err != nil {
		return 0, Result{}, fmt.Errorf("optimize threshold for profile %q: %w", p.Name, err)
	}
	type row struct {
		score, worth float64
		win          int // corpus-wide window index, −1 outside windows
	}
	var rows []row
	windows := 0
	for _, s := range c.Series {
		wins, sc := c.Windows[s.Name], scores[s.Name]
		base := windows
		walk(len(sc), wins, p, func(i, w int, worth float64) {
			if math.IsNaN(sc[i]) {
				return
			}
			if w >= 0 {
				w += base
			}
			rows = append(rows, row{sc[i], worth, w})
		})
		windows += len(wins)
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(b.score, a.score) })

	// Start from "fire nowhere": every scored window missed. value[w] is
	// what window w earns once detected: its most rewarded detection so
	// far, which is its earliest.
	total := 0.0
	for _, s := range c.Series {
		total -= p.FN * float64(scoredWindows(len(s.Times), c.Windows[s.Name]))
	}
	value := make([]float64, windows)
	detected := make([]bool, windows)
	best, bestThreshold := total, math.MaxFloat64 // MaxFloat64: no scored row at all
	switch {
	case len(rows) == 0:
	case math.IsInf(rows[0].score, 1):
		best = math.Inf(-1) // firing nowhere is impossible
	default:
		bestThreshold = math.Nextafter(rows[0].score, math.Inf(1))
	}
	for i := 0; i < len(rows); {
		th := rows[i].score
		for ; i < len(rows) && rows[i].score == th; i++ {
			r := rows[i]
			switch {
			case r.win < 0:
				total += r.worth
			case !detected[r.win]:
				detected[r.win] = true
				total += r.worth + p.FN
				value[r.win] = r.worth
			case r.worth > value[r.win]:
				total += r.worth - value[r.win]
				value[r.win] = r.worth
			}
		}
		if total > best {
			best, bestThreshold = total, th
		}
	}
	return bestThreshold, score(c, scores, p, bestThreshold), nil
}
