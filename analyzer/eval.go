package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
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
	Analysis       analysis
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
	errs = append(errs, c.Analysis.Forecast.Validate(), c.Analysis.Anomaly.Validate())
	return errors.Join(errs...)
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
			"then the in-sample score, tuned and scored on all files) and the one-step forecast's MASE.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "corpus data folder (category/name.csv files)", EnvVars: env("data")},
			&cli.StringFlag{Name: "labels", Usage: "label windows file (NAB combined_windows.json format)", EnvVars: env("labels")},
			&cli.StringFlag{Name: "out", Usage: "folder for the result files", EnvVars: env("out")},
			&cli.StringFlag{Name: "thresholds", Usage: "apply the thresholds saved in this file instead of choosing them on this corpus", EnvVars: env("thresholds")},
			&cli.StringFlag{Name: "save-thresholds", Usage: "save the thresholds chosen on this corpus to this file", EnvVars: env("save-thresholds")},
			&cli.StringFlag{Name: "model", Value: string(forecast.DefaultConfig().Kind), Usage: "forecaster: holt, holt-winters, ar or auto", EnvVars: env("model")},
			&cli.StringFlag{Name: "season", Usage: "seasonal period in points for Holt-Winters (empty: none)", EnvVars: env("season")},
			&cli.IntFlag{Name: "ar-order", Value: forecast.DefaultConfig().Order, Usage: "order p of the autoregressive model", EnvVars: env("ar-order")},
			&cli.IntFlag{Name: "warm-up", Value: anomaly.DefaultConfig().WarmUp, Usage: "points before a series can raise anomalies", EnvVars: env("warm-up")},
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
			cfg := evalConfig{DataDir: c.String("data"), LabelsFile: c.String("labels"), OutDir: c.String("out"),
				Thresholds: c.String("thresholds"), SaveThresholds: c.String("save-thresholds"), Analysis: a}
			if err := errors.Join(err, cfg.Validate()); err != nil {
				return err
			}
			return runEval(c, cfg, c.App.Writer)
		},
	}
}

func runEval(c *cli.Context, cfg evalConfig, w io.Writer) error {
	params, err := anomaly.NewParams(cfg.Analysis.Anomaly)
	if err != nil {
		return err
	}
	corpus, err := nab.LoadCorpus(cfg.DataDir, cfg.LabelsFile)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	dets := map[string]*evalDetector{}
	start := time.Now()
	scores, err := nab.Run(c.Context, corpus, func(name string) nab.Detector {
		d, err := newEvalDetector(cfg.Analysis.Forecast, params)
		if err != nil {
			panic(err) // validated in evalConfig.Validate; Run reports a panic as an error
		}
		mu.Lock()
		dets[name] = d
		mu.Unlock()
		return nab.DetectorFunc(func(_ time.Time, v float64) float64 { return d.score(v) })
	}, cfg.OutDir)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)

	var saved map[string]float64
	if cfg.Thresholds != "" {
		if saved, err = nab.LoadThresholds(cfg.Thresholds); err != nil {
			return err
		}
	}
	rows := 0
	mases := make([]float64, 0, len(dets))
	for _, s := range corpus.Series {
		rows += len(s.Values)
		mases = append(mases, dets[s.Name].mase())
	}
	fmt.Fprintf(w, "%d series, %d rows, model %s, in %s\n", len(corpus.Series), rows,
		cfg.Analysis.Forecast.Kind, elapsed.Round(time.Millisecond))
	chosen, err := writeScores(w, corpus, scores, saved, cfg.Thresholds)
	if err != nil {
		return err
	}
	if cfg.SaveThresholds != "" {
		if err := nab.SaveThresholds(cfg.SaveThresholds, chosen); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(w, "one-step forecast MASE against the last value: median %.3f over %d series\n", median(mases), len(mases))
	return err
}

// writeScores writes the NAB scores of scores on corpus to w. With saved
// thresholds (read from the file from) it scores every profile at its
// saved threshold: nothing is tuned on this corpus. Otherwise the headline
// is a leave-one-category-out cross-validation, every category scored at
// the threshold chosen on the other categories (when the corpus has at
// least two), with a table per profile; then, as a secondary line, the
// in-sample score: the threshold chosen on all the series and scored on
// them, which flatters the detector. It returns the in-sample thresholds
// by profile (nil with saved thresholds), for --save-thresholds: tuned on
// every series, they are the ones to apply to another corpus.
func writeScores(w io.Writer, corpus *nab.Corpus, scores map[string][]float64, saved map[string]float64, from string) (map[string]float64, error) {
	if saved != nil {
		var results []nab.Result
		for _, p := range nab.Profiles() {
			th, ok := saved[p.Name]
			if !ok {
				return nil, fmt.Errorf("%s: no threshold for profile %s", from, p.Name)
			}
			r, err := nab.Score(corpus, scores, p, th)
			if err != nil {
				return nil, err
			}
			results = append(results, r)
		}
		fmt.Fprintf(w, "NAB score at the thresholds from %s (none chosen on this corpus):\n", from)
		return nil, nab.WriteReport(w, results)
	}

	cats := nab.Categories(corpus)
	chosen := map[string]float64{}
	var inSample []nab.Result
	var cvs []nab.CVResult
	for _, p := range nab.Profiles() {
		th, r, err := nab.Optimize(corpus, scores, p)
		if err != nil {
			return nil, err
		}
		chosen[p.Name] = th
		inSample = append(inSample, r)
		if len(cats) < 2 {
			continue
		}
		cv, err := nab.CrossValidate(corpus, scores, p)
		if err != nil {
			return nil, err
		}
		cvs = append(cvs, cv)
	}
	if cvs != nil {
		fmt.Fprintf(w, "NAB score, leave-one-category-out cross-validation over %d categories (%s):\n"+
			"each category scored at the threshold chosen on the other categories only\n", len(cats), strings.Join(cats, ", "))
		if err := nab.WriteCVReport(w, cvs); err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "\nin sample (optimistic: thresholds chosen on all %d series and scored on them):\n", len(corpus.Series))
	} else {
		fmt.Fprintf(w, "no cross-validation: it needs at least two categories (data subdirectories), this corpus has %d\n"+
			"in sample (optimistic: thresholds chosen on all %d series and scored on them):\n", len(cats), len(corpus.Series))
	}
	return chosen, nab.WriteReport(w, inSample)
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

func newEvalDetector(fc forecast.Config, p anomaly.Params) (*evalDetector, error) {
	f, err := forecast.New(fc)
	if err != nil {
		return nil, err
	}
	return &evalDetector{det: anomaly.NewDetector(f), p: p}, nil
}

func (d *evalDetector) score(y float64) float64 {
	v := d.det.Observe(y, d.p)
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
