package rules

import (
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/metricpipe/metricpipe/shared/yamlnode"
)

// dependencies parses the top-level mapping of each service to the list of
// services it depends on:
//
//	dependencies:
//	  api: [db, cache]
//	  web: [api]
//
// A cycle is refused: it would leave no service upstream of the others.
func (p *parser) dependencies(n *yaml.Node, set *Set) {
	if yamlnode.IsNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errf(n, "dependencies", "want a mapping of each service to the services it depends on, got %s", yamlnode.Describe(n))
		return
	}
	deps := map[string][]string{}
	lines := map[string]int{}
	p.mapping(n, "dependencies", func(service string, k, v *yaml.Node) {
		field := "dependencies." + service
		if strings.TrimSpace(service) == "" {
			p.errf(k, field, "empty service name")
			return
		}
		lines[service] = k.Line
		var on []string
		switch {
		case v.Kind == yaml.ScalarNode && !yamlnode.IsNull(v):
			on = []string{v.Value}
		case v.Kind == yaml.SequenceNode:
			for _, item := range v.Content {
				item = yamlnode.Deref(item)
				s, ok := p.str(item, field)
				switch {
				case !ok:
				case s == service:
					p.errf(item, field, "a service cannot depend on itself")
				case slices.Contains(on, s):
					p.errf(item, field, "%q listed twice", s)
				default:
					on = append(on, s)
				}
			}
		default:
			p.errf(v, field, "want a service or a list of services, got %s", yamlnode.Describe(v))
			return
		}
		deps[service] = on
	})
	if cycle := findCycle(deps); cycle != nil {
		p.errf(n, "dependencies", "cycle %s", strings.Join(cycle, " → "))
		return
	}
	if len(deps) > 0 {
		set.Dependencies = deps
	}
}

// findCycle returns a dependency cycle (its first service repeated at the
// end), nil if there is none. Services are visited in name order, so the
// cycle reported is always the same.
func findCycle(deps map[string][]string) []string {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(s string) []string
	visit = func(s string) []string {
		switch state[s] {
		case onPath:
			i := slices.Index(path, s)
			return append(slices.Clone(path[i:]), s)
		case done:
			return nil
		}
		state[s] = onPath
		path = append(path, s)
		for _, d := range deps[s] {
			if c := visit(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		state[s] = done
		return nil
	}
	names := make([]string, 0, len(deps))
	for s := range deps {
		names = append(names, s)
	}
	slices.Sort(names)
	for _, s := range names {
		if c := visit(s); c != nil {
			return c
		}
	}
	return nil
}
