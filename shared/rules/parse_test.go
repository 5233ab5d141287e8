package rules

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// base is a valid rule the error cases below change one line of.
const base = `rules:
  - name: cpu_high
    threshold: {above: 90}
`

func TestParseErrors(t *testing.T) {
	f := func(yaml, want string) {
		t.Helper()
		set, err := Parse("rules.yaml", []byte(yaml))
		if err == nil {
			t.Errorf("Parse(%q) = %d rules, want error containing %q", yaml, len(set.Rules), want)
			return
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) error:\n%v\nwant it to contain %q", yaml, err, want)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q) error %T is not an *Error", yaml, err)
		}
	}
	// YAML and file structure.
	f("rules: [\n", `rules.yaml:1: yaml: did not find expected node content`)
	f("- a\n", `rules.yaml:1: want a mapping with the key rules, got a list`)
	f("rule:\n  - name: x\n", `rules.yaml:1: rule: unknown key (want rules or dependencies)`)
	f("rules: {name: x}\n", `rules.yaml:1: rules: want a list of rules, got a mapping`)
	f("rules: []\n---\nrules: []\n", `rules.yaml:2: a second YAML document: want one`)
	f("rules:\n  - 5\n", `rules.yaml:2: rules[0]: want a mapping, got 5`)
	f(base+"rules: []\n", `rules.yaml:4: rules: duplicate key (first at line 1)`)
	// The example of the package documentation.
	f("rules:\n  - name: a\n    threshold: {above: 1}\n  - name: cpu_high\n    threshold:\n      above: ninety\n",
		`rules.yaml:6: rules[1] (cpu_high): threshold.above: want a number, got "ninety"`)
	// Names.
	f("rules:\n  - threshold: {above: 1}\n", `rules.yaml:2: rules[0]: name: required`)
	f("rules:\n  - name: cpu high\n    threshold: {above: 1}\n", `rules.yaml:2: rules[0]: name: want letters, digits, '_', '.' and '-' only, got "cpu high"`)
	f("rules:\n  - name: [a]\n    threshold: {above: 1}\n", `rules.yaml:2: rules[0]: name: want a string, got a list`)
	f(base+"  - name: cpu_high\n    threshold: {below: 1}\n", `rules.yaml:4: rules[1] (cpu_high): name: duplicate of rules[0]`)
	// Keys.
	f(base+"    threshhold: {above: 1}\n", `rules.yaml:4: rules[0] (cpu_high): threshhold: unknown key (want name, match,`)
	f(base+"    severity: warning\n    severity: info\n", `rules.yaml:5: rules[0] (cpu_high): severity: duplicate key (first at line 4)`)
	f("x: &m {above: 1}\nrules:\n  - name: a\n    threshold:\n      <<: *m\n", `rules.yaml:5: rules[0] (a): threshold.<<: merge keys are not supported`)
	// Conditions.
	f("rules:\n  - name: a\n    for: 1m\n", `rules.yaml:2: rules[0] (a): want exactly one condition: threshold, anomaly, predictive or absence`)
	f(base+"    absence: {for: 1m}\n", `rules.yaml:4: rules[0] (cpu_high): absence: want exactly one condition, got threshold and absence`)
	f("rules:\n  - name: a\n    threshold: 90\n", `rules.yaml:3: rules[0] (a): threshold: want a mapping such as {above: 90}, got 90`)
	f("rules:\n  - name: a\n    threshold:\n", `rules.yaml:3: rules[0] (a): threshold: want a mapping such as {above: 90}, got nothing`)
	f("rules:\n  - name: a\n    threshold: {of: value}\n", `rules.yaml:3: rules[0] (a): threshold: want one of above, below or outside`)
	f("rules:\n  - name: a\n    threshold: {above: 1, below: 0}\n", `rules.yaml:3: rules[0] (a): threshold.below: want one of above, below or outside, got above and below`)
	f("rules:\n  - name: a\n    threshold: {of: avg, above: 1}\n", `rules.yaml:3: rules[0] (a): threshold.of: want value, sma, ema or forecast, got "avg"`)
	f("rules:\n  - name: a\n    threshold: {above: \"90\"}\n", `threshold.above: want a number, got "90"`)
	f("rules:\n  - name: a\n    threshold: {above: .nan}\n", `threshold.above: want a finite number, got .nan`)
	f("rules:\n  - name: a\n    threshold: {abve: 1}\n", `rules.yaml:3: rules[0] (a): threshold.abve: unknown key (want of, above, below or outside)`)
	f("rules:\n  - name: a\n    threshold: {outside: [5]}\n", `threshold.outside: want [lo, hi], got a list`)
	f("rules:\n  - name: a\n    threshold: {outside: [5, x]}\n", `threshold.outside[1]: want a number, got "x"`)
	f("rules:\n  - name: a\n    threshold: {outside: [5, 5]}\n", `threshold.outside: want lo < hi, got [5, 5]`)
	f("rules:\n  - name: a\n    anomaly: {}\n", `rules.yaml:3: rules[0] (a): anomaly: want one of score or z`)
	f("rules:\n  - name: a\n    anomaly: {score: 0.9, z: 3}\n", `anomaly.z: want one of score or z, got both`)
	f("rules:\n  - name: a\n    anomaly: {score: 1.5}\n", `anomaly.score: want a score in (0, 1], got 1.5`)
	f("rules:\n  - name: a\n    anomaly: {z: -3}\n", `anomaly.z: must be positive, got -3`)
	f("rules:\n  - name: a\n    predictive: {above: 1}\n", `rules.yaml:3: rules[0] (a): predictive.within: required`)
	f("rules:\n  - name: a\n    predictive: {within: 1h}\n", `predictive: want one of above or below`)
	f("rules:\n  - name: a\n    predictive: {above: 1, below: 0, within: 1h}\n", `predictive.below: want one of above or below, got both`)
	f("rules:\n  - name: a\n    predictive: {above: 1, within: 0s}\n", `predictive.within: must be positive, got 0s`)
	f("rules:\n  - name: a\n    absence: {}\n", `absence.for: required`)
	f("rules:\n  - name: a\n    absence: {for: 5m, after: 1m}\n", `absence.after: unknown key (want for)`)
	// Durations.
	f(base+"    for: 1d\n", `rules.yaml:4: rules[0] (cpu_high): for: want a Go duration such as 90s, 5m or 1h30m (units ns, us, ms, s, m, h; no d or w), got "1d"`)
	f(base+"    for: 60\n", `for: want a Go duration`)
	f(base+"    keep_firing_for: -5m\n", `rules.yaml:4: rules[0] (cpu_high): keep_firing_for: must not be negative, got -5m`)
	f(base+"    for: [1m]\n", `for: want a duration such as 90s, 5m or 4h, got a list`)
	// Hysteresis.
	f(base+"    hysteresis: -1\n", `rules.yaml:4: rules[0] (cpu_high): hysteresis: must not be negative, got -1`)
	f(base+"    hysteresis: lots\n", `hysteresis: want a number, got "lots"`)
	f("rules:\n  - name: a\n    absence: {for: 1m}\n    hysteresis: 1\n", `rules.yaml:4: rules[0] (a): hysteresis: absence rules have no bound`)
	f("rules:\n  - name: a\n    threshold: {outside: [0, 10]}\n    hysteresis: 5\n", `hysteresis: 5 is at least half the band [0, 10]`)
	f("rules:\n  - name: a\n    anomaly: {score: 0.9}\n    hysteresis: 0.9\n", `hysteresis: 0.9 is at least the anomaly bound 0.9`)
	// Match.
	f(base+"    match: {measurement: \"cpu[\"}\n", `rules.yaml:4: rules[0] (cpu_high): match.measurement: bad pattern "cpu["`)
	f(base+"    match: {field: \"\"}\n", `match.field: empty pattern: use "*" or leave the key out`)
	f(base+"    match: {tags: {host: \"web-\\\\\"}}\n", `match.tags.host: bad pattern "web-\\"`)
	f(base+"    match: {tags: [host]}\n", `match.tags: want a mapping of tag keys to patterns, got a list`)
	f(base+"    match: {tag: {host: a}}\n", `match.tag: unknown key (want measurement, field or tags)`)
	f(base+"    match: cpu\n", `match: want a mapping of measurement, field and tags, got "cpu"`)
	// Severity, labels, templates.
	f(base+"    severity: page\n", `rules.yaml:4: rules[0] (cpu_high): severity: want critical, warning or info, got "page"`)
	f(base+"    labels: [team]\n", `labels: want a mapping of names to values, got a list`)
	f(base+"    labels: {team: ~}\n", `labels.team: want a string, got nothing`)
	f(base+"    summary: \"{{ .Value \"\n", `rules.yaml:4: rules[0] (cpu_high): summary: template: summary:1: unclosed action`)
	f(base+"    description: \"{{ .Valeu }}\"\n", `rules.yaml:4: rules[0] (cpu_high): description: template: description:1:3: executing "description" at <.Valeu>: can't evaluate field Valeu`)
	f(base+"    summary: {a: b}\n", `summary: want a template string, got a mapping`)
	// Templates that could run without bound.
	f(base+"    summary: '{{ range 100000000000 }}{{ end }}'\n", `rules.yaml:4: rules[0] (cpu_high): summary: summary:1:9: {{ range }} only over a field such as .Labels`)
	f(base+"    summary: '{{ $n := 9 }}{{ range $n }}{{ end }}'\n", `summary: summary:1:22: {{ range }} only over a field such as .Labels`)
	f(base+"    summary: '{{ if 1 }}{{ template \"summary\" }}{{ end }}'\n", `summary: summary:1:22: {{ template }} is not supported`)
	f(base+"    description: '{{ define \"x\" }}{{ end }}'\n", `description: {{ define }} and {{ block }} are not supported`)
	f(base+"    summary: '{{ printf \"%099999d\" 0 }}'\n", `summary: output longer than 16384 bytes`)
}

