package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/metricpipe/metricpipe/shared/yamlnode"
)

// topology is a --topology file: services, each run on its hosts in every
// cluster, and what each depends on.
type topology struct {
	Clusters []string
	Services []topoService // in file order
}

type topoService struct {
	Name      string
	Hosts     int
	DependsOn []string
	line      int
}

// hosts returns how many hosts the topology has over all clusters: its
// number of series.
func (t *topology) hosts() int {
	n := 0
	for _, s := range t.Services {
		n += s.Hosts
	}
	return n * len(t.Clusters)
}

// maxTopologyHosts bounds a service's hosts: a typo of a few zeros should
// not make a million series.
const maxTopologyHosts = 10_000

// topologyName is what cluster and service names may be: they end up in
// tag values and host names (<service>-<cluster>-<i>).
var topologyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// loadTopology reads and validates a --topology file; see parseTopology.
func loadTopology(path string) (*topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--topology: %w", err)
	}
	return parseTopology(path, data)
}

// parseTopology parses and validates a topology file named name: every
// problem is reported, joined, each as "name:line: service "x": what".
func parseTopology(name string, data []byte) (*topology, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &topoParser{name: name}
	topo := &topology{}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = yamlnode.Deref(root.Content[0])
	}
	switch {
	case root.Kind == yaml.DocumentNode || yamlnode.IsNull(root):
	case root.Kind != yaml.MappingNode:
		p.add(root.Line, "", "%s: want a mapping of clusters and services", yamlnode.Describe(root))
	default:
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := yamlnode.Deref(root.Content[i]), yamlnode.Deref(root.Content[i+1])
			switch k.Value {
			case "clusters":
				topo.Clusters = p.clusters(v)
			case "services":
				topo.Services = p.services(v)
			default:
				p.add(k.Line, "", "unknown key %q: want clusters and services", k.Value)
			}
		}
	}
	if len(topo.Clusters) == 0 {
		p.errs = append(p.errs, fmt.Errorf("%s: no clusters", name))
	}
	if len(topo.Services) == 0 {
		p.errs = append(p.errs, fmt.Errorf("%s: no services", name))
	}
	p.dependencies(topo.Services)
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return topo, nil
}

// topoParser collects a topology file's problems.
type topoParser struct {
	name string
	errs []error
}

func (p *topoParser) add(line int, svc, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if svc != "" {
		msg = fmt.Sprintf("service %q: %s", svc, msg)
	}
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s", p.name, line, msg))
}

func (p *topoParser) clusters(n *yaml.Node) []string {
	if yamlnode.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.add(n.Line, "", "clusters: %s: want a list of names", yamlnode.Describe(n))
		return nil
	}
	var out []string
	for _, c := range n.Content {
		c = yamlnode.Deref(c)
		switch {
		case c.Kind != yaml.ScalarNode || !topologyName.MatchString(c.Value):
			p.add(c.Line, "", "cluster %s: want a name of letters, digits, '_', '.' and '-'", yamlnode.Describe(c))
		case slices.Contains(out, c.Value):
			p.add(c.Line, "", "cluster %q listed twice", c.Value)
		default:
			out = append(out, c.Value)
		}
	}
	return out
}

func (p *topoParser) services(n *yaml.Node) []topoService {
	if yamlnode.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, "", "services: %s: want a mapping of service names to {hosts, depends_on}", yamlnode.Describe(n))
		return nil
	}
	var out []topoService
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := yamlnode.Deref(n.Content[i]), yamlnode.Deref(n.Content[i+1])
		s := topoService{Name: k.Value, line: k.Line}
		if k.Kind != yaml.ScalarNode || !topologyName.MatchString(k.Value) {
			p.add(k.Line, k.Value, "want a name of letters, digits, '_', '.' and '-'")
		}
		if j := slices.IndexFunc(out, func(o topoService) bool { return o.Name == s.Name }); j >= 0 {
			p.add(k.Line, s.Name, "defined twice (first at line %d)", out[j].line)
			continue
		}
		var hosts *yaml.Node
		switch {
		case yamlnode.IsNull(v):
		case v.Kind != yaml.MappingNode:
			p.add(v.Line, s.Name, "%s: want a mapping {hosts, depends_on}", yamlnode.Describe(v))
		default:
			for j := 0; j+1 < len(v.Content); j += 2 {
				kk, vv := yamlnode.Deref(v.Content[j]), yamlnode.Deref(v.Content[j+1])
				switch kk.Value {
				case "hosts":
					hosts = vv
				case "depends_on":
					s.DependsOn = p.dependsOn(s.Name, vv)
				default:
					p.add(kk.Line, s.Name, "unknown key %q: want hosts and depends_on", kk.Value)
				}
			}
		}
		s.Hosts = p.hosts(s.Name, k.Line, hosts)
		out = append(out, s)
	}
	return out
}

func (p *topoParser) hosts(svc string, line int, n *yaml.Node) int {
	if n == nil || yamlnode.IsNull(n) {
		p.add(line, svc, "hosts missing: want an integer ≥ 1")
		return 0
	}
	h, err := strconv.Atoi(n.Value)
	switch {
	case n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || err != nil:
		p.add(n.Line, svc, "hosts %s: want an integer ≥ 1", yamlnode.Describe(n))
	case h < 1:
		p.add(n.Line, svc, "hosts %d: want ≥ 1", h)
	case h > maxTopologyHosts:
		p.add(n.Line, svc, "hosts %d: want at most %d", h, maxTopologyHosts)
	}
	return h
}

func (p *topoParser) dependsOn(svc string, n *yaml.Node) []string {
	if yamlnode.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.add(n.Line, svc, "depends_on %s: want a list of services", yamlnode.Describe(n))
		return nil
	}
	var out []string
	for _, d := range n.Content {
		d = yamlnode.Deref(d)
		switch {
		case d.Kind != yaml.ScalarNode:
			p.add(d.Line, svc, "depends_on %s: want a service name", yamlnode.Describe(d))
		case slices.Contains(out, d.Value):
			p.add(d.Line, svc, "depends on %q twice", d.Value)
		default:
			out = append(out, d.Value)
		}
	}
	return out
}

// dependencies reports dependencies on services the file does not define,
// and every dependency cycle (found depth first, in file order).
func (p *topoParser) dependencies(services []topoService) {
	index := map[string]int{}
	for i, s := range services {
		index[s.Name] = i
	}
	for _, s := range services {
		for _, d := range s.DependsOn {
			if _, ok := index[d]; !ok {
				p.add(s.line, s.Name, "depends on unknown service %q", d)
			}
		}
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, len(services))
	var path []int
	var visit func(i int)
	visit = func(i int) {
		state[i] = onPath
		path = append(path, i)
		for _, d := range services[i].DependsOn {
			j, ok := index[d]
			switch {
			case !ok:
			case state[j] == onPath:
				from := slices.Index(path, j)
				var names []string
				for _, k := range path[from:] {
					names = append(names, services[k].Name)
				}
				names = append(names, services[j].Name)
				p.add(services[j].line, services[j].Name, "dependency cycle %s", joinArrow(names))
			case state[j] == unseen:
				visit(j)
			}
		}
		path = path[:len(path)-1]
		state[i] = done
	}
	for i := range services {
		if state[i] == unseen {
			visit(i)
		}
	}
}

func joinArrow(names []string) string {
	out := names[0]
	for _, n := range names[1:] {
		out += " -> " + n
	}
	return out
}
