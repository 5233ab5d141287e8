package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/rules"
	"github.com/metricpipe/metricpipe/shared/yamlnode"
)

// A rule test file (`analyzer rules test`), in the spirit of promtool's:
//
//	rule_file: rules.yaml              # relative to this file
//	start: 2026-01-01T00:00:00Z        # time of offset 0 (the default)
//	settings: {sma-window: 10}         # analyzer flags that shape alerts
//	tests:
//	  - name: disk fills
//	    interval: 1m                   # step of the values notation
//	    input_series:
//	      - series: disk,host=a used   # line-protocol key and field
//	        values: 80 85 91+1x3 _ 84
//	        points: [{time: 30m, value: 99}]
//	    absent_at: [20m]               # absence checks, wall time = event time
//	    alerts:
//	      - {at: 4m, rule: disk_high, state: firing, labels: {host: a}, value: 92}

// defaultTestStart is offset 0 when a file gives no start. Not the Unix
// epoch: alert lifecycles take time 0 for "never".
var defaultTestStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testFile is a parsed rule test file.
type testFile struct {
	path     string
	ruleFile string // resolved against the test file's folder
	start    time.Time
	settings []testSetting
	cases    []*testCase
}

type testSetting struct {
	name, value string
	line        int
}

type testCase struct {
	name     string
	line     int
	interval time.Duration
	inputs   []testInput
	absentAt []time.Duration // offsets of the absence checks, in order
	alerts   []wantAlert
}

// testInput is one input series: one field of one series.
type testInput struct {
	line        int
	measurement string
	tags        []point.Tag // sorted
	field       string
	points      []testPoint // by offset
}

type testPoint struct {
	at    time.Duration
	value float64
}

// wantAlert is an expected alert event.
type wantAlert struct {
	line      int
	at        time.Duration
	rule      string
	state     alert.State
	labels    map[string]string // a subset of the event's
	value     *float64
	expected  *float64
	tolerance float64 // absolute; 0: 1e-9 of the larger magnitude
}

// testFileError is one problem of a rule test file, "file:line: field:
// problem", in the rule files' error type (outside any rule).
func testFileError(file string, line int, field, problem string) *rules.Error {
	return &rules.Error{File: file, Line: line, Rule: -1, Field: field, Problem: problem}
}

// loadTestFile reads and parses the rule test file at path; its problems
// come as *rules.Error values joined with errors.Join, in line order.
func loadTestFile(path string) (*testFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rule tests: %w", err)
	}
	if len(data) > rules.MaxFileBytes {
		return nil, fmt.Errorf("read rule tests %s: larger than %d bytes", path, rules.MaxFileBytes)
	}
	return parseTestFile(path, data)
}

// parseTestFile parses a rule test file named path (for messages and to
// resolve rule_file). It never panics.
func parseTestFile(path string, data []byte) (f *testFile, err error) {
	p := &tparser{file: path}
	f = &testFile{path: path, start: defaultTestStart}
	root, err := decodeTestYAML(data)
	switch {
	case err != nil:
		p.yamlError(err)
	case root == nil:
		p.errf(nil, "", "empty file: want rule_file and tests")
	default:
		p.top(root, f)
	}
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *rules.Error) int { return a.Line - b.Line })
		errs := make([]error, len(p.errs))
		for i, e := range p.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return f, nil
}

func decodeTestYAML(data []byte) (root *yaml.Node, err error) {
	defer func() {
		// As in shared/rules: a yaml.v3 panic on malformed input is an error.
		if v := recover(); v != nil {
			root, err = nil, fmt.Errorf("yaml: malformed input (%v)", v)
		}
	}()
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

// tparser gathers every problem of a test file, each with its line.
type tparser struct {
	file string
	errs []*rules.Error
}

func (p *tparser) errf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, testFileError(p.file, line, field, fmt.Sprintf(format, args...)))
}

// yamlError puts the line of yaml.v3's "yaml: line 3: message" where ours go.
func (p *tparser) yamlError(err error) {
	e := testFileError(p.file, 0, "", err.Error())
	if rest, ok := strings.CutPrefix(e.Problem, "yaml: line "); ok {
		if num, msg, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				e.Line, e.Problem = line, "yaml: "+msg
			}
		}
	}
	p.errs = append(p.errs, e)
}

