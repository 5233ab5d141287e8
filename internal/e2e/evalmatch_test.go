package e2e

import (
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/alert"
)

// evalMatch is the series TestLiveAnalyzerMatchesEval replays and
// evaluates: its shape, and the settings both paths run with.
const (
	evalMatchRows        = 4032 // two weeks at 5 minutes, and two gaps (writeEvalMatchCorpus)
	evalMatchStep        = 5 * time.Minute
	evalMatchDay         = 288 // rows per day: the daily season
	evalMatchMeasurement = "evalmatch"
	evalMatchCategory    = "synthetic"
	evalMatchFile        = "evalmatch.csv"
	// evalMatchWarmUp is passed to both paths; not the default, so that a
	// path ignoring the flag shows.
	evalMatchWarmUp = 40
	// evalMatchScore is the rule's bound: high enough that only a few rows
	// (the onsets of the anomalies) reach it, each alert a row to match.
	evalMatchScore = 0.5
)

// evalMatchStart is the timestamp of the first row.
var evalMatchStart = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

// TestLiveAnalyzerMatchesEval: the live analyzer (points from Kafka, scores
// to InfluxDB, alerts to the alert topic) and `analyzer eval` (the same
// detector over a NAB-format file) agree point for point on one generated
// series: every score the analyzer wrote equals eval's at that row
// bit for bit, the rows it did not write are the leading ones eval scores
// 0 (the forecaster's start), and the alerts of an `anomaly: {score: S}`
// rule fire and resolve exactly where eval's scores cross S. It compares
// the two paths, never fixed scores, so it holds whatever the detector
// computes.
func TestLiveAnalyzerMatchesEval(t *testing.T) {
	b := newBed(t, "evalmatch")
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	csvPath := filepath.Join(dataDir, evalMatchCategory, evalMatchFile)
	labelsPath := filepath.Join(dir, "combined_windows.json")
	times := writeEvalMatchCorpus(t, csvPath, labelsPath)

	rulesFile := filepath.Join(dir, "rules.yaml")
	writeFile(t, rulesFile, fmt.Sprintf(`rules:
  - name: evalmatch_anomaly
    match: {measurement: %s}
    anomaly: {score: %v}
    severity: warning
`, evalMatchMeasurement, evalMatchScore))

	// The live path: replay the file to Kafka, analyze it, wait until every
	// offset is committed (so every score and alert was written), stop.
	p := testbed.Start(t, "producer-replay", b.bins["producer"], "replay", "--kafka-brokers", b.brokers, "--topic", b.topic,
		"--measurement", evalMatchMeasurement, "--http-addr", testbed.FreeAddr(t), "--log-format", "console", csvPath)
	if err := p.Wait(time.Minute); err != nil {
		t.Fatalf("replay: %v\n%s", err, p.Output())
	}
	a := b.analyzer("a", rulesFile, testbed.FreeAddr(t), "--warm-up", strconv.Itoa(evalMatchWarmUp))
	b.waitCommitted(b.topic+"-a", time.Minute)
	stopGracefully(t, a)

	// The offline path, with the analyzer's forecaster defaults and the
	// same warm-up.
	outDir := filepath.Join(dir, "out")
	ev := testbed.Start(t, "analyzer-eval", b.bins["analyzer"], "eval", "--data", dataDir, "--labels", labelsPath,
		"--out", outDir, "--warm-up", strconv.Itoa(evalMatchWarmUp))
	if err := ev.Wait(time.Minute); err != nil {
		t.Fatalf("analyzer eval: %v\n%s", err, ev.Output())
	}
	evalScores := readEvalScores(t, filepath.Join(outDir, evalMatchCategory, evalMatchFile), times)

	dump, err := testbed.DumpMeasurement(t.Context(), b.influxURL, b.db, evalMatchMeasurement)
	if err != nil {
		t.Fatal(err)
	}
	live := map[int64]float64{}
	for k, v := range dump {
		if k.Field != "value_anomaly_score" {
			continue
		}
		if k.Series != evalMatchMeasurement {
			t.Fatalf("score of series %q in InfluxDB, want only %q", k.Series, evalMatchMeasurement)
		}
		f, ok := v.(float64)
		if !ok {
			t.Fatalf("score at %d is %T, want a float", k.Time, v)
		}
		live[k.Time] = f
	}
	cmp := compareScores(times, evalScores, live)

	firing, resolved := expectedAlerts(times, evalScores, evalMatchScore)
	var liveFiring, liveResolved []int64
	for _, e := range b.alertEvents() {
		if e.Rule != "evalmatch_anomaly" || e.Series != evalMatchMeasurement+" value" {
			t.Errorf("alert of rule %q on series %q, want only evalmatch_anomaly on %q", e.Rule, e.Series, evalMatchMeasurement+" value")
			continue
		}
		switch e.State {
		case alert.Firing:
			liveFiring = append(liveFiring, e.StartsAt.UnixNano())
		case alert.Resolved:
			liveResolved = append(liveResolved, e.EndsAt.UnixNano())
		default:
			t.Errorf("alert event in state %s", e.State)
		}
	}
	slices.Sort(liveFiring)
	slices.Sort(liveResolved)

	// Rows the analyzer scored before the detector was warm are 0 on both
	// paths; the first non-zero score shows where warm rows begin.
	firstScored := slices.IndexFunc(evalScores, func(s float64) bool { return s != 0 })
	t.Logf("%d rows: %d compared, %d differing; %d leading rows without a live score (eval 0), first non-zero score at row %d (warm-up %d), %d extra live scores; alerts firing live %d / eval %d, resolved live %d / eval %d",
		len(times), cmp.compared, len(cmp.differing), cmp.missing, firstScored, evalMatchWarmUp, len(cmp.extra), len(liveFiring), len(firing), len(liveResolved), len(resolved))

	for _, r := range cmp.differing[:min(len(cmp.differing), 10)] {
		t.Errorf("row %d (%s): live score %v, eval %v", r, times[r].Format(time.DateTime), live[times[r].UnixNano()], evalScores[r])
	}
	if len(cmp.differing) > 0 {
		t.Errorf("%d of %d compared rows differ", len(cmp.differing), cmp.compared)
	}
	for _, r := range cmp.gaps[:min(len(cmp.gaps), 10)] {
		t.Errorf("row %d (%s) has no live score, and is not one of the %d leading rows eval scores 0 (eval %v)", r, times[r].Format(time.DateTime), cmp.missing, evalScores[r])
	}
	for _, at := range cmp.extra[:min(len(cmp.extra), 10)] {
		t.Errorf("live score at %s, which is no row of the file", time.Unix(0, at).UTC().Format(time.DateTime))
	}
	// The leading rows the analyzer has no forecast for are scored 0 by
	// eval, and are fewer than the warm-up, before which every score is 0.
	if cmp.missing > evalMatchWarmUp {
		t.Errorf("%d leading rows without a live score, want at most the warm-up %d", cmp.missing, evalMatchWarmUp)
	}
	for r := range min(evalMatchWarmUp, len(evalScores)) {
		if evalScores[r] != 0 {
			t.Errorf("eval scored row %d %v, before the warm-up of %d", r, evalScores[r], evalMatchWarmUp)
		}
	}
	if cmp.compared != len(times)-cmp.missing {
		t.Errorf("%d rows compared, want all %d but the %d leading ones", cmp.compared, len(times), cmp.missing)
	}

	if len(firing) == 0 {
		t.Errorf("eval's scores reach %v nowhere: the alert comparison proves nothing", evalMatchScore)
	}
	if !slices.Equal(liveFiring, firing) {
		t.Errorf("alerts fired at\n  %s\nwant (where eval's score reaches %v)\n  %s", fmtTimes(liveFiring), evalMatchScore, fmtTimes(firing))
	}
	if !slices.Equal(liveResolved, resolved) {
		t.Errorf("alerts resolved at\n  %s\nwant (where eval's score falls below %v again)\n  %s", fmtTimes(liveResolved), evalMatchScore, fmtTimes(resolved))
	}
}

