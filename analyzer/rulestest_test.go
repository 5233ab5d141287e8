package main

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/metricpipe/metricpipe/shared/rules"
	"github.com/metricpipe/metricpipe/shared/service"
)

// runRulesTestCLI runs `analyzer rules test args...` as main does and
// returns its exit status and what it printed.
func runRulesTestCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := service.Main(newApp(&stdout, &stderr), append([]string{"analyzer", "rules", "test"}, args...))
	return code, stdout.String(), stderr.String()
}

// TestDeployRulesTest: the deploy rules pass their unit tests, so that
// `make test` fails when a rule, the engine or the detector changes what
// the deployed rules raise.
func TestDeployRulesTest(t *testing.T) {
	code, out, errOut := runRulesTestCLI(t, "-v", filepath.Join("..", "deploy", "rules.test.yaml"))
	if code != 0 || !strings.HasSuffix(out, "6 cases, 0 failed\n") {
		t.Fatalf("analyzer rules test deploy/rules.test.yaml: exit %d\n%s%s", code, out, errOut)
	}
}

func TestRulesTestPasses(t *testing.T) {
	code, out, errOut := runRulesTestCLI(t, filepath.Join("testdata", "rulestest", "pass.test.yaml"))
	if code != 0 || out != "2 cases, 0 failed\n" || errOut != "" {
		t.Fatalf("exit %d, output:\n%s%s", code, out, errOut)
	}
}

// TestRulesTestReportsMismatches: every kind of wrong expectation is
// reported precisely, each line file:line: case, offset, rule, want and
// got, and the exit status is non-zero.
func TestRulesTestReportsMismatches(t *testing.T) {
	file := filepath.Join("testdata", "rulestest", "mismatch.test.yaml")
	code, out, errOut := runRulesTestCLI(t, file)
	if code == 0 {
		t.Errorf("exit 0 with failing cases")
	}
	if want := "analyzer: rule tests failed: 6 cases, 6 failed\n"; errOut != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for i, want := range []string{
		file + `:10: case "wrong value": at 4m0s: disk_high firing: value: want 96 ± 0.5, got 95 (series disk,host=a used)`,
		file + `:17: case "wrong label": at 4m0s: disk_high firing: label host: want "b", got "a" (series disk,host=a used)`,
		file + `:18: case "wrong label": at 6m0s: disk_high resolved: label region: want "eu", got none (series disk,host=a used)`,
		file + `:24: case "wrong state": at 4m0s: disk_high: want resolved, got firing (series disk,host=a used)`,
		file + `:33: case "missing": at 7m0s: disk_silent: want firing, got none (no disk_silent event in this case; absence is checked only at absent_at: add 7m0s)`,
		file + `:34: case "unexpected": at 6m0s: disk_high: unexpected resolved (series disk,host=a used, value 84)`,
		file + `:45: case "unknown rule": at 0s: disk_full: no such rule in ` + filepath.Join("testdata", "rulestest", "rules.yaml"),
		"6 cases, 6 failed",
	} {
		if i >= len(lines) || lines[i] != want {
			t.Errorf("line %d:\n got %q\nwant %q", i+1, at(lines, i), want)
		}
	}
	if len(lines) != 8 {
		t.Errorf("%d lines, want 8:\n%s", len(lines), out)
	}
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(none)"
}

