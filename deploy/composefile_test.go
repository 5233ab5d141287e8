package deploy

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// compose is the part of a Compose file the checks read.
type compose struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string       `yaml:"image"`
	Build       composeBuild `yaml:"build"`
	Command     stringList   `yaml:"command"`
	Environment envMap       `yaml:"environment"`
	Ports       []any        `yaml:"ports"`
	Volumes     []any        `yaml:"volumes"`
	Healthcheck *struct {
		Test    stringList `yaml:"test"`
		Disable bool       `yaml:"disable"`
	} `yaml:"healthcheck"`
	DependsOn dependsOn `yaml:"depends_on"`
}

// composeBuild is `build: DIR` or `build: {context, dockerfile, args}`.
type composeBuild struct {
	Context, Dockerfile string
	Args                envMap
}

func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	var v struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
		Args       envMap `yaml:"args"`
	}
	err := n.Decode(&v)
	b.Context, b.Dockerfile, b.Args = v.Context, v.Dockerfile, v.Args
	return err
}

// stringList is a command or healthcheck test: a list, or a string split on
// spaces.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	var v []string
	err := n.Decode(&v)
	*l = v
	return err
}

// envMap is an environment: a mapping, or a list of NAME=value.
type envMap map[string]string

func (e *envMap) UnmarshalYAML(n *yaml.Node) error {
	*e = envMap{}
	if n.Kind == yaml.SequenceNode {
		var v []string
		if err := n.Decode(&v); err != nil {
			return err
		}
		for _, kv := range v {
			k, val, _ := strings.Cut(kv, "=")
			(*e)[k] = val
		}
		return nil
	}
	var v map[string]*string
	if err := n.Decode(&v); err != nil {
		return err
	}
	for k, val := range v {
		if val != nil {
			(*e)[k] = *val
		} else {
			(*e)[k] = ""
		}
	}
	return nil
}

// dependsOn maps each dependency to its condition ("" in the list form).
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var v []string
		if err := n.Decode(&v); err != nil {
			return err
		}
		for _, s := range v {
			(*d)[s] = ""
		}
		return nil
	}
	var v map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&v); err != nil {
		return err
	}
	for k, c := range v {
		(*d)[k] = c.Condition
	}
	return nil
}

// mount is one entry of a service's volumes.
type mount struct{ source, target string }

func (s composeService) mounts() ([]mount, error) {
	var out []mount
	for _, v := range s.Volumes {
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				return nil, fmt.Errorf("volume %q: want SOURCE:TARGET[:MODE]", v)
			}
			out = append(out, mount{parts[0], parts[1]})
		case map[string]any:
			out = append(out, mount{strAt(v, "source"), strAt(v, "target")})
		default:
			return nil, fmt.Errorf("volume %v: unknown form", v)
		}
	}
	return out, nil
}

func (s composeService) mountOf(target string) (mount, bool) {
	ms, _ := s.mounts()
	for _, m := range ms {
		if m.target == target {
			return m, true
		}
	}
	return mount{}, false
}

// isBind reports whether a volume source is a host path (else a named
// volume).
func isBind(source string) bool {
	return strings.HasPrefix(source, ".") || strings.HasPrefix(source, "/") || strings.HasPrefix(source, "~")
}

// published is a host port a service publishes.
type published struct{ port, proto, target string }

func (s composeService) published() ([]published, error) {
	var out []published
	for _, p := range s.Ports {
		switch p := p.(type) {
		case string:
			spec, proto, ok := strings.Cut(p, "/")
			if !ok {
				proto = "tcp"
			}
			parts := strings.Split(spec, ":")
			switch len(parts) {
			case 2:
				out = append(out, published{parts[0], proto, parts[1]})
			case 3:
				out = append(out, published{parts[1], proto, parts[2]})
			default:
				return nil, fmt.Errorf("port %q: want [IP:]HOST:CONTAINER: a port without a host side is published on a random one", p)
			}
		case map[string]any:
			proto := strAt(p, "protocol")
			if proto == "" {
				proto = "tcp"
			}
			out = append(out, published{strAt(p, "published"), proto, strAt(p, "target")})
		default:
			return nil, fmt.Errorf("port %v: unknown form", p)
		}
	}
	return out, nil
}

// interpRE matches Compose interpolation: $$, ${…} and $NAME.
var interpRE = regexp.MustCompile(`\$(?:\$|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))`)

var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

// interpRef is one use of a variable in the Compose file.
type interpRef struct {
	name, def string
	hasDef    bool
	line      int
}

