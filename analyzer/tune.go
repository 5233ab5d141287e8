package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/metricpipe/metricpipe/shared/anomaly"
	"github.com/metricpipe/metricpipe/shared/forecast"
	"github.com/metricpipe/metricpipe/shared/nab"
)

// knob is one detector setting that was chosen by looking at NAB scores,
// and the values `analyzer eval` chooses it from in every fold of its
// cross-validation: around the default, by about a factor of two each way.
type knob struct {
	name   string
	values []float64
	get    func(anomaly.Config) float64
	set    func(*anomaly.Config, float64)
}

// tunedKnobs are the anomaly.Config settings eval tunes. The forecasters'
// own constants (package forecast) and the detector's seasonal and scale
// floor constants are not among them (see the README's detector section).
var tunedKnobs = []knob{
	{"onset-z", []float64{4, 4.5, 5, 5.5, 6},
		func(c anomaly.Config) float64 { return c.OnsetZ }, func(c *anomaly.Config, v float64) { c.OnsetZ = v }},
	{"calm-z", []float64{2, 2.5, 3, 3.5},
		func(c anomaly.Config) float64 { return c.CalmZ }, func(c *anomaly.Config, v float64) { c.CalmZ = v }},
	{"calm-len", []float64{25, 50, 100},
		func(c anomaly.Config) float64 { return float64(c.CalmLen) }, func(c *anomaly.Config, v float64) { c.CalmLen = int(v) }},
	{"min-episode", []float64{50, 100, 200},
		func(c anomaly.Config) float64 { return float64(c.MinEpisode) }, func(c *anomaly.Config, v float64) { c.MinEpisode = int(v) }},
	{"max-episode", []float64{300, 600, 1200},
		func(c anomaly.Config) float64 { return float64(c.MaxEpisode) }, func(c *anomaly.Config, v float64) { c.MaxEpisode = int(v) }},
	{"escalation", []float64{3, 5, 10, 20},
		func(c anomaly.Config) float64 { return c.Escalation }, func(c *anomaly.Config, v float64) { c.Escalation = v }},
	{"recurrence-half-life", []float64{1000, 2000, 3000, 5000, 10000},
		func(c anomaly.Config) float64 { return float64(c.RecurrenceHalfLife) }, func(c *anomaly.Config, v float64) { c.RecurrenceHalfLife = int(v) }},
}

// maxPasses bounds the coordinate descent of tuner.tune.
const maxPasses = 3

// tuner chooses the tunedKnobs on part of a corpus: coordinate descent
// from the configured settings, each knob in turn set to the value of its
// list that scores best under the standard profile (at the best
// threshold) on that part, until a pass changes nothing; then the
// threshold under the profile asked for. Every setting tried runs the detector over the
// whole corpus once; the scores are kept, so that the folds of a
// cross-validation share them. Not safe for concurrent use.
type tuner struct {
	ctx    context.Context
	corpus *nab.Corpus
	fc     forecast.Config
	start  anomaly.Config
	runs   map[anomaly.Config]map[string][]float64
	chosen map[string]anomaly.Config // by training set (trainKey)
	spent  time.Duration             // running the detector
}

func newTuner(ctx context.Context, corpus *nab.Corpus, fc forecast.Config, start anomaly.Config) *tuner {
	return &tuner{ctx: ctx, corpus: corpus, fc: fc, start: start,
		runs: map[anomaly.Config]map[string][]float64{}, chosen: map[string]anomaly.Config{}}
}

// scores returns the scores of the corpus under settings c, running the
// detector unless they are known.
func (t *tuner) scores(c anomaly.Config) (map[string][]float64, error) {
	if s, ok := t.runs[c]; ok {
		return s, nil
	}
	began := time.Now()
	s, _, err := detect(t.ctx, t.corpus, t.fc, c, "")
	t.spent += time.Since(began)
	if err != nil {
		return nil, err
	}
	t.runs[c] = s
	return s, nil
}

