// Package deploy holds the deployment files of metricpipe (Kubernetes
// manifests, Grafana provisioning, Prometheus configuration, alert rules,
// the container health probe) and their static tests. Nothing here can start
// the stack (no Docker engine, no cluster in the test environment): the tests
// read docker-compose.yml, .env.example, the Dockerfile and the files under
// deploy/ and check what would break it, against the services' real options
// (`<service> options`) and the real rule parser.
//
// Each area has a table of deliberate breakages (a file with one string
// replaced) that must be reported, so every check is shown to bite.
package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/service"
)

// repo reads the repository's files, with some replaced in memory: the
// breakage tables run every check on a copy with one file altered.
type repo struct {
	root      string
	overrides map[string][]byte // by slash path relative to root
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	return &repo{root: testbed.ModuleRoot(t)}
}

// with returns a copy of r where file has its first occurrence of old
// replaced by new; it fails t when old is not in file, so a breakage table
// cannot silently stop testing anything.
func (r *repo) with(t *testing.T, file, old, new string) *repo {
	t.Helper()
	data, err := r.read(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("breakage of %s: %q not found in it", file, old)
	}
	o := map[string][]byte{}
	for k, v := range r.overrides {
		o[k] = v
	}
	o[file] = []byte(strings.Replace(string(data), old, new, 1))
	return &repo{root: r.root, overrides: o}
}

func (r *repo) read(rel string) ([]byte, error) {
	if b, ok := r.overrides[filepath.ToSlash(filepath.Clean(rel))]; ok {
		return b, nil
	}
	return os.ReadFile(filepath.Join(r.root, filepath.FromSlash(rel)))
}

func (r *repo) exists(rel string) bool {
	if _, ok := r.overrides[filepath.ToSlash(filepath.Clean(rel))]; ok {
		return true
	}
	_, err := os.Stat(filepath.Join(r.root, filepath.FromSlash(rel)))
	return err == nil
}

// problems collects what a check found wrong; a check returns all of them
// so one run names every problem.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// report fails t with every problem.
func (p problems) report(t *testing.T) {
	t.Helper()
	for _, s := range p {
		t.Error(s)
	}
}

// bites fails t unless one of the problems contains want.
func (p problems) bites(t *testing.T, want string) {
	t.Helper()
	for _, s := range p {
		if strings.Contains(s, want) {
			return
		}
	}
	t.Errorf("no problem mentions %q; got %d:\n  %s", want, len(p), strings.Join(p, "\n  "))
}

// breakage is one deliberate mistake in a file and a string the problem it
// causes must contain.
type breakage struct {
	name, file, old, new, want string
}

// runBreakages checks that check reports each breakage, and nothing on the
// files as they are.
func runBreakages(t *testing.T, r *repo, check func(*repo) problems, cases []breakage) {
	t.Helper()
	check(r).report(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			check(r.with(t, c.file, c.old, c.new)).bites(t, c.want)
		})
	}
}

// services are the metricpipe binaries, each of which lists its options as
// JSON with the hidden command `options`.
var services = []string{"producer", "consumer", "analyzer"}

// options are the flags of every service, from the built binaries.
type options map[string][]service.Option

// loadOptions builds the three services and reads their options.
func loadOptions(t *testing.T) options {
	t.Helper()
	bins := testbed.BuildServices(t, t.TempDir())
	opts := options{}
	for _, name := range services {
		out, err := exec.Command(bins[name], "options").Output()
		if err != nil {
			t.Fatalf("%s options: %v", name, err)
		}
		var list []service.Option
		if err := json.Unmarshal(out, &list); err != nil {
			t.Fatalf("%s options: %v", name, err)
		}
		if len(list) < 10 {
			t.Fatalf("%s options: only %d options: the listing is broken", name, len(list))
		}
		opts[name] = list
	}
	return opts
}

// invocation is a service binary and the (sub)command it runs, as parsed
// from a container's command line.
type invocation struct {
	service string
	command string   // "" for the service itself, "synthetic", "alerts tail", …
	flags   []string // --flag names given on the command line
}

