package rules

import (
	"math"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/metricpipe/metricpipe/shared/yamlnode"
)

// mapping calls f for each key of the mapping m with its (dereferenced)
// value, reporting non-scalar, merge and duplicate keys instead.
func (p *parser) mapping(m *yaml.Node, field string, f func(key string, k, v *yaml.Node)) {
	seen := make(map[string]int, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := yamlnode.Deref(m.Content[i]), yamlnode.Deref(m.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.errf(k, field, "want a plain key, got %s", yamlnode.Describe(k))
			continue
		}
		path := k.Value
		if field != "" {
			path = field + "." + k.Value
		}
		if k.ShortTag() == "!!merge" {
			p.errf(k, path, "merge keys are not supported")
			continue
		}
		if line, dup := seen[k.Value]; dup {
			p.errf(k, path, "duplicate key (first at line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		f(k.Value, k, v)
	}
}

// str returns a scalar's text. Any scalar but null is accepted: a label
// value of 1 or true means the text.
func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || yamlnode.IsNull(n) {
		p.errf(n, field, "want a string, got %s", yamlnode.Describe(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) number(n *yaml.Node, field string) (float64, bool) {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
		var f float64
		if err := n.Decode(&f); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, true
		}
		p.errf(n, field, "want a finite number, got %s", n.Value)
		return 0, false
	}
	p.errf(n, field, "want a number, got %s", yamlnode.Describe(n))
	return 0, false
}

// duration parses a Go duration; positive demands > 0, otherwise ≥ 0.
func (p *parser) duration(n *yaml.Node, field string, positive bool) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || yamlnode.IsNull(n) {
		p.errf(n, field, "want a duration such as 90s, 5m or 4h, got %s", yamlnode.Describe(n))
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	switch {
	case err != nil:
		p.errf(n, field, "want a Go duration such as 90s, 5m or 1h30m (units ns, us, ms, s, m, h; no d or w), got %q", n.Value)
	case positive && d <= 0:
		p.errf(n, field, "must be positive, got %s", n.Value)
	case d < 0:
		p.errf(n, field, "must not be negative, got %s", n.Value)
	default:
		return d, true
	}
	return 0, false
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