// tune is a nab.Tuner: the settings are chosen under the standard profile
// (the analyzer runs one detector, whatever an operator's costs), the
// threshold under p.
func (t *tuner) tune(train *nab.Corpus, p nab.Profile) (nab.Choice, error) {
	key := trainKey(train)
	c, ok := t.chosen[key]
	if !ok {
		var err error
		if c, err = t.descend(train, nab.Profiles()[0]); err != nil {
			return nab.Choice{}, err
		}
		t.chosen[key] = c
	}
	s, err := t.scores(c)
	if err != nil {
		return nab.Choice{}, err
	}
	th, _, err := nab.Optimize(train, nab.Subset(train, s), p)
	return nab.Choice{Settings: settingsOf(c), Threshold: th, Scores: s}, err
}

// trainKey names a set of series.
func trainKey(c *nab.Corpus) string {
	var b strings.Builder
	for _, s := range c.Series {
		b.WriteString(s.Name)
		b.WriteByte(0)
	}
	return b.String()
}

// descend chooses the tunedKnobs under p on train.
func (t *tuner) descend(train *nab.Corpus, p nab.Profile) (anomaly.Config, error) {
	at := func(c anomaly.Config) (float64, error) {
		s, err := t.scores(c)
		if err != nil {
			return 0, err
		}
		_, r, err := nab.Optimize(train, nab.Subset(train, s), p)
		return r.Normalized, err
	}
	best := t.start
	bestScore, err := at(best)
	if err != nil {
		return anomaly.Config{}, err
	}
	for range maxPasses {
		moved := false
		for _, k := range tunedKnobs {
			for _, v := range k.values {
				c := best
				k.set(&c, v)
				if c == best || c.Validate() != nil {
					continue
				}
				score, err := at(c)
				if err != nil {
					return anomaly.Config{}, err
				}
				if score > bestScore {
					best, bestScore, moved = c, score, true
				}
			}
		}
		if !moved {
			break
		}
	}
	return best, nil
}

// settingsOf lists the tuned knobs of c.
func settingsOf(c anomaly.Config) string {
	parts := make([]string, len(tunedKnobs))
	for i, k := range tunedKnobs {
		parts[i] = k.name + "=" + strconv.FormatFloat(k.get(c), 'g', -1, 64)
	}
	return strings.Join(parts, " ")
}

// detect runs the analyzer's detector with settings a over every series
// of corpus, writing result files to outDir unless it is empty, and
// returns the scores and each series' one-step forecast MASE.
func detect(ctx context.Context, corpus *nab.Corpus, fc forecast.Config, a anomaly.Config, outDir string) (map[string][]float64, map[string]float64, error) {
	params, err := anomaly.NewParams(a)
	if err != nil {
		return nil, nil, err
	}
	if _, err := forecast.New(fc); err != nil {
		return nil, nil, err
	}
	dets := make([]*evalDetector, len(corpus.Series))
	index := make(map[string]int, len(corpus.Series))
	for i, s := range corpus.Series {
		index[s.Name] = i
	}
	scores, err := nab.Run(ctx, corpus, func(name string) nab.Detector {
		f, _ := forecast.New(fc) // validated above
		d := &evalDetector{det: anomaly.NewDetector(f), p: params}
		dets[index[name]] = d // one goroutine per series
		return nab.DetectorFunc(d.score)
	}, outDir)
	if err != nil {
		return nil, nil, err
	}
	mases := make(map[string]float64, len(dets))
	for i, s := range corpus.Series {
		mases[s.Name] = dets[i].mase()
	}
	return scores, mases, nil
}

// describeTuning says what eval tunes, for its report.
func describeTuning() string {
	names := make([]string, len(tunedKnobs))
	for i, k := range tunedKnobs {
		names[i] = k.name
	}
	return fmt.Sprintf("the threshold and %s", strings.Join(names, ", "))
}