// mapping calls f for each key of the mapping n with its value, reporting a
// node that is not a mapping, and non-scalar, duplicate and unknown keys.
func (p *tparser) mapping(n *yaml.Node, field string, known []string, f func(key string, k, v *yaml.Node)) bool {
	n = yamlnode.Deref(n)
	if n.Kind != yaml.MappingNode {
		p.errf(n, field, "want a mapping, got %s", yamlnode.Describe(n))
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := yamlnode.Deref(n.Content[i]), yamlnode.Deref(n.Content[i+1])
		path := joinField(field, k.Value)
		switch {
		case k.Kind != yaml.ScalarNode:
			p.errf(k, field, "want a plain key, got %s", yamlnode.Describe(k))
			continue
		case seen[k.Value] > 0:
			p.errf(k, path, "duplicate key (first at line %d)", seen[k.Value])
			continue
		case known != nil && !slices.Contains(known, k.Value):
			p.errf(k, path, "unknown key (want one of %s)", strings.Join(known, ", "))
			continue
		}
		seen[k.Value] = k.Line
		f(k.Value, k, v)
	}
	return true
}

func joinField(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func (p *tparser) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || yamlnode.IsNull(n) {
		p.errf(n, field, "want a string, got %s", yamlnode.Describe(n))
		return "", false
	}
	return n.Value, true
}

func (p *tparser) number(n *yaml.Node, field string) (float64, bool) {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
		var f float64
		if err := n.Decode(&f); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, true
		}
	}
	p.errf(n, field, "want a finite number, got %s", yamlnode.Describe(n))
	return 0, false
}

// offset reads a time in a case: an offset from the file's start (a Go
// duration such as 90s or 1h2m) or an RFC 3339 time.
func (p *tparser) offset(n *yaml.Node, field string, start time.Time) (time.Duration, bool) {
	s, ok := p.str(n, field)
	if !ok {
		return 0, false
	}
	if s == "0" {
		return 0, true
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t, terr := time.Parse(time.RFC3339Nano, s)
		if terr != nil {
			p.errf(n, field, "want an offset from start such as 90s or 1h2m, or an RFC 3339 time, got %q", s)
			return 0, false
		}
		if t.Before(start) {
			p.errf(n, field, "%s is before start %s", s, start.Format(time.RFC3339Nano))
			return 0, false
		}
		d = t.Sub(start)
	}
	switch {
	case d < 0:
		p.errf(n, field, "offset %s: want ≥ 0", s)
	case !inUnixNano(start.Add(d)):
		p.errf(n, field, "%s: past the year 2262, the last of Unix nanoseconds", s)
	default:
		return d, true
	}
	return 0, false
}

// inUnixNano reports whether t has a Unix time in nanoseconds, as points do.
func inUnixNano(t time.Time) bool { return time.Unix(0, t.UnixNano()).Equal(t) }

func (p *tparser) top(root *yaml.Node, f *testFile) {
	root = yamlnode.Deref(root)
	if root.Kind == yaml.MappingNode {
		if n := yamlnode.Lookup(root, "start"); n != nil {
			if s, ok := p.str(n, "start"); ok {
				t, err := time.Parse(time.RFC3339Nano, s)
				if err != nil || t.UnixNano() <= 0 || !inUnixNano(t) {
					p.errf(n, "start", "want an RFC 3339 time after 1970, such as 2026-01-01T00:00:00Z, got %q", s)
				} else {
					f.start = t
				}
			}
		}
	}
	var hasRules, hasTests bool
	p.mapping(root, "", []string{"rule_file", "start", "settings", "tests"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "rule_file":
			if s, ok := p.str(v, key); ok && s != "" {
				hasRules = true
				f.ruleFile = s
				if !filepath.IsAbs(s) {
					f.ruleFile = filepath.Join(filepath.Dir(f.path), s)
				}
			} else if ok {
				p.errf(v, key, "want the path of a rule file")
			}
		case "settings":
			p.mapping(v, key, rulesTestSettings(), func(name string, k, v *yaml.Node) {
				if s, ok := p.str(v, joinField(key, name)); ok {
					f.settings = append(f.settings, testSetting{name: name, value: s, line: v.Line})
				}
			})
		case "tests":
			hasTests = true
			if v.Kind != yaml.SequenceNode {
				p.errf(v, key, "want a list of test cases, got %s", yamlnode.Describe(v))
				return
			}
			names := map[string]int{}
			for i, c := range v.Content {
				tc := p.testCase(yamlnode.Deref(c), fmt.Sprintf("tests[%d]", i), f.start)
				if tc == nil {
					continue
				}
				if line, dup := names[tc.name]; dup {
					p.errf(c, fmt.Sprintf("tests[%d].name", i), "%q names another case too (line %d)", tc.name, line)
				}
				names[tc.name] = tc.line
				f.cases = append(f.cases, tc)
			}
		}
	})
	if root.Kind != yaml.MappingNode {
		return
	}
	if !hasRules {
		p.errf(root, "rule_file", "missing: want the rule file to test")
	}
	if !hasTests {
		p.errf(root, "tests", "missing: want a list of test cases")
	}
}

