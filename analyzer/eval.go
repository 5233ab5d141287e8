package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/anomaly"
	"github.com/metricpipe/metricpipe/shared/forecast"
	"github.com/metricpipe/metricpipe/shared/nab"
	"github.com/metricpipe/metricpipe/shared/service"
)

// evalConfig is the configuration of `analyzer eval`.
type evalConfig struct {
	DataDir, LabelsFile, OutDir string
	// Thresholds, when set, is a thresholds file (from SaveThresholds) to
	// apply unchanged instead of choosing thresholds on this corpus.
	Thresholds string
	// SaveThresholds, when set, receives the thresholds chosen here.
	SaveThresholds string
	// FailBelow, by profile, fails the run when the headline score is
	// below it: a quality gate for CI.
	FailBelow map[string]float64
	Analysis  analysis
}

func (c evalConfig) Validate() error {
	var errs []error
	for _, f := range []struct{ flag, v string }{{"--data", c.DataDir}, {"--labels", c.LabelsFile}, {"--out", c.OutDir}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("%s is required", f.flag))
		}
	}
	if c.Thresholds != "" && c.SaveThresholds != "" {
		errs = append(errs, errors.New("--thresholds and --save-thresholds: give one (apply thresholds, or choose and save them)"))
	}
	for name := range c.FailBelow {
		if !slices.ContainsFunc(nab.Profiles(), func(p nab.Profile) bool { return p.Name == name }) {
			errs = append(errs, fmt.Errorf("--fail-below %s: no such profile", name))
		}
	}
	errs = append(errs, c.Analysis.Forecast.Validate(), c.Analysis.Anomaly.Validate())
	return errors.Join(errs...)
}

// parseFloors reads --fail-below values, PROFILE=SCORE each.
func parseFloors(values []string) (map[string]float64, error) {
	floors := map[string]float64{}
	var errs []error
	for _, v := range values {
		name, score, ok := strings.Cut(v, "=")
		f, err := strconv.ParseFloat(score, 64)
		if !ok || err != nil || math.IsNaN(f) {
			errs = append(errs, fmt.Errorf("--fail-below %q: want PROFILE=SCORE, e.g. standard=60", v))
			continue
		}
		floors[name] = f
	}
	return floors, errors.Join(errs...)
}

// evalCommand scores the analyzer's streaming detector on an NAB-format
// corpus: the same forecasters and scoring the service runs, offline.
func evalCommand() *cli.Command {
	env := service.EnvVars
	return &cli.Command{
		Name:  "eval",
		Usage: "score the anomaly detector on a labelled corpus in Numenta Anomaly Benchmark format",
		Description: "Runs the analyzer's detector over every CSV series (timestamp,value) under --data, writes\n" +
			"<out>/<category>/<name>.csv (timestamp,value,anomaly_score), and prints the NAB scores of the\n" +
			"standard, reward_low_FP_rate and reward_low_FN_rate profiles (headline: leave-one-category-out\n" +
			"cross-validation, each category (data subdirectory) scored at the threshold chosen on the others;\n" +
			"then the in-sample score, tuned and scored on all files) and the one-step forecast's MASE. The detector\n" +
			"settings that were chosen by looking at NAB scores are chosen again in every fold, on the other\n" +
			"categories only, with the threshold; result files and saved thresholds are the configured settings'.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "corpus data folder (category/name.csv files)", EnvVars: env("data")},
			&cli.StringFlag{Name: "labels", Usage: "label windows file (NAB combined_windows.json format)", EnvVars: env("labels")},
			&cli.StringFlag{Name: "out", Usage: "folder for the result files", EnvVars: env("out")},
			&cli.StringFlag{Name: "thresholds", Usage: "apply the thresholds saved in this file instead of choosing them on this corpus", EnvVars: env("thresholds")},
			&cli.StringFlag{Name: "save-thresholds", Usage: "save the thresholds chosen on this corpus to this file", EnvVars: env("save-thresholds")},
			&cli.StringFlag{Name: "model", Value: string(forecast.DefaultConfig().Kind), Usage: "forecaster: holt, holt-winters, ar or auto", EnvVars: env("model")},
			&cli.StringFlag{Name: "season", Usage: "seasonal period in points for Holt-Winters (empty: none)", EnvVars: env("season")},
			&cli.IntFlag{Name: "ar-order", Value: forecast.DefaultConfig().Order, Usage: "order p of the autoregressive model", EnvVars: env("ar-order")},
			&cli.IntFlag{Name: "warm-up", Value: anomaly.DefaultConfig().WarmUp, Usage: "points before a series can raise anomalies (and two days of its own time if it is sampled every 5 minutes or slower)", EnvVars: env("warm-up")},
			&cli.StringSliceFlag{Name: "fail-below", Usage: "PROFILE=SCORE: exit non-zero when the headline (cross-validated) score of PROFILE is below SCORE; repeatable", EnvVars: env("fail-below")},
		},
		Action: func(c *cli.Context) error {
			a := analysis{Forecast: forecast.DefaultConfig(), Anomaly: anomaly.DefaultConfig()}
			a.Forecast.Kind = forecast.Kind(c.String("model"))
			a.Forecast.Order = c.Int("ar-order")
			a.Anomaly.WarmUp = c.Int("warm-up")
			points, period, err := parseSeason(c.String("season"))
			if err == nil && period > 0 {
				err = fmt.Errorf("--season %s: eval takes a season in points", period)
			}
			a.Forecast.Season = points
			floors, ferr := parseFloors(c.StringSlice("fail-below"))
			cfg := evalConfig{DataDir: c.String("data"), LabelsFile: c.String("labels"), OutDir: c.String("out"),
				Thresholds: c.String("thresholds"), SaveThresholds: c.String("save-thresholds"), FailBelow: floors, Analysis: a}
			if err := errors.Join(err, ferr, cfg.Validate()); err != nil {
				return err
			}
			return runEval(c, cfg, c.App.Writer)
		},
	}
}

