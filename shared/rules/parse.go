package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/metricpipe/metricpipe/shared/yamlnode"
)

// maxErrors bounds how many problems one Parse reports: enough to fix a
// file in one pass, not so many that a wrong file floods the log.
const maxErrors = 50

// Parse parses and validates a rule file; name is the file's name for
// messages and Set.Source. An empty file, or one with an empty rules list,
// is a valid Set without rules. Otherwise every problem found is returned,
// as *Error values joined with errors.Join (at most 50, the last one saying
// how many more there are), and no Set. Parse never panics.
func Parse(name string, data []byte) (*Set, error) {
	return ParseWith(name, data, Options{})
}

// ParseWith is Parse with host settings: see Options.
func ParseWith(name string, data []byte, opts Options) (*Set, error) {
	p := &parser{file: name, rule: -1, names: map[string]int{}, opts: opts}
	set := &Set{Source: name}
	doc, extra, err := decodeYAML(data)
	switch {
	case err != nil:
		p.yamlError(err)
	case doc != nil:
		p.top(doc, set)
	}
	if extra != nil {
		p.rule = -1
		p.errf(extra, "", "a second YAML document: want one")
	}
	if len(p.errs) == 0 {
		return set, nil
	}
	slices.SortStableFunc(p.errs, func(a, b *Error) int { return a.Line - b.Line })
	errs := make([]error, 0, min(len(p.errs), maxErrors))
	for i, e := range p.errs {
		if i == maxErrors-1 && len(p.errs) > maxErrors {
			errs = append(errs, &Error{File: name, Rule: -1, Problem: fmt.Sprintf("%d more problems not shown", len(p.errs)-i)})
			break
		}
		errs = append(errs, e)
	}
	return nil, errors.Join(errs...)
}

// decodeYAML returns the file's document (nil when there is none) and the
// start of a second document, if any.
func decodeYAML(data []byte) (doc, extra *yaml.Node, err error) {
	defer func() {
		// yaml.v3 has panicked on malformed input before (CVE-2022-28948);
		// should it again, a bad rule file must not crash the analyzer.
		if v := recover(); v != nil {
			doc, extra, err = nil, nil, fmt.Errorf("yaml: malformed input (%v)", v)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var d yaml.Node
	if err := dec.Decode(&d); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, nil, err
	default:
		extra = &next
	}
	return &d, extra, nil
}

type parser struct {
	file string
	opts Options
	errs []*Error
	// rule and name are the rule being parsed (-1 outside rules).
	rule int
	name string
	// names maps each valid rule name seen to its rule's index.
	names map[string]int
}

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{
		File: p.file, Line: line, Rule: p.rule, Name: p.name, Field: field,
		Problem: fmt.Sprintf(format, args...),
	})
}

// yamlError reports a YAML syntax error, taking yaml.v3's
// "yaml: line 3: message" apart to put the line where ours go.
func (p *parser) yamlError(err error) {
	e := &Error{File: p.file, Rule: -1, Problem: err.Error()}
	if rest, ok := strings.CutPrefix(e.Problem, "yaml: line "); ok {
		if num, msg, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				e.Line, e.Problem = line, "yaml: "+msg
			}
		}
	}
	p.errs = append(p.errs, e)
}

func (p *parser) top(doc *yaml.Node, set *Set) {
	root := doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return
		}
		root = root.Content[0]
	}
	root = yamlnode.Deref(root)
	if yamlnode.IsNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		p.errf(root, "", "want a mapping with the key rules, got %s", yamlnode.Describe(root))
		return
	}
	p.mapping(root, "", func(key string, k, v *yaml.Node) {
		switch key {
		case "rules":
			p.rules(v, set)
		case "dependencies":
			p.dependencies(v, set)
		default:
			p.errf(k, key, "unknown key (want rules or dependencies)")
		}
	})
}