// TestRulesTestFindsMismatch: one case at a time, from a file that passes,
// each kind of mistake in an expectation is caught with its message.
func TestRulesTestFindsMismatch(t *testing.T) {
	dir := t.TempDir()
	rulesPath, err := filepath.Abs(filepath.Join("testdata", "rulestest", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const head = `tests:
  - name: disk
    interval: 1m
    input_series:
      - series: disk,host=a used
        values: 80 85 91 92 95 87 84 80
    alerts:
`
	f := func(alerts string, want ...string) {
		t.Helper()
		path := filepath.Join(dir, "case.test.yaml")
		data := "rule_file: " + strconv.Quote(rulesPath) + "\n" + head + alerts
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, _ := runRulesTestCLI(t, path)
		var b strings.Builder
		for _, w := range want {
			b.WriteString(path + ":" + w + "\n")
		}
		wantCode, wantOut := 0, "1 cases, 0 failed\n"
		if len(want) > 0 {
			wantCode, wantOut = 1, b.String()+"1 cases, 1 failed\n"
		}
		if code != wantCode || out != wantOut {
			t.Errorf("alerts\n%s: exit %d, output:\n%s\nwant %d,\n%s", alerts, code, out, wantCode, wantOut)
		}
	}
	const fired = "      - {at: 4m, rule: disk_high, state: firing}\n"
	const resolved = "      - {at: 6m, rule: disk_high, state: resolved}\n"
	f(fired + resolved)
	f("      - {at: 4m, rule: disk_high, state: firing, value: 95, labels: {host: a, measurement: disk, field: used, team: storage}}\n" + resolved)
	f("      - {at: 4m, rule: disk_high, state: firing, value: 95.01, tolerance: 0.02}\n" + resolved)
	f(fired + "      - {at: 6m, rule: disk_high, state: resolved, expected: 100, tolerance: 20}\n")
	// The deliberately wrong expectations.
	f("      - {at: 4m, rule: disk_high, state: firing, value: 94}\n"+resolved,
		`9: case "disk": at 4m0s: disk_high firing: value: want 94 ± 9.4e-08, got 95 (series disk,host=a used)`)
	f(fired+"      - {at: 5m, rule: disk_high, state: resolved}\n",
		`10: case "disk": at 5m0s: disk_high: want resolved, got none (disk_high events in this case: firing at 4m0s, resolved at 6m0s)`,
		`3: case "disk": at 6m0s: disk_high: unexpected resolved (series disk,host=a used, value 84)`)
	f(fired, `3: case "disk": at 6m0s: disk_high: unexpected resolved (series disk,host=a used, value 84)`)
	f(fired+resolved+"      - {at: 7m, rule: disk_high, state: firing}\n",
		`11: case "disk": at 7m0s: disk_high: want firing, got none (disk_high events in this case: firing at 4m0s, resolved at 6m0s)`)
	f(fired+"      - {at: 6m, rule: disk_high, state: resolved, labels: {team: web}}\n",
		`10: case "disk": at 6m0s: disk_high resolved: label team: want "web", got "storage" (series disk,host=a used)`)
	f("      - {at: 4m, rule: disk_high, state: resolved}\n"+resolved,
		`9: case "disk": at 4m0s: disk_high: want resolved, got firing (series disk,host=a used)`)
	f(fired+"      - {at: 6m, rule: disk_high, state: resolved, expected: 84, tolerance: 1}\n",
		`10: case "disk": at 6m0s: disk_high resolved: expected: want 84 ± 1, got 102.37824178999998 (series disk,host=a used)`)
}

// TestRulesTestParseErrors: every problem of a test file is named with
// file:line and the field at fault, all of them at once.
func TestRulesTestParseErrors(t *testing.T) {
	f := func(data string, want ...string) {
		t.Helper()
		_, err := parseTestFile("t.yaml", []byte(data))
		if err == nil {
			t.Errorf("%s: no error, want %q", data, want)
			return
		}
		var fe *rules.Error
		if !errors.As(err, &fe) {
			t.Errorf("%s: %v is not a *rules.Error", data, err)
		}
		got := strings.Split(err.Error(), "\n")
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", data, got, want)
		}
	}
	f("", "t.yaml: empty file: want rule_file and tests")
	f("rule_file: r.yaml\ntests: [\n", "t.yaml:2: yaml: did not find expected node content")
	f("tests: []\n", "t.yaml:1: rule_file: missing: want the rule file to test")
	f("rule_file: r.yaml\ntest: []\n",
		"t.yaml:1: tests: missing: want a list of test cases",
		"t.yaml:2: test: unknown key (want one of rule_file, start, settings, tests)")
	f("rule_file: r.yaml\nstart: yesterday\ntests: []\n",
		`t.yaml:2: start: want an RFC 3339 time after 1970, such as 2026-01-01T00:00:00Z, got "yesterday"`)
	f("rule_file: r.yaml\nstart: 2262-01-01T00:00:00Z\ntests:\n  - {name: a, absent_at: [2000000h, 2262-06-01T00:00:00Z, 2261-01-01T00:00:00Z], input_series: [{series: c f, values: '1'}]}\n",
		`t.yaml:4: tests[0].absent_at[0]: 2000000h: past the year 2262, the last of Unix nanoseconds`,
		`t.yaml:4: tests[0].absent_at[1]: 2262-06-01T00:00:00Z: past the year 2262, the last of Unix nanoseconds`,
		`t.yaml:4: tests[0].absent_at[2]: 2261-01-01T00:00:00Z is before start 2262-01-01T00:00:00Z`,
		`t.yaml:4: tests[0].input_series[0].values: the case needs an interval, the step between values`)
	f("rule_file: r.yaml\nsettings: {sma-window: 10, shards: 3}\ntests: []\n",
		"t.yaml:2: settings.shards: unknown key (want one of "+strings.Join(rulesTestSettings(), ", ")+")")
	f(`rule_file: r.yaml
tests:
  - name: a
    interval: soon
    input_series:
      - series: cpu,host=a usage
        values: 1 2 3
  - name: b
    interval: 1s
    input_series:
      - series: "cpu usage"
        values: 1+1x 2
      - series: "cpu,host"
        values: 1 NaN
      - measurement: cpu
        values: 1 2
        points: [{time: 1s, value: 3}, {time: 1s}]
    absent_at: 5m
    alerts:
      - {at: 1m, rule: r, state: pending}
      - {at: -1m, rule: r, state: firing}
      - {rule: r, state: firing, colour: red}
  - name: a
    input_series:
      - series: cpu usage
        values: 1
`,
		`t.yaml:4: tests[0].interval: want a positive Go duration such as 1s or 1m, got "soon"`,
		`t.yaml:7: tests[0].input_series[0].values: the case needs an interval, the step between values`,
		`t.yaml:12: tests[1].input_series[0].values: "1+1x": want a repeat count of 0 to 1000000 after x`,
		`t.yaml:13: tests[1].input_series[1].series: want a series key and field such as "cpu,host=a usage", got "cpu,host"`,
		`t.yaml:14: tests[1].input_series[1].values: "NaN": want a finite number, got "NaN"`,
		`t.yaml:15: tests[1].input_series[2]: want series ("cpu,host=a usage"), or measurement and field (and tags)`,
		`t.yaml:15: tests[1].input_series[2]: two points at 1s`,
		`t.yaml:17: tests[1].input_series[2].points[1]: want both time and value`,
		`t.yaml:18: tests[1].absent_at: want a list of offsets, got "5m"`,
		`t.yaml:20: tests[1].alerts[0].state: want firing or resolved, got "pending"`,
		`t.yaml:21: tests[1].alerts[1].at: offset -1m: want ≥ 0`,
		`t.yaml:22: tests[1].alerts[2].colour: unknown key (want one of at, rule, state, labels, value, expected, tolerance)`,
		`t.yaml:22: tests[1].alerts[2].at: missing`,
		`t.yaml:23: tests[2].name: "a" names another case too (line 3)`,
		`t.yaml:26: tests[2].input_series[0].values: the case needs an interval, the step between values`,
	)
}

// TestRulesTestFileErrors: a file whose rules or settings are invalid is
// not run, and says why with file:line.
func TestRulesTestFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("bad-rules.yaml", "rules:\n  - name: x\n    threshold: {above: ninety}\n")
	write("good-rules.yaml", "rules: []\n")
	const cases = "tests:\n  - {name: a, interval: 1s, input_series: [{series: cpu usage, values: '1'}]}\n"
	f := func(data, want string) {
		t.Helper()
		path := write("t.test.yaml", data)
		code, out, _ := runRulesTestCLI(t, path)
		want = strings.ReplaceAll(want, "DIR", dir)
		if code != 1 || !strings.Contains(out, want) || !strings.HasSuffix(out, "0 cases, 0 failed, 1 of 1 files not run\n") {
			t.Errorf("exit %d, output:\n%s\nwant it to contain %q", code, out, want)
		}
	}
	f("rule_file: bad-rules.yaml\n"+cases, `DIR/bad-rules.yaml:3: rules[0] (x): threshold.above: want a number, got "ninety"`)
	f("rule_file: missing.yaml\n"+cases, "t.test.yaml: rule_file: load rules: open DIR/missing.yaml: no such file or directory")
	f("rule_file: good-rules.yaml\nsettings:\n  sma-window: many\n"+cases, `t.test.yaml:3: settings.sma-window: want an integer, got "many"`)
	f("rule_file: good-rules.yaml\nsettings: {sma-window: -1}\n"+cases, "t.test.yaml: settings: ")
}