// writeEvalMatchCorpus writes the generated series as a NAB data file at
// csvPath and a labels file with one window, and returns the rows' times.
// The series is deterministic: a daily season with a second harmonic,
// Gaussian noise, a few spikes, a lasting level shift, and a stretch of
// short bursts.
func writeEvalMatchCorpus(t *testing.T, csvPath, labelsPath string) []time.Time {
	t.Helper()
	rng := rand.New(rand.NewPCG(15, 0xe7a1))
	spikes := map[int]float64{900: 35, 1500: 45, 2100: -40, 3750: 55}
	const shiftAt, shift = 2600, 25
	const burstFrom, burstTo = 3000, 3300
	// Steps missing before these rows: the detector judges a point after a
	// gap in a wider scale, from event times, on both paths. The series
	// resumes from the first gap higher by gapLift: an onset for a path
	// that ignored the gap, none for one that does not.
	const gapAt, gapLift = 1200, 12
	gaps := map[int]int{gapAt: 30, 3500: 6}
	step := 0 // of evalMatchStep from the first row
	times := make([]time.Time, evalMatchRows)
	var sb strings.Builder
	sb.WriteString("timestamp,value\n")
	burst := 0
	for i := range evalMatchRows {
		step += gaps[i]
		phase := 2 * math.Pi * float64(step%evalMatchDay) / evalMatchDay
		v := 100 + 20*math.Sin(phase) + 5*math.Sin(2*phase+1) + 1.5*rng.NormFloat64()
		v += spikes[i]
		if i >= shiftAt {
			v += shift
		}
		if i >= gapAt {
			v += gapLift
		}
		if i >= burstFrom && i < burstTo {
			if burst == 0 && rng.IntN(20) == 0 {
				burst = 3 + rng.IntN(4)
			}
			if burst > 0 {
				v += 10 + 20*rng.Float64()
				burst--
			}
		}
		v = math.Round(v*1000) / 1000 // three decimals, as real data files hold
		times[i] = evalMatchStart.Add(time.Duration(step) * evalMatchStep)
		step++
		sb.WriteString(times[i].Format(time.DateTime))
		sb.WriteByte(',')
		sb.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		sb.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(csvPath), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, csvPath, sb.String())
	// One window around the level shift, in combined_windows.json's format.
	label := func(r int) string { return times[r].Format(time.DateTime) + ".000000" }
	writeFile(t, labelsPath, fmt.Sprintf("{\n  %q: [\n    [%q, %q]\n  ]\n}\n",
		evalMatchCategory+"/"+evalMatchFile, label(shiftAt-50), label(shiftAt+50)))
	return times
}