func runEval(c *cli.Context, cfg evalConfig, w io.Writer) error {
	corpus, err := nab.LoadCorpus(cfg.DataDir, cfg.LabelsFile)
	if err != nil {
		return err
	}
	start := time.Now()
	scores, mases, err := detect(c.Context, corpus, cfg.Analysis.Forecast, cfg.Analysis.Anomaly, cfg.OutDir)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)

	var saved map[string]float64
	var tune *tuner
	if cfg.Thresholds != "" {
		if saved, err = nab.LoadThresholds(cfg.Thresholds); err != nil {
			return err
		}
	} else {
		tune = newTuner(c.Context, corpus, cfg.Analysis.Forecast, cfg.Analysis.Anomaly)
		tune.runs[cfg.Analysis.Anomaly] = scores
	}
	rows := 0
	for _, s := range corpus.Series {
		rows += len(s.Values)
	}
	fmt.Fprintf(w, "%d series, %d rows, model %s, in %s\n", len(corpus.Series), rows,
		cfg.Analysis.Forecast.Kind, elapsed.Round(time.Millisecond))
	chosen, headline, err := writeScores(w, corpus, scores, tune, saved, cfg.Thresholds)
	if err != nil {
		return err
	}
	if tune != nil {
		fmt.Fprintf(w, "tuning ran the detector with %d settings in %s\n", len(tune.runs), tune.spent.Round(time.Millisecond))
	}
	if cfg.SaveThresholds != "" {
		if err := nab.SaveThresholds(cfg.SaveThresholds, chosen); err != nil {
			return err
		}
	}
	all := make([]float64, 0, len(mases))
	for _, m := range mases {
		all = append(all, m)
	}
	if _, err := fmt.Fprintf(w, "one-step forecast MASE against the last value: median %.3f over %d series\n", median(all), len(all)); err != nil {
		return err
	}
	return checkFloors(cfg.FailBelow, headline)
}

// checkFloors reports every profile whose headline score is below its
// floor (--fail-below), or missing.
func checkFloors(floors map[string]float64, headline map[string]float64) error {
	var errs []error
	for _, p := range nab.Profiles() {
		floor, ok := floors[p.Name]
		if !ok {
			continue
		}
		got, ok := headline[p.Name]
		if !ok || !(got >= floor) {
			errs = append(errs, fmt.Errorf("--fail-below %s=%g: the cross-validated %s score is %.2f", p.Name, floor, p.Name, got))
		}
	}
	return errors.Join(errs...)
}