func (p *tparser) testCase(n *yaml.Node, field string, start time.Time) *testCase {
	c := &testCase{line: n.Line}
	var values []*yaml.Node // input_series values, expanded once interval is known
	var inputs []testInput
	var hasInterval bool
	ok := p.mapping(n, field, []string{"name", "interval", "input_series", "absent_at", "alerts"}, func(key string, k, v *yaml.Node) {
		path := joinField(field, key)
		switch key {
		case "name":
			c.name, _ = p.str(v, path)
		case "interval":
			s, ok := p.str(v, path)
			if !ok {
				return
			}
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				p.errf(v, path, "want a positive Go duration such as 1s or 1m, got %q", s)
				return
			}
			c.interval, hasInterval = d, true
		case "input_series":
			if v.Kind != yaml.SequenceNode {
				p.errf(v, path, "want a list of series, got %s", yamlnode.Describe(v))
				return
			}
			for i, s := range v.Content {
				in, vals := p.input(yamlnode.Deref(s), fmt.Sprintf("%s[%d]", path, i), start)
				inputs = append(inputs, in)
				values = append(values, vals)
			}
		case "absent_at":
			if v.Kind != yaml.SequenceNode {
				p.errf(v, path, "want a list of offsets, got %s", yamlnode.Describe(v))
				return
			}
			for i, a := range v.Content {
				if d, ok := p.offset(yamlnode.Deref(a), fmt.Sprintf("%s[%d]", path, i), start); ok {
					c.absentAt = append(c.absentAt, d)
				}
			}
			slices.Sort(c.absentAt)
		case "alerts":
			if v.Kind != yaml.SequenceNode {
				p.errf(v, path, "want a list of alert events, got %s", yamlnode.Describe(v))
				return
			}
			for i, a := range v.Content {
				if w, ok := p.wantAlert(yamlnode.Deref(a), fmt.Sprintf("%s[%d]", path, i), start); ok {
					c.alerts = append(c.alerts, w)
				}
			}
		}
	})
	if !ok {
		return nil
	}
	if c.name == "" {
		p.errf(n, joinField(field, "name"), "missing: every case needs a name")
	}
	if len(inputs) == 0 {
		p.errf(n, joinField(field, "input_series"), "missing: want at least one input series")
	}
	for i := range inputs {
		in := &inputs[i]
		if vn := values[i]; vn != nil {
			if !hasInterval {
				p.errf(vn, fmt.Sprintf("%s.input_series[%d].values", field, i), "the case needs an interval, the step between values")
				continue
			}
			vals, err := parseSeriesValues(vn.Value)
			if err != nil {
				p.errf(vn, fmt.Sprintf("%s.input_series[%d].values", field, i), "%v", err)
				continue
			}
			for j, v := range vals {
				if v.ok {
					in.points = append(in.points, testPoint{at: time.Duration(j) * c.interval, value: v.v})
				}
			}
		}
		slices.SortStableFunc(in.points, func(a, b testPoint) int { return cmp.Compare(a.at, b.at) })
		for j := 1; j < len(in.points); j++ {
			if in.points[j].at == in.points[j-1].at {
				p.errf(&yaml.Node{Line: in.line}, fmt.Sprintf("%s.input_series[%d]", field, i), "two points at %s", in.points[j].at)
				break
			}
		}
	}
	c.inputs = inputs
	return c
}