// interpolate expands s as Compose does, with vars as the environment, and
// appends each variable used to refs.
func interpolate(s string, vars map[string]string, line int, refs *[]interpRef) (string, error) {
	var err error
	out := interpRE.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		expr := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(m, "${"), "$"), "}")
		name := varNameRE.FindString(expr)
		if name == "" {
			err = fmt.Errorf("line %d: bad interpolation %q", line, m)
			return ""
		}
		ref := interpRef{name: name, line: line}
		op, arg := expr[len(name):], ""
		for _, o := range []string{":-", ":?", ":+", "-", "?", "+"} {
			if strings.HasPrefix(op, o) {
				op, arg = o, op[len(o):]
				break
			}
		}
		if strings.Contains(arg, "$") {
			err = fmt.Errorf("line %d: nested interpolation %q is not checked", line, m)
		}
		val, set := vars[name]
		switch op {
		case "":
			*refs = append(*refs, ref)
			return val
		case ":-", "-":
			ref.def, ref.hasDef = arg, true
			*refs = append(*refs, ref)
			if !set || op == ":-" && val == "" {
				return arg
			}
			return val
		case ":?", "?":
			ref.hasDef = false
			*refs = append(*refs, ref)
			return val
		case ":+", "+":
			ref.def, ref.hasDef = arg, true
			*refs = append(*refs, ref)
			if set && (op == "+" || val != "") {
				return arg
			}
			return ""
		}
		err = fmt.Errorf("line %d: bad interpolation %q", line, m)
		return ""
	})
	return out, err
}

// interpolateNode expands every scalar value (not mapping keys, as Compose)
// of the tree under n.
func interpolateNode(n *yaml.Node, vars map[string]string, refs *[]interpRef) error {
	switch n.Kind {
	case yaml.ScalarNode:
		v, err := interpolate(n.Value, vars, n.Line, refs)
		n.Value = v
		return err
	case yaml.AliasNode:
		return nil // expanded where the anchor is defined
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			continue
		}
		if err := interpolateNode(c, vars, refs); err != nil {
			return err
		}
	}
	return nil
}

// parseEnvFile reads NAME=value lines, in order; # starts a comment line.
func parseEnvFile(data []byte) (map[string]string, []string, error) {
	vars := map[string]string{}
	var order []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !varNameRE.MatchString(k) || varNameRE.FindString(k) != k {
			return nil, nil, fmt.Errorf("line %d: want NAME=value, got %q", i+1, line)
		}
		if _, dup := vars[k]; dup {
			return nil, nil, fmt.Errorf("line %d: %s set twice", i+1, k)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vars[k] = v
		order = append(order, k)
	}
	return vars, order, nil
}

// loadCompose parses the Compose file interpolated with .env.example, as
// `cp .env.example .env && docker compose up` would see it, and reports the
// problems of the variables: each one used must be in .env.example with a
// default equal to its value there (so the stack runs the same without a
// .env), and each one in .env.example must be used.
func loadCompose(r *repo) (*compose, problems) {
	var p problems
	envData, err := r.read(envExample)
	if err != nil {
		p.addf("%v", err)
		return nil, p
	}
	vars, order, err := parseEnvFile(envData)
	if err != nil {
		p.addf("%s: %v", envExample, err)
	}
	data, err := r.read(composeFile)
	if err != nil {
		p.addf("%v", err)
		return nil, p
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		p.addf("%s: %v", composeFile, err)
		return nil, p
	}
	var refs []interpRef
	if err := interpolateNode(&root, vars, &refs); err != nil {
		p.addf("%s: %v", composeFile, err)
	}
	used := map[string]bool{}
	for _, ref := range refs {
		used[ref.name] = true
		val, ok := vars[ref.name]
		switch {
		case !ok:
			p.addf("%s:%d: ${%s} is not in %s", composeFile, ref.line, ref.name, envExample)
		case !ref.hasDef:
			p.addf("%s:%d: ${%s} has no default (${%s:-%s}): without a .env the stack would not run as documented", composeFile, ref.line, ref.name, ref.name, val)
		case ref.def != val:
			p.addf("%s:%d: %s: default %q differs from %q in %s", composeFile, ref.line, ref.name, ref.def, val, envExample)
		}
	}
	for _, k := range order {
		if !used[k] {
			p.addf("%s: %s is never used in %s", envExample, k, composeFile)
		}
	}
	var c compose
	if err := root.Decode(&c); err != nil {
		p.addf("%s: %v", composeFile, err)
		return nil, p
	}
	if len(c.Services) == 0 {
		p.addf("%s: no services", composeFile)
		return nil, p
	}
	return &c, p
}

// metricpipeServices returns the services that run the image built from the
// Dockerfile, by name.
func (c *compose) metricpipeServices() []string {
	images := map[string]bool{}
	for _, s := range c.Services {
		if s.Build.Context != "" && s.Image != "" {
			images[s.Image] = true
		}
	}
	var out []string
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if s.Build.Context != "" || images[s.Image] {
			out = append(out, name)
		}
	}
	return out
}

func TestInterpolate(t *testing.T) {
	vars := map[string]string{"A": "a", "EMPTY": ""}
	f := func(in, want string) {
		t.Helper()
		var refs []interpRef
		got, err := interpolate(in, vars, 1, &refs)
		if err != nil || got != want {
			t.Errorf("interpolate(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	f("x", "x")
	f("$A ${A}", "a a")
	f("${A:-d}", "a")
	f("${B:-d}", "d")
	f("${EMPTY:-d}", "d")
	f("${EMPTY-d}", "")
	f("${A:+alt}", "alt")
	f("${B:+alt}", "")
	f("$$A", "$A")
	f("${B}", "")
}