// readEvalScores reads the anomaly_score column of eval's result file,
// which must hold one row per time of times, in order.
func readEvalScores(t *testing.T, path string, times []time.Time) []float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], []string{"timestamp", "value", "anomaly_score"}) {
		t.Fatalf("%s: header %q, want timestamp,value,anomaly_score", path, recs[:min(len(recs), 1)])
	}
	recs = recs[1:]
	if len(recs) != len(times) {
		t.Fatalf("%s: %d rows, want %d", path, len(recs), len(times))
	}
	scores := make([]float64, len(recs))
	for i, rec := range recs {
		if want := times[i].Format(time.DateTime); rec[0] != want {
			t.Fatalf("%s row %d: timestamp %s, want %s", path, i+1, rec[0], want)
		}
		if scores[i], err = strconv.ParseFloat(rec[2], 64); err != nil {
			t.Fatalf("%s row %d: %v", path, i+1, err)
		}
	}
	return scores
}

// scoreComparison is how the live scores line up with eval's rows.
type scoreComparison struct {
	missing   int     // leading rows without a live score, all scored 0 by eval
	compared  int     // rows with a live score
	differing []int   // of those, rows whose live score is not eval's, bit for bit
	gaps      []int   // rows without a live score after the first that has one, or scored ≠ 0 by eval before it
	extra     []int64 // live score times that are no row
}

// compareScores compares eval's scores by row with the live scores by time.
func compareScores(times []time.Time, eval []float64, live map[int64]float64) scoreComparison {
	var c scoreComparison
	rows := make(map[int64]bool, len(times))
	for _, tm := range times {
		rows[tm.UnixNano()] = true
	}
	for at := range live {
		if !rows[at] {
			c.extra = append(c.extra, at)
		}
	}
	slices.Sort(c.extra)
	leading := true
	for r, tm := range times {
		got, ok := live[tm.UnixNano()]
		switch {
		case !ok && leading && eval[r] == 0:
			c.missing++
		case !ok:
			c.gaps = append(c.gaps, r)
		default:
			leading = false
			c.compared++
			// Bit for bit: a NaN would differ from itself.
			if math.Float64bits(got) != math.Float64bits(eval[r]) {
				c.differing = append(c.differing, r)
			}
		}
	}
	return c
}

// expectedAlerts returns when a rule `anomaly: {score: bound}` without
// for, keep_firing_for, hysteresis or repeats fires and resolves, from
// eval's scores: its condition holds on a row scored ≥ bound (eval scores
// 0 until the detector is warm, and the rule never holds then); the alert
// fires, StartsAt that row, on the first row of a run where it holds (an
// alert already firing does not fire again) and resolves, EndsAt, on the
// first row after the run. A run lasting to the last row does not resolve.
func expectedAlerts(times []time.Time, eval []float64, bound float64) (firing, resolved []int64) {
	active := false
	for r, s := range eval {
		now := s >= bound
		switch {
		case now && !active:
			firing = append(firing, times[r].UnixNano())
		case !now && active:
			resolved = append(resolved, times[r].UnixNano())
		}
		active = now
	}
	return firing, resolved
}

func fmtTimes(ts []int64) string {
	s := make([]string, len(ts))
	for i, at := range ts {
		s[i] = time.Unix(0, at).UTC().Format(time.DateTime)
	}
	return fmt.Sprintf("%d: [%s]", len(ts), strings.Join(s, " "))
}
