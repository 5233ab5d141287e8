package rules

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"

	"gopkg.in/yaml.v3"

	"github.com/metricpipe/metricpipe/shared/yamlnode"
)

// maxTextBytes bounds a rendered summary or description: an alert event
// must stay far below Kafka's default 1 MB message limit, and a template
// such as {{ printf "%0999999d" 0 }} must not make it exceed it.
const maxTextBytes = 16 << 10

var errTextTooLong = fmt.Errorf("output longer than %d bytes", maxTextBytes)

// templateData is what the summary and description templates see.
type templateData struct {
	Value, Threshold float64
	HasThreshold     bool
	// Observed is the point's own value and Expected its forecast, when
	// known: for an anomaly rule .Value is the score, not either of them.
	Observed, Expected       float64
	HasObserved, HasExpected bool
	Labels                   map[string]string
	Rule, Severity, State    string
}

// Render executes the rule's summary and description templates for a
// verdict, the alert's labels (usually the series' measurement, field and
// tags plus the rule's labels; Render adds none), the alert's state
// ("firing" or "resolved") and the sample evaluated (nil for an absence
// check). The templates see .Value, .Threshold, .HasThreshold, .Observed,
// .HasObserved, .Expected, .HasExpected, .Labels, .Rule (the name),
// .Severity and .State. A template that fails yields "<rule>: <error>" (the
// error names the template) in its place rather than an error, so an alert
// is never lost to its text. A rule without templates (not from Parse)
// renders empty texts. Render is safe for concurrent use.
func (r *Rule) Render(v Verdict, labels map[string]string, state string, smp *Sample) (summary, description string) {
	d := templateData{
		Value: v.Value, Threshold: v.Threshold, HasThreshold: v.HasThreshold,
		Labels: labels, Rule: r.Name, Severity: r.Severity, State: state,
	}
	if smp != nil {
		d.Observed, d.HasObserved = smp.Value, true
		d.Expected, d.HasExpected = smp.Forecast, smp.HasForecast
	}
	return r.render(r.summary, &d), r.render(r.description, &d)
}

func (r *Rule) render(t *template.Template, d *templateData) string {
	if t == nil {
		return ""
	}
	var w limitWriter
	if err := t.Execute(&w, d); err != nil {
		return r.Name + ": " + err.Error() // "template: summary:1:2: executing ..."
	}
	return w.b.String()
}

// limitWriter collects at most maxTextBytes; text/template stops at the
// first failed write.
type limitWriter struct{ b strings.Builder }

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > maxTextBytes {
		return 0, errTextTooLong
	}
	return w.b.Write(p)
}

// checkTemplate rejects what could make a template run without bound:
// {{ template }}, {{ define }} and {{ block }}, which allow recursion that
// doubles at each level, and {{ range }} over anything but a field of the
// data (.Labels), since {{ range 1000000000000 }} loops that many times.
// Alert texts need none of these.
func checkTemplate(t *template.Template) error {
	if len(t.Templates()) > 1 {
		return errors.New("{{ define }} and {{ block }} are not supported")
	}
	if t.Tree == nil {
		return nil
	}
	return checkNode(t.Tree, t.Tree.Root)
}

func checkNode(tree *parse.Tree, n parse.Node) error {
	var lists []*parse.ListNode
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNode(tree, c); err != nil {
				return err
			}
		}
	case *parse.TemplateNode:
		loc, _ := tree.ErrorContext(n)
		return fmt.Errorf("%s: {{ template }} is not supported", loc)
	case *parse.IfNode:
		lists = append(lists, n.List, n.ElseList)
	case *parse.WithNode:
		lists = append(lists, n.List, n.ElseList)
	case *parse.RangeNode:
		if !rangesOverField(n.Pipe) {
			loc, _ := tree.ErrorContext(n)
			return fmt.Errorf("%s: {{ range }} only over a field such as .Labels", loc)
		}
		lists = append(lists, n.List, n.ElseList)
	}
	for _, l := range lists {
		if err := checkNode(tree, l); err != nil {
			return err
		}
	}
	return nil
}

// rangesOverField reports whether a range pipeline is a bare field of the
// data: .Labels or $.Labels.
func rangesOverField(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode:
		return true
	case *parse.VariableNode:
		return len(a.Ident) > 1 && a.Ident[0] == "$"
	}
	return false
}

// template parses the template at n (def when n is absent or null; rn is
// the rule, for the line of errors in a default), checks it with
// checkTemplate and runs it once on sample data, which catches misspelt
// fields such as {{ .Valeu }} at load rather than at the first alert.
func (p *parser) template(n, rn *yaml.Node, name, def string, r *Rule) *template.Template {
	src := templateSource(n, def)
	if n == nil {
		n = rn
	} else if !yamlnode.IsNull(n) && n.Kind != yaml.ScalarNode {
		p.errf(n, name, "want a template string, got %s", yamlnode.Describe(n))
		return nil
	}
	t, err := template.New(name).Parse(src)
	if err == nil {
		err = checkTemplate(t)
	}
	if err == nil {
		var w limitWriter
		err = t.Execute(&w, &templateData{Labels: map[string]string{}, Rule: r.Name, Severity: r.Severity})
	}
	if err != nil {
		p.errf(n, name, "%v", err)
		return nil
	}
	return t
}

func templateSource(n *yaml.Node, def string) string {
	if n == nil || yamlnode.IsNull(n) || n.Kind != yaml.ScalarNode {
		return def
	}
	return n.Value
}

// defaultSummary is the summary template of a rule whose file gives none.
func defaultSummary(r *Rule) string {
	return `{{ if eq .State "resolved" }}resolved: {{ end }}` + defaultCondition(r)
}

// defaultCondition describes the rule's condition and the value it saw.
func defaultCondition(r *Rule) string {
	const val = `{{ printf "%.4g" .Value }}`
	g := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	switch r.Kind {
	case Threshold:
		c := r.Threshold
		if c.Op == Outside {
			return "{{ .Rule }}: " + c.Of.String() + " " + val + " outside [" + g(c.Lo) + ", " + g(c.Hi) + "]"
		}
		return "{{ .Rule }}: " + c.Of.String() + " " + val + " " + c.Op.String() + " " + g(c.Bound)
	case Anomaly:
		if r.Anomaly.Z > 0 {
			return `{{ .Rule }}: residual z-score {{ printf "%.2f" .Value }} beyond ±` + g(r.Anomaly.Z)
		}
		return `{{ .Rule }}: anomaly score {{ printf "%.3f" .Value }} ≥ ` + g(r.Anomaly.Score)
	case Predictive:
		c := r.Predictive
		return "{{ .Rule }}: forecast " + val + " " + c.Op.String() + " " + g(c.Bound) + " within " + c.Within.String()
	case Absence:
		return `{{ .Rule }}: no point for {{ printf "%.0f" .Value }}s (limit ` + r.Absence.For.String() + ")"
	}
	return "{{ .Rule }}"
}
