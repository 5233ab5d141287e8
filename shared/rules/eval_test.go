package rules

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// line is a Projector of a linear trend: from + slope per step.
type line struct{ from, slope float64 }

func (l *line) Ahead(steps int) float64 { return l.from + l.slope*float64(steps) }

func rule(t testing.TB, body string) *Rule {
	t.Helper()
	return mustParse(t, "rules:\n  - name: r\n"+body).Rules[0]
}

func TestEvalThreshold(t *testing.T) {
	f := func(cond string, s Sample, wasActive, want bool, wantValue, wantThreshold float64) {
		t.Helper()
		v := rule(t, "    threshold: "+cond+"\n    hysteresis: 2\n").Eval(&s, wasActive)
		if v.Active != want || v.Value != wantValue || v.Threshold != wantThreshold || !v.HasThreshold {
			t.Errorf("%s on %+v (was %v) = %+v, want active %v value %v threshold %v", cond, s, wasActive, v, want, wantValue, wantThreshold)
		}
	}
	// above / below / outside on the value (the default source).
	f("{above: 90}", Sample{Value: 91}, false, true, 91, 90)
	f("{above: 90}", Sample{Value: 90}, false, false, 90, 90) // strict
	f("{of: value, below: 10}", Sample{Value: 9}, false, true, 9, 10)
	f("{below: 10}", Sample{Value: 10}, false, false, 10, 10)
	f("{outside: [10, 20]}", Sample{Value: 21}, false, true, 21, 20)
	f("{outside: [10, 20]}", Sample{Value: 9}, false, true, 9, 10)
	f("{outside: [10, 20]}", Sample{Value: 15}, false, false, 15, 20)
	f("{outside: [10, 20]}", Sample{Value: 14}, false, false, 14, 10)
	// Hysteresis 2: once active, above 90 holds down to 88 (exclusive)...
	f("{above: 90}", Sample{Value: 89}, true, true, 89, 90)
	f("{above: 90}", Sample{Value: 88}, true, false, 88, 90)
	f("{above: 90}", Sample{Value: 89}, false, false, 89, 90)
	// ... below 10 up to 12, outside [10, 20] inside [12, 18].
	f("{below: 10}", Sample{Value: 11.9}, true, true, 11.9, 10)
	f("{below: 10}", Sample{Value: 12}, true, false, 12, 10)
	f("{outside: [10, 20]}", Sample{Value: 18.5}, true, true, 18.5, 20)
	f("{outside: [10, 20]}", Sample{Value: 11}, true, true, 11, 10)
	f("{outside: [10, 20]}", Sample{Value: 15}, true, false, 15, 20)
	// The averages and the forecast, inactive when missing.
	f("{of: sma, above: 5}", Sample{Value: 1, SMA: 6, EMA: 1, HasAverages: true}, false, true, 6, 5)
	f("{of: sma, above: 5}", Sample{Value: 9, SMA: 6}, false, false, 6, 5)
	f("{of: ema, below: 5}", Sample{Value: 9, SMA: 9, EMA: 4, HasAverages: true}, false, true, 4, 5)
	f("{of: ema, below: 5}", Sample{Value: 1, EMA: 4}, true, false, 4, 5)
	f("{of: forecast, outside: [0, 10]}", Sample{Value: 5, Forecast: 11, HasForecast: true}, false, true, 11, 10)
	f("{of: forecast, outside: [0, 10]}", Sample{Value: 50, Forecast: 11}, false, false, 11, 10)
	// NaN never crosses.
	f("{above: 90}", Sample{Value: math.Copysign(0, -1)}, false, false, 0, 90)
	if v := rule(t, "    threshold: {below: 1}\n").Eval(&Sample{Value: math.NaN()}, true); v.Active {
		t.Errorf("NaN below 1: active")
	}
}

func TestEvalAnomaly(t *testing.T) {
	f := func(cond string, s Sample, wasActive, want bool, wantValue float64) {
		t.Helper()
		v := rule(t, "    anomaly: "+cond+"\n    hysteresis: 0.5\n").Eval(&s, wasActive)
		if v.Active != want || v.Value != wantValue || !v.HasThreshold {
			t.Errorf("%s on %+v (was %v) = %+v, want active %v value %v", cond, s, wasActive, v, want, wantValue)
		}
	}
	f("{score: 0.9}", Sample{Score: 0.95, Warm: true}, false, true, 0.95)
	f("{score: 0.9}", Sample{Score: 0.9, Warm: true}, false, true, 0.9) // ≥
	f("{score: 0.9}", Sample{Score: 0.85, Warm: true}, false, false, 0.85)
	f("{score: 0.9}", Sample{Score: 0.99}, false, false, 0.99) // warming up
	f("{score: 0.9}", Sample{Score: 0.99}, true, false, 0.99)
	f("{score: 0.9}", Sample{Score: 0.41, Warm: true}, true, true, 0.41) // hysteresis: ≥ 0.4
	f("{score: 0.9}", Sample{Score: 0.39, Warm: true}, true, false, 0.39)
	f("{z: 4}", Sample{Z: 4.5, Warm: true}, false, true, 4.5)
	f("{z: 4}", Sample{Z: -4.5, Warm: true}, false, true, -4.5) // |z|
	f("{z: 4}", Sample{Z: 3.9, Warm: true}, false, false, 3.9)
	f("{z: 4}", Sample{Z: 3.6, Warm: true}, true, true, 3.6)
	f("{z: 4}", Sample{Z: 3.4, Warm: true}, true, false, 3.4)
	f("{z: 4}", Sample{Z: 9}, false, false, 9)
}