func (p *parser) rules(n *yaml.Node, set *Set) {
	if yamlnode.IsNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "rules", "want a list of rules, got %s", yamlnode.Describe(n))
		return
	}
	for i, item := range n.Content {
		p.rule, p.name = i, ""
		if r := p.parseRule(yamlnode.Deref(item)); r != nil {
			set.Rules = append(set.Rules, r)
		}
	}
	p.rule, p.name = -1, ""
}

const ruleKeys = "name, match, threshold, anomaly, predictive, absence, for, keep_firing_for, hysteresis, severity, labels, summary, description or actions"

// parseRule returns the rule n defines, or nil after reporting its problems.
func (p *parser) parseRule(n *yaml.Node) *Rule {
	if n.Kind != yaml.MappingNode {
		p.errf(n, "", "want a mapping, got %s", yamlnode.Describe(n))
		return nil
	}
	before := len(p.errs)
	r := &Rule{Line: n.Line, Severity: "warning", Match: Match{Measurement: "*", Field: "*"}}
	// The name first, so that every message about the rule carries it.
	if nn := yamlnode.Lookup(n, "name"); nn == nil {
		p.errf(n, "name", "required")
	} else if s, ok := p.str(nn, "name"); ok {
		switch j, dup := p.names[s]; {
		case !validName(s):
			p.errf(nn, "name", "want letters, digits, '_', '.' and '-' only, got %q", s)
		case dup:
			p.name = s
			p.errf(nn, "name", "duplicate of rules[%d]", j)
		default:
			p.name = s
			p.names[s] = p.rule
		}
		r.Name = s
	}

	var conds []*yaml.Node // the keys of the conditions given
	var hyst, summary, description *yaml.Node
	p.mapping(n, "", func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
		case "match":
			p.match(v, &r.Match)
		case "threshold":
			conds = append(conds, k)
			r.Kind = Threshold
			p.threshold(v, &r.Threshold)
		case "anomaly":
			conds = append(conds, k)
			r.Kind = Anomaly
			p.anomaly(v, &r.Anomaly)
		case "predictive":
			conds = append(conds, k)
			r.Kind = Predictive
			p.predictive(v, &r.Predictive)
		case "absence":
			conds = append(conds, k)
			r.Kind = Absence
			p.absence(v, &r.Absence)
		case "for":
			r.For, _ = p.duration(v, key, false)
		case "keep_firing_for":
			r.KeepFiringFor, _ = p.duration(v, key, false)
		case "hysteresis":
			hyst = v
			if h, ok := p.number(v, key); ok && h < 0 {
				p.errf(v, key, "must not be negative, got %s", v.Value)
			} else {
				r.Hysteresis = h
			}
		case "severity":
			if s, ok := p.str(v, key); ok {
				if s != "critical" && s != "warning" && s != "info" {
					p.errf(v, key, "want critical, warning or info, got %q", s)
				}
				r.Severity = s
			}
		case "labels":
			r.Labels = p.labels(v)
		case "summary":
			summary = v
		case "description":
			description = v
		case "actions":
			r.Actions = p.actions(v)
		default:
			p.errf(k, key, "unknown key (want %s)", ruleKeys)
		}
	})

	switch len(conds) {
	case 0:
		p.errf(n, "", "want exactly one condition: threshold, anomaly, predictive or absence")
	case 1:
		p.checkHysteresis(r, hyst)
	default:
		p.errf(conds[1], conds[1].Value, "want exactly one condition, got %s and %s", conds[0].Value, conds[1].Value)
	}
	// The templates are checked even when the rest is wrong, so that one
	// pass finds every problem; the default summary needs a valid condition.
	def := ""
	if len(p.errs) == before {
		def = defaultSummary(r)
	}
	r.summary = p.template(summary, n, "summary", def, r)
	r.description = p.template(description, n, "description", "", r)
	if len(p.errs) > before {
		return nil
	}
	r.Summary, r.Description = templateSource(summary, def), templateSource(description, "")
	r.Hash = r.hash()
	return r
}