// writeScores writes the NAB scores of scores (the analyzer's settings)
// on corpus to w, and returns the thresholds to save and the headline
// score by profile.
//
// With saved thresholds (read from the file from) it scores every
// profile at its saved threshold: nothing is chosen on this corpus.
// Otherwise the headline is a leave-one-category-out cross-validation
// (when the corpus has at least two categories) in which tune chooses,
// on the other categories only, the threshold and the tuned settings
// (tunedKnobs; with a nil tune, the threshold only). Then, as secondary
// lines: the cross-validation with the analyzer's settings fixed, and the
// in-sample score, everything chosen on all the series and scored on
// them, which flatters the detector. The thresholds returned are the
// in-sample ones of the analyzer's settings: tuned on every series, they
// are the ones to apply to another corpus.
func writeScores(w io.Writer, corpus *nab.Corpus, scores map[string][]float64, tune *tuner, saved map[string]float64, from string) (chosen, headline map[string]float64, err error) {
	headline = map[string]float64{}
	if saved != nil {
		var results []nab.Result
		for _, p := range nab.Profiles() {
			th, ok := saved[p.Name]
			if !ok {
				return nil, nil, fmt.Errorf("%s: no threshold for profile %s", from, p.Name)
			}
			r, err := nab.Score(corpus, scores, p, th)
			if err != nil {
				return nil, nil, err
			}
			results = append(results, r)
			headline[p.Name] = r.Normalized
		}
		fmt.Fprintf(w, "NAB score at the thresholds from %s (none chosen on this corpus):\n", from)
		return nil, headline, nab.WriteReport(w, results)
	}

	cats := nab.Categories(corpus)
	chosen = map[string]float64{}
	var inSample []nab.Result
	var cvs, fixed []nab.CVResult
	var tunedInSample []string
	for _, p := range nab.Profiles() {
		th, r, err := nab.Optimize(corpus, scores, p)
		if err != nil {
			return nil, nil, err
		}
		chosen[p.Name] = th
		inSample = append(inSample, r)
		headline[p.Name] = r.Normalized
		if tune != nil {
			ch, err := tune.tune(corpus, p)
			if err != nil {
				return nil, nil, err
			}
			r, err := nab.Score(corpus, ch.Scores, p, ch.Threshold)
			if err != nil {
				return nil, nil, err
			}
			note := ""
			if ch.Settings != settingsOf(tune.start) {
				note = " (not the analyzer's)"
			}
			tunedInSample = append(tunedInSample, fmt.Sprintf("  %s\t%s\t%s%s", p.Name, formatScore(r.Normalized), ch.Settings, note))
		}
		if len(cats) < 2 {
			continue
		}
		cv, err := nab.CrossValidate(corpus, scores, p)
		if err != nil {
			return nil, nil, err
		}
		fixed = append(fixed, cv)
		if tune != nil {
			if cv, err = nab.CrossValidateTuned(corpus, p, tune.tune); err != nil {
				return nil, nil, err
			}
		}
		cvs = append(cvs, cv)
		headline[p.Name] = cv.Combined.Normalized
	}
	what := "the threshold"
	if tune != nil {
		what = describeTuning()
	}
	if cvs != nil {
		fmt.Fprintf(w, "NAB score, leave-one-category-out cross-validation over %d categories (%s):\n"+
			"each category scored with %s chosen on the other categories only\n", len(cats), strings.Join(cats, ", "), what)
		if err := nab.WriteCVReport(w, cvs); err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(w, "\nthe cross-validated score's sampling spread, how much it owes to which series are in the corpus:\n"+
			"its central %.0f%% over %d draws of %d series from these, with replacement, each scored as above:\n",
			100*bootstrapShare, bootstrapResamples, len(corpus.Series))
		if err := writeBootstrap(w, cvs, nil); err != nil {
			return nil, nil, err
		}
		if tune != nil {
			fmt.Fprintf(w, "\ncross-validated with the analyzer's settings fixed (%s), the threshold chosen per category\n"+
				"(optimistic: the settings were chosen on all the categories):\n", settingsOf(tune.start))
			if err := writeCombined(w, fixed); err != nil {
				return nil, nil, err
			}
			fmt.Fprintf(w, "what choosing the settings per category costs: the headline minus that, and its central %.0f%% over the same draws:\n",
				100*bootstrapShare)
			if err := writeBootstrap(w, cvs, fixed); err != nil {
				return nil, nil, err
			}
		}
		fmt.Fprintf(w, "\nin sample (optimistic: thresholds chosen on all %d series and scored on them):\n", len(corpus.Series))
	} else {
		fmt.Fprintf(w, "no cross-validation: it needs at least two categories (data subdirectories), this corpus has %d\n"+
			"in sample (optimistic: thresholds chosen on all %d series and scored on them):\n", len(cats), len(corpus.Series))
	}
	if err := nab.WriteReport(w, inSample); err != nil {
		return nil, nil, err
	}
	if tune != nil {
		fmt.Fprintf(w, "\nin sample with %s chosen on all %d series:\n", what, len(corpus.Series))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  profile\tscore\tsettings")
		for _, l := range tunedInSample {
			fmt.Fprintln(tw, l)
		}
		if err := tw.Flush(); err != nil {
			return nil, nil, err
		}
	}
	return chosen, headline, nil
}

