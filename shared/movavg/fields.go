package movavg

import (
	"fmt"
	"path"
	"strings"

	"github.com/metricpipe/metricpipe/shared/point"
)

// FieldPattern selects fields by glob (path.Match syntax: *, ?, [a-z]) on
// the measurement and on the field key: "cpu:usage_*" is every field of
// cpu whose key starts with usage_.
type FieldPattern struct {
	Measurement, Field string
}

// ParseFieldPattern parses one --derive-fields value, "measurement:field".
func ParseFieldPattern(s string) (FieldPattern, error) {
	m, f, ok := strings.Cut(s, ":")
	p := FieldPattern{Measurement: m, Field: f}
	if !ok || m == "" || f == "" {
		return p, fmt.Errorf("--derive-fields %q: want measurement:field, each a glob (cpu:usage_*, *:value)", s)
	}
	return p, p.validate()
}

func (p FieldPattern) validate() error {
	for _, g := range []string{p.Measurement, p.Field} {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("--derive-fields %q: %w", p.Measurement+":"+p.Field, err)
		}
	}
	return nil
}

func (p FieldPattern) matches(measurement, field string) bool {
	m, _ := path.Match(p.Measurement, measurement)
	f, _ := path.Match(p.Field, field)
	return m && f
}

// selection decides, once per measurement and field key, whether a field
// gets derived output; the answers are cached, since glob matching per
// point would cost more than the moving averages.
type selection struct {
	patterns []FieldPattern
	known    map[string]map[string]bool // measurement → field → selected
	n        int                        // answers cached
}

// maxSelections bounds the cached answers; beyond it (producers putting
// ids in field keys) the patterns are matched each time.
const maxSelections = 1 << 16

func newSelection(patterns []FieldPattern) *selection {
	if len(patterns) == 0 {
		return nil // every field
	}
	return &selection{patterns: patterns, known: make(map[string]map[string]bool)}
}

// selected reports whether field of measurement gets derived output. A nil
// selection selects every field.
func (s *selection) selected(measurement, field string) bool {
	if s == nil {
		return true
	}
	fields := s.known[measurement]
	if v, ok := fields[field]; ok {
		return v
	}
	v := false
	for _, p := range s.patterns {
		if p.matches(measurement, field) {
			v = true
			break
		}
	}
	if s.n < maxSelections {
		if fields == nil {
			fields = make(map[string]bool)
			s.known[strings.Clone(measurement)] = fields
		}
		fields[strings.Clone(field)] = v
		s.n++
	}
	return v
}

// any reports whether a field of p is selected.
func (s *selection) any(p *point.Point) bool {
	if s == nil {
		return true
	}
	for i := range p.Fields {
		if s.selected(p.Measurement, p.Fields[i].Key) {
			return true
		}
	}
	return false
}