// manyLine is a line that is also a ManyProjector, counting its calls.
type manyLine struct {
	line
	calls int
}

func (m *manyLine) AheadMany(steps []int, out []float64) {
	m.calls++
	for i, k := range steps {
		out[i] = m.Ahead(k)
	}
}

func TestEvalPredictive(t *testing.T) {
	f := func(cond string, s Sample, wasActive, want bool, wantValue float64) {
		t.Helper()
		r := rule(t, "    predictive: "+cond+"\n    hysteresis: 1\n")
		v := r.Eval(&s, wasActive)
		if v.Active != want || v.Value != wantValue || !v.HasThreshold {
			t.Errorf("%s on %+v (was %v) = %+v, want active %v value %v", cond, s, wasActive, v, want, wantValue)
		}
		// The same through AheadMany, in one call.
		if l, ok := s.Ahead.(*line); ok {
			m := &manyLine{line: *l}
			s.Ahead = m
			if vm := r.Eval(&s, wasActive); vm != v || s.Step > 0 && m.calls != 1 {
				t.Errorf("%s via AheadMany (%d calls) = %+v, want %+v in one call", cond, m.calls, vm, v)
			}
		}
	}
	min := time.Minute
	// 50 + 1 a step, a step a minute. Within 1h: 60 steps, probed at 4, 8,
	// 12, 15, 19, 23, 27, 30, 34, 38, 42, 45, 49, 53, ...: 103 at step 53
	// is the first above 100.
	f("{above: 100, within: 1h}", Sample{Ahead: &line{50, 1}, Step: min}, false, true, 103)
	// Within 50m the horizon's forecast is 100: not above 100, but above
	// 100 − hysteresis 1 once active.
	f("{above: 100, within: 50m}", Sample{Ahead: &line{50, 1}, Step: min}, false, false, 100)
	f("{above: 100, within: 50m}", Sample{Ahead: &line{50, 1}, Step: min}, true, true, 100)
	f("{above: 100, within: 50m}", Sample{Ahead: &line{48, 1}, Step: min}, true, false, 98)
	// 5 − 1 a step: every step probed, the first below 0 is the 6th.
	f("{below: 0, within: 10m}", Sample{Ahead: &line{5, -1}, Step: min}, false, true, -1)
	f("{below: 0, within: 5m}", Sample{Ahead: &line{5, -1}, Step: min}, false, false, 0)
	f("{below: 0, within: 90s}", Sample{Ahead: &line{5, -1}, Step: min}, false, false, 3) // ceil(1.5) = 2 steps
	// Without a projector or a step: inactive.
	f("{above: 0, within: 1h}", Sample{Step: min}, false, false, 0)
	f("{above: 0, within: 1h}", Sample{Ahead: &line{50, 1}}, false, false, 0)
}

// probes records the steps asked for.
type probes struct{ steps []int }

func (p *probes) Ahead(steps int) float64 { p.steps = append(p.steps, steps); return 0 }

func TestPredictiveProbes(t *testing.T) {
	f := func(within, step time.Duration, want string) {
		t.Helper()
		r := rule(t, "    predictive: {above: 1, within: "+within.String()+"}\n")
		p := &probes{}
		r.Eval(&Sample{Ahead: p, Step: step}, false)
		if got := strings.Trim(fmt.Sprint(p.steps), "[]"); got != want {
			t.Errorf("within %s step %s: probes %s, want %s", within, step, got, want)
		}
	}
	f(3*time.Minute, time.Minute, "1 2 3")
	f(150*time.Second, time.Minute, "1 2 3")
	f(16*time.Minute, time.Minute, "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16")
	f(32*time.Minute, time.Minute, "2 4 6 8 10 12 14 16 18 20 22 24 26 28 30 32")
	f(17*time.Minute, time.Minute, "2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17")
	f(24*time.Hour, time.Second, "625 1250 1875 2500 3125 3750 4375 5000 5625 6250 6875 7500 8125 8750 9375 10000") // capped
}