// parseArgv reads a container's command line: argv[0] names the service,
// then words that extend a known command path ("alerts", then "tail") pick
// the subcommand; other words are flag values or arguments.
func (o options) parseArgv(argv []string) (invocation, error) {
	if len(argv) == 0 {
		return invocation{}, fmt.Errorf("no command")
	}
	inv := invocation{service: filepath.Base(argv[0])}
	list, ok := o[inv.service]
	if !ok {
		return inv, fmt.Errorf("command %q is not one of %v", argv[0], services)
	}
	paths := map[string]bool{}
	for _, opt := range list {
		words := strings.Fields(opt.Command)
		for i := 1; i <= len(words); i++ {
			paths[strings.Join(words[:i], " ")] = true
		}
	}
	for _, w := range argv[1:] {
		if name, ok := strings.CutPrefix(w, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			inv.flags = append(inv.flags, name)
			continue
		}
		if next := strings.TrimSpace(inv.command + " " + w); paths[next] {
			inv.command = next
		}
	}
	return inv, nil
}

// allowed returns the options an invocation reads: the flags of its command
// and of every command above it, by environment variable.
func (o options) allowed(inv invocation) map[string]service.Option {
	out := map[string]service.Option{}
	for _, opt := range o[inv.service] {
		if opt.Command == "" || opt.Command == inv.command || strings.HasPrefix(inv.command, opt.Command+" ") {
			for _, env := range opt.Env {
				out[env] = opt
			}
		}
	}
	return out
}

// checkEnv reports every METRICPIPE_* variable in env that inv does not
// read, and every --flag on its command line that it does not have. where
// names the container for the messages.
func (o options) checkEnv(p *problems, where string, inv invocation, env []string) {
	allowed := o.allowed(inv)
	cmd := strings.TrimSpace(inv.service + " " + inv.command)
	for _, name := range env {
		if !strings.HasPrefix(name, "METRICPIPE_") {
			continue
		}
		if _, ok := allowed[name]; !ok {
			p.addf("%s: %s is not an option of `%s` (see `%s options`)", where, name, cmd, inv.service)
		}
	}
	flags := map[string]bool{"help": true, "version": true}
	for _, opt := range allowed {
		flags[opt.Flag] = true
	}
	for _, f := range inv.flags {
		if !flags[f] {
			p.addf("%s: --%s is not a flag of `%s`", where, f, cmd)
		}
	}
}

// defaultOf returns the default of the option read from env by inv.
func (o options) defaultOf(inv invocation, env string) string {
	return o.allowed(inv)[env].Default
}

// listenPort returns the port of a listen address such as "0.0.0.0:9102"
// and reports an address only this host could reach.
func listenPort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return "", fmt.Errorf("%q listens on loopback only: probes and scrapes from outside the container cannot reach it", addr)
	}
	return port, nil
}

// yamlDocs decodes every document of a multi-document YAML stream into
// generic maps.
func yamlDocs(data []byte) ([]map[string]any, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// Helpers to walk generic YAML: each returns the zero value when the path
// is missing or of another type.

func mapAt(v any, path ...string) map[string]any {
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	m, _ := v.(map[string]any)
	return m
}

func listAt(v any, path ...string) []any {
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	l, _ := v.([]any)
	return l
}

func strAt(v any, path ...string) string {
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	switch s := v.(type) {
	case string:
		return s
	case int, bool, float64:
		return fmt.Sprint(s)
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// envRefRE matches the variables a Grafana provisioning file reads:
// $VAR, ${VAR} and $__env{VAR}.
var envRefRE = regexp.MustCompile(`\$(?:__env\{([A-Za-z_][A-Za-z0-9_]*)\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))`)

// envRefs returns the variables s reads, in Grafana's syntax.
func envRefs(s string) []string {
	var out []string
	for _, m := range envRefRE.FindAllStringSubmatch(s, -1) {
		for _, g := range m[1:] {
			if g != "" && !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}
