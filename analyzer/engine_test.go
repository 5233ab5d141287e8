package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/anomaly"
	"github.com/metricpipe/metricpipe/shared/forecast"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/rules"
)

func testAnalysis() *analysis {
	ac := anomaly.DefaultConfig()
	ac.WarmUp, ac.HalfLife = 10, 50
	return &analysis{Forecast: forecast.DefaultConfig(), Anomaly: ac,
		IntervalZ: 3, SMAWindow: 3, EMAAlpha: 0.5, MaxSeries: 100, IdleTimeout: time.Hour, WriteForecasts: true}
}

func testEngine(t testing.TB, a *analysis, rulesYAML string) *testEng {
	t.Helper()
	set, err := rules.Parse("rules.yaml", []byte(rulesYAML))
	if err != nil {
		t.Fatal(err)
	}
	params, err := anomaly.NewParams(a.Anomaly)
	if err != nil {
		t.Fatal(err)
	}
	return &testEng{engine: newEngine(a, params, &ruleBook{set: set, gen: 1})}
}

// testEng is an engine with the results it gathered.
type testEng struct {
	*engine
	res results
}

func (e *testEng) process(p *point.Point, now int64) { e.Process(p, now, &e.res) }
func (e *testEng) expire(now int64)                  { e.Expire(now, &e.res) }

var t0 = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// feed sends values as one point a minute from minute `from` and returns
// the events as "minute:state" strings.
func feed(e *testEng, from int, values ...float64) []string {
	var got []string
	for i, v := range values {
		min := from + i
		at := t0.Add(time.Duration(min) * time.Minute).UnixNano()
		p := point.Point{Measurement: "disk", Tags: []point.Tag{{Key: "host", Value: "a"}}, Fields: []point.Field{{Key: "used", Value: v}}, Time: at}
		e.process(&p, at)
		got = append(got, eventsAt(e, min)...)
	}
	return got
}

func eventsAt(e *testEng, min int) []string {
	var got []string
	for _, ev := range e.res.events {
		got = append(got, fmt.Sprintf("%d:%s", min, ev.State))
	}
	e.res.Reset()
	return got
}

func check(t *testing.T, got []string, want string) {
	t.Helper()
	if g := strings.Join(got, " "); g != want {
		t.Errorf("events %q, want %q", g, want)
	}
}

func ramp(from, step float64, n int) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = from + step*float64(i)
	}
	return vs
}

func TestThresholdRuleForAndHysteresis(t *testing.T) {
	e := testEngine(t, testAnalysis(), `rules:
  - name: disk_high
    threshold: {above: 90}
    for: 2m
    hysteresis: 5
`)
	// Above 90 from minute 2; held 2 minutes, fires at 4; 87 is within the
	// hysteresis, 84 clears.
	check(t, feed(e, 0, 80, 85, 91, 92, 95, 87, 84, 80), "4:firing 6:resolved")
}

func TestThresholdOnAverages(t *testing.T) {
	e := testEngine(t, testAnalysis(), `rules:
  - name: sma_high
    threshold: {of: sma, above: 10}
  - name: ema_low
    threshold: {of: ema, below: 2}
`)
	// EMA (alpha 0.5): 5, 2.5, 1.25 (below 2: fires), 15.6 (resolves).
	// SMA of 3: 0,0,30 → 10 (not above), then 0,30,30 → 20 fires, and
	// 30,0,0 → 10 resolves.
	check(t, feed(e, 0, 5, 0, 0, 30, 30, 0, 0, 0), "2:firing 3:resolved 4:firing 6:resolved")
}

func TestAnomalyRuleFiresOnceOnSpike(t *testing.T) {
	e := testEngine(t, testAnalysis(), `rules:
  - name: spike
    anomaly: {z: 6}
    keep_firing_for: 3m
`)
	values := make([]float64, 60)
	for i := range values {
		values[i] = 50 + 2*math.Sin(float64(i)/3) // smooth, learnable
	}
	values[40] = 150
	got := feed(e, 0, values...)
	// The residuals settle within a few points, then keep_firing_for runs.
	if len(got) != 2 || got[0] != "40:firing" || !strings.HasSuffix(got[1], ":resolved") {
		t.Fatalf("events %v, want one firing at 40 and one resolution", got)
	}
	var resolved int
	fmt.Sscanf(got[1], "%d:", &resolved)
	if resolved < 43 || resolved > 48 {
		t.Errorf("resolved at minute %d, want 3 to 8 minutes after the spike", resolved)
	}
}

func TestPredictiveRule(t *testing.T) {
	e := testEngine(t, testAnalysis(), `rules:
  - name: disk_full_soon
    predictive: {above: 100, within: 30m}
    keep_firing_for: 5m
`)
	// A ramp of 1 per minute from 40 reaches 100 at minute 60: the forecast
	// sees it 30 minutes ahead, at about minute 30; then the disk is
	// cleaned; keep_firing_for rides out the forecaster's confusion at the
	// drop.
	vs := append(ramp(40, 1, 45), ramp(20, 0, 20)...)
	got := feed(e, 0, vs...)
	if len(got) != 2 || !strings.HasSuffix(got[0], ":firing") || !strings.HasSuffix(got[1], ":resolved") {
		t.Fatalf("events %v, want one firing and one resolved", got)
	}
	var fired int
	fmt.Sscanf(got[0], "%d:", &fired)
	if fired < 26 || fired > 34 {
		t.Errorf("fired at minute %d, want about 30 (30 minutes before 100)", fired)
	}
	var resolved int
	fmt.Sscanf(got[1], "%d:", &resolved)
	if resolved < 50 || resolved > 60 {
		t.Errorf("resolved at minute %d, want 5 to 15 minutes after the disk was cleaned at 45", resolved)
	}
}