func TestParseReportsEveryProblemInLineOrder(t *testing.T) {
	_, err := Parse("r.yaml", []byte(`rules:
  - name: a
    threshold: {above: x}
    for: 1d
  - name: a
    severity: loud
    summary: "{{ .Valeu }}"
`))
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		got = append(got, e.Error())
	}
	want := []string{
		`r.yaml:3: rules[0] (a): threshold.above: want a number, got "x"`,
		`r.yaml:4: rules[0] (a): for: want a Go duration such as 90s, 5m or 1h30m (units ns, us, ms, s, m, h; no d or w), got "1d"`,
		`r.yaml:5: rules[1] (a): name: duplicate of rules[0]`,
		`r.yaml:5: rules[1] (a): want exactly one condition: threshold, anomaly, predictive or absence`,
		`r.yaml:6: rules[1] (a): severity: want critical, warning or info, got "loud"`,
		`r.yaml:7: rules[1] (a): summary: template: summary:1:3: executing "summary" at <.Valeu>: can't evaluate field Valeu in type *rules.templateData`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseCapsErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("rules:\n")
	for range 80 {
		b.WriteString("  - {}\n")
	}
	_, err := Parse("r.yaml", []byte(b.String()))
	errs := err.(interface{ Unwrap() []error }).Unwrap()
	if len(errs) != maxErrors || !strings.Contains(errs[len(errs)-1].Error(), "111 more problems not shown") {
		t.Errorf("%d errors, last %v; want %d, the last counting the rest", len(errs), errs[len(errs)-1], maxErrors)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n", "# only a comment\n", "---\n", "rules:\n", "rules: []\n", "~\n"} {
		set, err := Parse("r.yaml", []byte(in))
		if err != nil || set == nil || len(set.Rules) != 0 || set.Source != "r.yaml" {
			t.Errorf("Parse(%q) = %+v, %v; want an empty set", in, set, err)
		}
	}
}