func TestAbsent(t *testing.T) {
	r := rule(t, "    absence: {for: 5m}\n")
	sec := int64(time.Second)
	f := func(lastSeen, now int64, want bool, wantValue float64) {
		t.Helper()
		v := r.Absent(lastSeen, now)
		if v.Active != want || v.Value != wantValue || v.Threshold != 300 || !v.HasThreshold {
			t.Errorf("Absent(%d, %d) = %+v, want active %v value %v", lastSeen, now, v, want, wantValue)
		}
	}
	f(1000*sec, 1299*sec, false, 299)
	f(1000*sec, 1300*sec, true, 300)
	f(1000*sec, 1000*sec+sec/2, false, 0.5)
	f(1000*sec, 900*sec, false, 0) // out of order: not negative
	if v := r.Eval(&Sample{Value: 1}, true); v.Active {
		t.Errorf("absence Eval on a point = %+v, want inactive", v)
	}
	if v := rule(t, "    threshold: {above: 1}\n").Absent(0, 1e18); v != (Verdict{}) {
		t.Errorf("threshold Absent = %+v, want zero", v)
	}
}

func TestRender(t *testing.T) {
	f := func(tmpl string, v Verdict, labels map[string]string, want string) {
		t.Helper()
		r := rule(t, "    threshold: {above: 1}\n    severity: critical\n    summary: '"+tmpl+"'\n    description: 'd {{ .Rule }}'\n")
		sum, desc := r.Render(v, labels, "firing", nil)
		if sum != want || desc != "d r" {
			t.Errorf("%s: Render = %q, %q; want %q, %q", tmpl, sum, desc, want, "d r")
		}
	}
	labels := map[string]string{"host": "web-1", "team": "infra"}
	f(`CPU {{ .Value | printf "%.1f" }} > {{ .Threshold }} on {{ .Labels.host }}`, Verdict{Value: 93.26, Threshold: 90}, labels, "CPU 93.3 > 90 on web-1")
	f(`{{ .Rule }}/{{ .Severity }}/{{ .Labels.team }}{{ if .HasThreshold }}!{{ end }}`, Verdict{HasThreshold: true}, labels, "r/critical/infra!")
	f(`{{ .Labels.zone }}`, Verdict{}, labels, "<no value>")
	f(`{{ range $k, $v := .Labels }}{{ $k }}={{ $v }} {{ end }}{{ range $.Labels }}.{{ end }}`, Verdict{}, labels, "host=web-1 team=infra ..")
	// A template failing at run time (the load-time trial run has no
	// threshold) yields its error, naming the rule and the template.
	f(`{{ if .HasThreshold }}{{ index .Labels 1 }}{{ end }}`, Verdict{HasThreshold: true}, labels,
		`r: template: summary:1:25: executing "summary" at <index .Labels 1>: error calling index: value has type int; should be string`)
	f(`{{ if .HasThreshold }}{{ printf "%099999d" 0 }}{{ end }}`, Verdict{HasThreshold: true}, labels, "r: output longer than 16384 bytes")
	// An anomaly's text can tell the point's value and its forecast from
	// the score, and a resolution from a firing.
	r := rule(t, "    anomaly: {score: 0.6}\n    summary: '{{ if eq .State \"resolved\" }}ok again{{ else }}{{ .Observed }} vs {{ .Expected }} (score {{ .Value }}){{ end }}'\n")
	smp := &Sample{Value: 42, Forecast: 10, HasForecast: true}
	if s, _ := r.Render(Verdict{Value: 0.9}, nil, "firing", smp); s != "42 vs 10 (score 0.9)" {
		t.Errorf("anomaly firing: %q", s)
	}
	if s, _ := r.Render(Verdict{Value: 0.1}, nil, "resolved", smp); s != "ok again" {
		t.Errorf("anomaly resolved: %q", s)
	}
	if s, d := (&Rule{Name: "x"}).Render(Verdict{}, nil, "firing", nil); s != "" || d != "" {
		t.Errorf("hand-built rule renders %q, %q", s, d)
	}
}

func TestEvalAllocs(t *testing.T) {
	bodies := []string{
		"    threshold: {of: sma, outside: [1, 2]}\n",
		"    anomaly: {z: 3}\n",
		"    predictive: {above: 100, within: 24h}\n",
		"    absence: {for: 1m}\n",
	}
	s := &Sample{Value: 5, SMA: 5, HasAverages: true, Z: 4, Warm: true, Ahead: &line{0, 0.001}, Step: time.Second}
	for _, b := range bodies {
		r := rule(t, b)
		if allocs := testing.AllocsPerRun(100, func() { r.Eval(s, true); r.Absent(0, 1) }); allocs != 0 {
			t.Errorf("%s: Eval allocates %v times", strings.TrimSpace(b), allocs)
		}
	}
}