// checkHysteresis rejects a hysteresis that has no bound to work on or that
// would keep an alert active forever.
func (p *parser) checkHysteresis(r *Rule, n *yaml.Node) {
	h := r.Hysteresis
	if n == nil || h <= 0 {
		return
	}
	switch {
	case r.Kind == Absence:
		p.errf(n, "hysteresis", "absence rules have no bound to apply it to")
	case r.Kind == Threshold && r.Threshold.Op == Outside && 2*h >= r.Threshold.Hi-r.Threshold.Lo:
		p.errf(n, "hysteresis", "%g is at least half the band [%g, %g]: the condition could never clear",
			h, r.Threshold.Lo, r.Threshold.Hi)
	case r.Kind == Anomaly && h >= r.Anomaly.Score+r.Anomaly.Z: // one of them is 0
		p.errf(n, "hysteresis", "%g is at least the anomaly bound %g: the condition could never clear",
			h, r.Anomaly.Score+r.Anomaly.Z)
	}
}

func (p *parser) match(n *yaml.Node, m *Match) {
	if yamlnode.IsNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errf(n, "match", "want a mapping of measurement, field and tags, got %s", yamlnode.Describe(n))
		return
	}
	p.mapping(n, "match", func(key string, k, v *yaml.Node) {
		switch key {
		case "measurement":
			m.Measurement = p.glob(v, "match.measurement")
		case "field":
			m.Field = p.glob(v, "match.field")
		case "tags":
			m.Tags = p.tagMatches(v)
		default:
			p.errf(k, "match."+key, "unknown key (want measurement, field or tags)")
		}
	})
}

func (p *parser) tagMatches(n *yaml.Node) []TagMatch {
	if yamlnode.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errf(n, "match.tags", "want a mapping of tag keys to patterns, got %s", yamlnode.Describe(n))
		return nil
	}
	var tags []TagMatch
	p.mapping(n, "match.tags", func(key string, k, v *yaml.Node) {
		if key == "" {
			p.errf(k, "match.tags", "empty tag key")
			return
		}
		tags = append(tags, TagMatch{Key: key, Pattern: p.glob(v, "match.tags."+key)})
	})
	slices.SortFunc(tags, func(a, b TagMatch) int { return strings.Compare(a.Key, b.Key) })
	return tags
}

func (p *parser) glob(n *yaml.Node, field string) string {
	s, ok := p.str(n, field)
	switch {
	case !ok:
	case s == "":
		p.errf(n, field, `empty pattern: use "*" or leave the key out`)
	case checkGlob(s) != nil:
		p.errf(n, field, "bad pattern %q: want path.Match syntax (*, ?, [a-z], \\ to escape)", s)
	default:
		return s
	}
	return "*"
}

func (p *parser) threshold(n *yaml.Node, c *ThresholdCond) {
	if !p.condMapping(n, "threshold", "{above: 90}") {
		return
	}
	var ops []*yaml.Node
	p.mapping(n, "threshold", func(key string, k, v *yaml.Node) {
		field := "threshold." + key
		switch key {
		case "of":
			if s, ok := p.str(v, field); ok {
				i := slices.Index(sourceNames[:], s)
				if i < 0 {
					p.errf(v, field, "want value, sma, ema or forecast, got %q", s)
				}
				c.Of = Source(max(i, 0))
			}
		case "above", "below":
			ops = append(ops, k)
			c.Op = Above
			if key == "below" {
				c.Op = Below
			}
			c.Bound, _ = p.number(v, field)
		case "outside":
			ops = append(ops, k)
			c.Op = Outside
			c.Lo, c.Hi = p.band(v, field)
		default:
			p.errf(k, field, "unknown key (want of, above, below or outside)")
		}
	})
	switch len(ops) {
	case 0:
		p.errf(n, "threshold", "want one of above, below or outside")
	case 1:
	default:
		p.errf(ops[1], "threshold."+ops[1].Value, "want one of above, below or outside, got %s and %s", ops[0].Value, ops[1].Value)
	}
}