func TestParseValues(t *testing.T) {
	set, err := Parse("r.yaml", []byte(`
rules:
  - name: full.soon-1
    match: {measurement: disk, tags: {path: "/var*", device: "sd?"}}
    predictive: {below: 5, within: 90m}
    for: 30s
    keep_firing_for: 2m
    hysteresis: 1.5
    labels: {team: storage, prio: 1}
  - name: band
    threshold: {of: sma, outside: [-1, 1e3]}
    severity: info
    description: hello
  - name: z
    anomaly: {z: 4}
  - name: quiet
    absence: {for: 10m}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := set.Rules[0]
	if r.Name != "full.soon-1" || r.Kind != Predictive || r.Predictive != (PredictiveCond{Op: Below, Bound: 5, Within: 90 * time.Minute}) ||
		r.For != 30*time.Second || r.KeepFiringFor != 2*time.Minute || r.Hysteresis != 1.5 || r.Severity != "warning" ||
		r.Labels["team"] != "storage" || r.Labels["prio"] != "1" || r.Line != 3 ||
		r.Match.Measurement != "disk" || r.Match.Field != "*" ||
		len(r.Match.Tags) != 2 || r.Match.Tags[0] != (TagMatch{"device", "sd?"}) || r.Match.Tags[1] != (TagMatch{"path", "/var*"}) {
		t.Errorf("rule 0 = %+v", r)
	}
	if r := set.Rules[1]; r.Kind != Threshold || r.Threshold != (ThresholdCond{Of: OfSMA, Op: Outside, Lo: -1, Hi: 1000}) ||
		r.Severity != "info" || r.Description != "hello" || r.Labels != nil {
		t.Errorf("rule 1 = %+v", r)
	}
	if r := set.Rules[2]; r.Kind != Anomaly || r.Anomaly != (AnomalyCond{Z: 4}) {
		t.Errorf("rule 2 = %+v", r)
	}
	if r := set.Rules[3]; r.Kind != Absence || r.Absence.For != 10*time.Minute {
		t.Errorf("rule 3 = %+v", r)
	}
}

func TestDefaultSummaries(t *testing.T) {
	f := func(cond string, v Verdict, want string) {
		t.Helper()
		set, err := Parse("r.yaml", []byte("rules:\n  - name: r\n    "+cond+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := set.Rules[0].Render(v, nil, "firing", nil); got != want {
			t.Errorf("%s: summary %q, want %q", cond, got, want)
		}
	}
	f("threshold: {above: 90}", Verdict{Value: 93.25, Threshold: 90}, "r: value 93.25 above 90")
	set, err := Parse("r.yaml", []byte("rules:\n  - name: r\n    threshold: {above: 90}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := set.Rules[0].Render(Verdict{Value: 80, Threshold: 90}, nil, "resolved", nil); got != "resolved: r: value 80 above 90" {
		t.Errorf("resolved summary %q", got)
	}
	f("threshold: {of: ema, below: 0.5}", Verdict{Value: 0.1, Threshold: 0.5}, "r: ema 0.1 below 0.5")
	f("threshold: {of: forecast, outside: [1, 2.5]}", Verdict{Value: 3}, "r: forecast 3 outside [1, 2.5]")
	f("anomaly: {score: 0.99}", Verdict{Value: 0.9975}, "r: anomaly score 0.998 ≥ 0.99")
	f("anomaly: {z: 4}", Verdict{Value: -5.123}, "r: residual z-score -5.12 beyond ±4")
	f("predictive: {above: 100, within: 4h}", Verdict{Value: 101.5}, "r: forecast 101.5 above 100 within 4h0m0s")
	f("absence: {for: 5m}", Verdict{Value: 312.4}, "r: no point for 312s (limit 5m0s)")
}

func TestExampleFile(t *testing.T) {
	set, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	kinds := map[Kind]bool{}
	for _, r := range set.Rules {
		names = append(names, r.Name)
		kinds[r.Kind] = true
	}
	if len(set.Rules) != 5 || len(kinds) != 4 || set.Source != "testdata/example.yaml" || len(set.Dependencies) != 2 {
		t.Errorf("example: rules %v, kinds %v", names, kinds)
	}
	sum, _ := set.Rules[0].Render(Verdict{Value: 93.21, Threshold: 90}, map[string]string{"host": "web-1"}, "firing", nil)
	if want := "CPU 93.2% > 90% on web-1"; sum != want {
		t.Errorf("example summary %q, want %q", sum, want)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load("testdata/missing.yaml")
	var e *Error
	if err == nil || errors.As(err, &e) || !strings.Contains(err.Error(), "load rules: open testdata/missing.yaml") {
		t.Errorf("Load(missing) = %v; want a wrapped open error", err)
	}
}