// input reads an input series; the values notation is returned unparsed,
// to be expanded with the case's interval.
func (p *tparser) input(n *yaml.Node, field string, start time.Time) (in testInput, values *yaml.Node) {
	in.line = n.Line
	var series *yaml.Node
	var tags map[string]string
	var hasPoints bool
	p.mapping(n, field, []string{"series", "measurement", "tags", "field", "values", "points"}, func(key string, k, v *yaml.Node) {
		path := joinField(field, key)
		switch key {
		case "series":
			if _, ok := p.str(v, path); ok {
				series = v
			}
		case "measurement":
			in.measurement, _ = p.str(v, path)
		case "field":
			in.field, _ = p.str(v, path)
		case "tags":
			tags = map[string]string{}
			p.mapping(v, path, nil, func(name string, k, v *yaml.Node) {
				tags[name], _ = p.str(v, joinField(path, name))
			})
		case "values":
			if _, ok := p.str(v, path); ok {
				values = v
			}
		case "points":
			hasPoints = true
			if v.Kind != yaml.SequenceNode {
				p.errf(v, path, "want a list of {time, value}, got %s", yamlnode.Describe(v))
				return
			}
			for i, pt := range v.Content {
				pp := fmt.Sprintf("%s[%d]", path, i)
				var tp testPoint
				var hasT, hasV bool
				p.mapping(pt, pp, []string{"time", "value"}, func(key string, k, v *yaml.Node) {
					if key == "time" {
						tp.at, hasT = p.offset(v, joinField(pp, key), start)
					} else {
						tp.value, hasV = p.number(v, joinField(pp, key))
					}
				})
				if hasT && hasV {
					in.points = append(in.points, tp)
				} else if yamlnode.Deref(pt).Kind == yaml.MappingNode && (yamlnode.Lookup(yamlnode.Deref(pt), "time") == nil || yamlnode.Lookup(yamlnode.Deref(pt), "value") == nil) {
					p.errf(pt, pp, "want both time and value")
				}
			}
		}
	})
	switch {
	case series != nil && (in.measurement != "" || in.field != "" || tags != nil):
		p.errf(series, joinField(field, "series"), "give series, or measurement, tags and field: not both")
	case series != nil:
		m, t, f, err := parseSeriesKey(series.Value)
		if err != nil {
			p.errf(series, joinField(field, "series"), "%v", err)
		}
		in.measurement, in.tags, in.field = m, t, f
	case in.measurement == "" || in.field == "":
		p.errf(n, field, "want series (\"cpu,host=a usage\"), or measurement and field (and tags)")
	default:
		for k, v := range tags {
			in.tags = append(in.tags, point.Tag{Key: k, Value: v})
		}
		pt := point.Point{Tags: in.tags}
		pt.SortTags()
	}
	if values == nil && !hasPoints {
		p.errf(n, field, "want values, points or both")
	}
	return in, values
}

func (p *tparser) wantAlert(n *yaml.Node, field string, start time.Time) (w wantAlert, ok bool) {
	w.line = n.Line
	var hasAt bool
	if !p.mapping(n, field, []string{"at", "rule", "state", "labels", "value", "expected", "tolerance"}, func(key string, k, v *yaml.Node) {
		path := joinField(field, key)
		switch key {
		case "at":
			w.at, hasAt = p.offset(v, path, start)
		case "rule":
			w.rule, _ = p.str(v, path)
		case "state":
			if s, ok := p.str(v, path); ok {
				w.state = alert.State(s)
				if w.state != alert.Firing && w.state != alert.Resolved {
					p.errf(v, path, "want firing or resolved, got %q", s)
				}
			}
		case "labels":
			w.labels = map[string]string{}
			p.mapping(v, path, nil, func(name string, k, v *yaml.Node) {
				w.labels[name], _ = p.str(v, joinField(path, name))
			})
		case "value", "expected":
			if f, ok := p.number(v, path); ok {
				if key == "value" {
					w.value = &f
				} else {
					w.expected = &f
				}
			}
		case "tolerance":
			if f, ok := p.number(v, path); ok && f >= 0 {
				w.tolerance = f
			} else if ok {
				p.errf(v, path, "want ≥ 0, got %v", f)
			}
		}
	}) {
		return w, false
	}
	for _, req := range []struct {
		key string
		ok  bool
	}{{"at", hasAt}, {"rule", w.rule != ""}, {"state", w.state != ""}} {
		if !req.ok && yamlnode.Lookup(n, req.key) == nil {
			p.errf(n, joinField(field, req.key), "missing")
		}
	}
	return w, hasAt && w.rule != "" && (w.state == alert.Firing || w.state == alert.Resolved)
}

// parseSeriesKey reads "measurement,tag=v,... field", the form of an alert
// event's Series, with line protocol's escapes.
func parseSeriesKey(s string) (measurement string, tags []point.Tag, field string, err error) {
	var dec point.Decoder
	pts, err := dec.DecodeLine(nil, []byte(s+"=0 1"))
	if err != nil || len(pts) != 1 || len(pts[0].Fields) != 1 {
		return "", nil, "", fmt.Errorf("want a series key and field such as \"cpu,host=a usage\", got %q", s)
	}
	return pts[0].Measurement, pts[0].Tags, pts[0].Fields[0].Key, nil
}