// band parses outside: [lo, hi].
func (p *parser) band(n *yaml.Node, field string) (lo, hi float64) {
	if n.Kind != yaml.SequenceNode || len(n.Content) != 2 {
		p.errf(n, field, "want [lo, hi], got %s", yamlnode.Describe(n))
		return 0, 0
	}
	lo, ok1 := p.number(yamlnode.Deref(n.Content[0]), field+"[0]")
	hi, ok2 := p.number(yamlnode.Deref(n.Content[1]), field+"[1]")
	if ok1 && ok2 && lo >= hi {
		p.errf(n, field, "want lo < hi, got [%g, %g]", lo, hi)
	}
	return lo, hi
}

func (p *parser) anomaly(n *yaml.Node, c *AnomalyCond) {
	if !p.condMapping(n, "anomaly", "{score: 0.99}") {
		return
	}
	var bounds []*yaml.Node
	p.mapping(n, "anomaly", func(key string, k, v *yaml.Node) {
		field := "anomaly." + key
		switch key {
		case "score":
			bounds = append(bounds, k)
			if s, ok := p.number(v, field); ok && (s <= 0 || s > 1) {
				p.errf(v, field, "want a score in (0, 1], got %s", v.Value)
			} else {
				c.Score = s
			}
		case "z":
			bounds = append(bounds, k)
			if z, ok := p.number(v, field); ok && z <= 0 {
				p.errf(v, field, "must be positive, got %s", v.Value)
			} else {
				c.Z = z
			}
		default:
			p.errf(k, field, "unknown key (want score or z)")
		}
	})
	switch len(bounds) {
	case 0:
		p.errf(n, "anomaly", "want one of score or z")
	case 1:
	default:
		p.errf(bounds[1], "anomaly."+bounds[1].Value, "want one of score or z, got both")
	}
}

func (p *parser) predictive(n *yaml.Node, c *PredictiveCond) {
	if !p.condMapping(n, "predictive", "{above: 100, within: 4h}") {
		return
	}
	var ops []*yaml.Node
	within := false
	p.mapping(n, "predictive", func(key string, k, v *yaml.Node) {
		field := "predictive." + key
		switch key {
		case "above", "below":
			ops = append(ops, k)
			c.Op = Above
			if key == "below" {
				c.Op = Below
			}
			c.Bound, _ = p.number(v, field)
		case "within":
			within = true
			c.Within, _ = p.duration(v, field, true)
		default:
			p.errf(k, field, "unknown key (want above, below or within)")
		}
	})
	switch len(ops) {
	case 0:
		p.errf(n, "predictive", "want one of above or below")
	case 1:
	default:
		p.errf(ops[1], "predictive."+ops[1].Value, "want one of above or below, got both")
	}
	if !within {
		p.errf(n, "predictive.within", "required")
	}
}

func (p *parser) absence(n *yaml.Node, c *AbsenceCond) {
	if !p.condMapping(n, "absence", "{for: 5m}") {
		return
	}
	given := false
	p.mapping(n, "absence", func(key string, k, v *yaml.Node) {
		switch key {
		case "for":
			given = true
			c.For, _ = p.duration(v, "absence.for", true)
		default:
			p.errf(k, "absence."+key, "unknown key (want for)")
		}
	})
	if !given {
		p.errf(n, "absence.for", "required")
	}
}

func (p *parser) condMapping(n *yaml.Node, field, example string) bool {
	if n.Kind != yaml.MappingNode {
		p.errf(n, field, "want a mapping such as %s, got %s", example, yamlnode.Describe(n))
		return false
	}
	return true
}

func (p *parser) labels(n *yaml.Node) map[string]string {
	if yamlnode.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errf(n, "labels", "want a mapping of names to values, got %s", yamlnode.Describe(n))
		return nil
	}
	var labels map[string]string
	p.mapping(n, "labels", func(key string, k, v *yaml.Node) {
		if key == "" {
			p.errf(k, "labels", "empty label name")
			return
		}
		if s, ok := p.str(v, "labels."+key); ok {
			if labels == nil {
				labels = map[string]string{}
			}
			labels[key] = s
		}
	})
	return labels
}