func TestSeriesNotation(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		vs, err := parseSeriesValues(in)
		if err != nil {
			if got := "error: " + err.Error(); got != want {
				t.Errorf("%q: %s, want %s", in, got, want)
			}
			return
		}
		if got := formatSeriesValues(vs); got != want {
			t.Errorf("%q expands to %q, want %q", in, got, want)
		}
	}
	f("", "")
	f("5", "5")
	f("  1  2\t3\n4 ", "1 2 3 4")
	f("1+1x3", "1 2 3 4")
	f("-2+4x3", "-2 2 6 10")
	f("1-2x4", "1 -1 -3 -5 -7")
	f("5x3", "5 5 5 5")
	f("5x0", "5")
	f("0.5+0.25x2", "0.5 0.75 1")
	f("1e3+1e-1x1", "1000 1000.1")
	f("1e-3x1", "0.001 0.001")
	f("1.5e+2-1x1", "150 149")
	f("_", "_")
	f("_x3 1", "_ _ _ 1")
	f("1 stale 2", "1 _ 2")
	f("stalex2", "_ _")
	f("1x", `error: "1x": want a repeat count of 0 to 1000000 after x`)
	f("1x-1", `error: "1x-1": want a repeat count of 0 to 1000000 after x`)
	f("1x1000001", `error: "1x1000001": want a repeat count of 0 to 1000000 after x`)
	f("1x1000000 2", "error: more than 1000000 steps")
	f("a", `error: "a": want a finite number, got "a"`)
	f("NaN", `error: "NaN": want a finite number, got "NaN"`)
	f("Inf", `error: "Inf": want a finite number, got "Inf"`)
	f("1+x2", `error: "1+x2": want a finite number, got "+"`)
	f("1e308+1e308x3", `error: "1e308+1e308x3": the values overflow`)
	f("0x10", "0 0 0 0 0 0 0 0 0 0 0")
	f("0x1p3", `error: "0x1p3": want a repeat count of 0 to 1000000 after x`)
	f("1_0", `error: "1_0": want a finite number, got "1_0"`)
	f("1+1x2x3", `error: "1+1x2x3": want a finite number, got "+1x2"`)
}