func TestAbsenceRule(t *testing.T) {
	e := testEngine(t, testAnalysis(), `rules:
  - name: silent
    absence: {for: 5m}
`)
	check(t, feed(e, 0, 1, 2, 3), "")
	at := func(min int) int64 { return t0.Add(time.Duration(min) * time.Minute).UnixNano() }
	e.expire(at(6))
	check(t, eventsAt(e, 6), "")
	e.expire(at(7)) // last point at minute 2
	check(t, eventsAt(e, 7), "7:firing")
	e.expire(at(9))
	check(t, eventsAt(e, 9), "")
	check(t, feed(e, 10, 4), "10:resolved")
}

func TestReloadKeepsStateOfUnchangedRules(t *testing.T) {
	a := testAnalysis()
	e := testEngine(t, a, `rules:
  - name: kept
    threshold: {above: 90}
  - name: changed
    threshold: {above: 90}
`)
	check(t, feed(e, 0, 95), "0:firing 0:firing")
	set, err := rules.Parse("rules.yaml", []byte(`rules:
  - name: kept
    threshold: {above: 90}
  - name: changed
    threshold: {above: 93}
  - name: added
    threshold: {above: 90}
`))
	if err != nil {
		t.Fatal(err)
	}
	e.setRules(&ruleBook{set: set, gen: 2})
	// kept is still firing (no new event); changed and added start afresh
	// and fire; then all resolve.
	got := feed(e, 1, 96, 50)
	check(t, got, "1:firing 1:firing 2:resolved 2:resolved 2:resolved")
}

func TestEventContents(t *testing.T) {
	e := testEngine(t, testAnalysis(), `rules:
  - name: disk_high
    threshold: {above: 90}
    severity: critical
    labels: {team: storage}
    summary: '{{ .Labels.host }} at {{ .Value }}'
`)
	feed(e, 0, ramp(80, 0.1, 20)...)
	at := t0.Add(20 * time.Minute).UnixNano()
	p := point.Point{Measurement: "disk", Tags: []point.Tag{{Key: "host", Value: "a"}}, Fields: []point.Field{{Key: "used", Value: 95}}, Time: at}
	e.process(&p, at)
	if len(e.res.events) != 1 {
		t.Fatalf("%d events, want 1", len(e.res.events))
	}
	ev := e.res.events[0]
	want := alert.Event{Fingerprint: alert.Fingerprint("disk_high", "disk,host=a used"), Rule: "disk_high", State: alert.Firing,
		Severity: "critical", Series: "disk,host=a used", Value: 95, Summary: "a at 95"}
	if ev.Fingerprint != want.Fingerprint || ev.Rule != want.Rule || ev.State != want.State || ev.Severity != want.Severity ||
		ev.Series != want.Series || ev.Value != want.Value || ev.Summary != want.Summary {
		t.Errorf("event %+v, want %+v", ev, want)
	}
	if ev.Threshold == nil || *ev.Threshold != 90 || !ev.StartsAt.Equal(time.Unix(0, at)) || !ev.EventTime.Equal(time.Unix(0, at)) {
		t.Errorf("threshold %v starts %v event time %v", ev.Threshold, ev.StartsAt, ev.EventTime)
	}
	if l := ev.Labels; l["host"] != "a" || l["team"] != "storage" || l["measurement"] != "disk" || l["field"] != "used" {
		t.Errorf("labels %v", l)
	}
	// The forecast point carries the four outputs for the field.
	if len(e.res.points) != 1 || len(e.res.points[0].Fields) != 4 || e.res.points[0].Fields[0].Key != "used_forecast" || e.res.points[0].Fields[3].Key != "used_anomaly_score" {
		t.Errorf("forecast output %+v", e.res.points)
	}
	line := string(appendAlertLine(nil, "metricpipe_alerts", &ev))
	wantLine := fmt.Sprintf(`metricpipe_alerts,fingerprint=%s,rule=disk_high,severity=critical,state=firing value=95,threshold=90,`, ev.Fingerprint)
	if !strings.HasPrefix(line, wantLine) || !strings.Contains(line, `series="disk,host=a used",summary="a at 95" `) {
		t.Errorf("alert line %q", line)
	}
	var dec point.Decoder
	// The decoder keeps the numeric and bool fields and skips the strings.
	pts, err := dec.DecodeLine(nil, []byte(line))
	if err != nil || len(pts) != 1 || len(pts[0].Fields) != 5 || pts[0].Fields[4] != (point.Field{Key: "firing", Value: 1}) {
		t.Errorf("alert line %q decodes to %+v, %v; want value, threshold, expected, score and firing=1", line, pts, err)
	}
}

func TestMaxSeries(t *testing.T) {
	a := testAnalysis()
	a.MaxSeries = 2
	e := testEngine(t, a, "rules: []\n")
	for i := range 5 {
		p := point.Point{Measurement: "m", Tags: []point.Tag{{Key: "i", Value: fmt.Sprint(i)}}, Fields: []point.Field{{Key: "v", Value: 1}}, Time: 1}
		e.process(&p, 1)
	}
	if len(e.series) != 2 || e.untracked != 3 {
		t.Errorf("%d series tracked, %d untracked; want 2 and 3", len(e.series), e.untracked)
	}
}