// Bootstrap intervals of the headline (see nab.Bootstrap): a fixed seed,
// so that one corpus and detector always print the same interval.
const (
	bootstrapShare     = 0.9
	bootstrapResamples = 2000
	bootstrapSeed      = 1
)

// writeBootstrap writes, per profile (cvs and against in the order of
// nab.Profiles), the cross-validated score and its bootstrap interval, or
// with against, the score minus against's on the same series and the
// interval of that difference.
func writeBootstrap(w io.Writer, cvs, against []nab.CVResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, p := range nab.Profiles()[:len(cvs)] {
		c := cvs[i].Combined
		v := c.Normalized
		lo, hi := nab.Bootstrap(c, p, bootstrapShare, bootstrapResamples, bootstrapSeed)
		if against != nil {
			a := against[i].Combined
			v -= a.Normalized
			lo, hi = nab.BootstrapDifference(c, a, p, bootstrapShare, bootstrapResamples, bootstrapSeed)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s to %s\n", p.Name, formatScore(v), formatScore(lo), formatScore(hi))
	}
	return tw.Flush()
}

// writeCombined writes one line per profile: its cross-validated score.
func writeCombined(w io.Writer, cvs []nab.CVResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "profile\tscore\traw\tTP\tFP\tFN\n")
	for _, cv := range cvs {
		c := cv.Combined
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%d\t%d\t%d\n", c.Profile, formatScore(c.Normalized), c.Raw, c.TP, c.FP, c.FN)
	}
	return tw.Flush()
}

// formatScore writes a normalised score with two decimals, or "-" when it
// is undefined.
func formatScore(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// evalDetector is the analyzer's detector as NAB sees one series: a score
// per row, and the forecast errors for MASE.
type evalDetector struct {
	det      *anomaly.Detector
	p        anomaly.Params
	rows     int
	absErr   float64 // Σ|y − ŷ| over forecast rows
	naiveErr float64 // Σ|y − y_prev| over the same rows
	prev     float64
	n        int
}

// score runs the detector on the point (t, y), as the analyzer does.
func (d *evalDetector) score(t time.Time, y float64) float64 {
	v := d.det.ObserveAt(t.UnixNano(), y, d.p)
	if v.HasForecast && d.rows > 0 {
		d.absErr += math.Abs(y - v.Forecast)
		d.naiveErr += math.Abs(y - d.prev)
		d.n++
	}
	d.prev = y
	d.rows++
	if !v.Warm {
		return 0
	}
	return v.Score
}

// mase is the mean absolute scaled error of the one-step forecasts: their
// mean absolute error over that of the naive last-value forecast.
func (d *evalDetector) mase() float64 {
	if d.naiveErr == 0 {
		return math.NaN()
	}
	return d.absErr / d.naiveErr
}

func median(xs []float64) float64 {
	xs = slices.DeleteFunc(slices.Clone(xs), math.IsNaN)
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}