// formatSeriesValues writes expanded values back in the notation, one
// segment a step: parsing it again gives them back.
func formatSeriesValues(vs []seriesValue) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		if !v.ok {
			parts[i] = "_"
		} else {
			parts[i] = strconv.FormatFloat(v.v, 'g', -1, 64)
		}
	}
	return strings.Join(parts, " ")
}

// FuzzSeriesNotation: the values notation never panics, expands to at
// most maxTestPoints finite values, and its expansion written back one
// value a segment parses to itself.
func FuzzSeriesNotation(f *testing.F) {
	for _, s := range []string{"", "5", "1+1x10", "-2+4x3", "1-2x4", "5x3", "_ _x3 stale", "1e3+1e-1x1", "0.5 _ 7x2 1e-3-2e-4x5", "1x1000000", "1e308+1e308x3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		vs, err := parseSeriesValues(s)
		if err != nil {
			return
		}
		if len(vs) > maxTestPoints {
			t.Fatalf("%q: %d values", s, len(vs))
		}
		for _, v := range vs {
			if v.ok && (math.IsNaN(v.v) || math.IsInf(v.v, 0)) {
				t.Fatalf("%q: value %v", s, v.v)
			}
		}
		text := formatSeriesValues(vs)
		again, err := parseSeriesValues(text)
		if err != nil {
			t.Fatalf("%q expands to %q, which fails: %v", s, text, err)
		}
		if got := formatSeriesValues(again); got != text {
			t.Fatalf("%q expands to %q, which expands to %q", s, text, got)
		}
	})
}
