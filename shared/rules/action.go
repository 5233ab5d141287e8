package rules

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/yamlnode"
)

// Options are the parse settings that depend on the host rather than on the
// file.
type Options struct {
	// ActionsDir is the allow-list directory exec actions' commands are
	// resolved in (the analyzer's --actions-dir).
	ActionsDir string
	// ResolveExec makes every exec action's command resolve to an
	// executable regular file in ActionsDir, setting Exec.Path; an exec
	// action is then an error when ActionsDir is empty. Without it (rule
	// tests, backtests: nothing is run) only the command's form is checked.
	ResolveExec bool
}

// Action is a recovery action a rule runs when one of its alerts fires or
// resolves. Exactly one of Webhook and Exec is set.
type Action struct {
	// On is the alert state that runs the action: alert.Firing (the
	// default) or alert.Resolved.
	On      alert.State
	Webhook *Webhook
	Exec    *Exec
	// Cooldown is the least wall time between two runs for one alert
	// (fingerprint); 0: none.
	Cooldown time.Duration
	// RateLimit bounds the runs of the action over all the rule's alerts;
	// zero: none.
	RateLimit Rate
	// DryRun logs and audits what would run, and runs nothing.
	DryRun bool
	// Line is where the action starts in its file, for messages.
	Line int
}

// Kind returns "webhook" or "exec".
func (a *Action) Kind() string {
	if a.Exec != nil {
		return "exec"
	}
	return "webhook"
}

// Rate is N runs per Per, refilled continuously (a token bucket of N).
type Rate struct {
	N   int
	Per time.Duration
}

// Webhook POSTs the alert event's JSON to URL.
type Webhook struct {
	URL string
	// Timeout bounds one attempt (default 5s); Retries is how many more
	// attempts follow a 5xx or network error (default 3, never after a 4xx).
	Timeout time.Duration
	Retries int
	// SecretEnv or SecretFile name where the HMAC-SHA256 key of the
	// X-Metricpipe-Signature header is read from, at each run; both empty:
	// no signature.
	SecretEnv, SecretFile string
	// Headers are sent as given; HeadersEnv maps a header to the
	// environment variable its value is read from at each run.
	Headers, HeadersEnv map[string]string
}

// Exec runs Command, a bare name in the allow-list directory, with Args
// rendered over the alert event, without a shell.
type Exec struct {
	Command string
	// Path is Command resolved in Options.ActionsDir (with ResolveExec).
	Path string
	// Args are text/template sources over the alert.Event (.Labels.service,
	// .Rule, .Fingerprint, .State, .Value, ...).
	Args []string
	// Timeout bounds a run (default 30s); the process is killed after it.
	Timeout time.Duration

	args []*template.Template
}

// Defaults of the action settings a file leaves out.
const (
	DefaultWebhookTimeout = 5 * time.Second
	DefaultWebhookRetries = 3
	DefaultExecTimeout    = 30 * time.Second
)

// RenderArgs renders the exec action's arguments over ev. A label the
// event lacks is an error, not "<no value>": a command must not run on a
// guessed argument. Safe for concurrent use.
func (e *Exec) RenderArgs(ev *alert.Event) ([]string, error) {
	out := make([]string, len(e.args))
	for i, t := range e.args {
		var w limitWriter
		if err := t.Execute(&w, ev); err != nil {
			return nil, fmt.Errorf("exec %s: args[%d]: %w", e.Command, i, err)
		}
		out[i] = w.b.String()
	}
	return out, nil
}

const actionKeys = "on, webhook, exec, cooldown, rate_limit or dry_run"

func (p *parser) actions(n *yaml.Node) []Action {
	if yamlnode.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "actions", "want a list of actions, got %s", yamlnode.Describe(n))
		return nil
	}
	var out []Action
	for i, item := range n.Content {
		item = yamlnode.Deref(item)
		field := "actions[" + strconv.Itoa(i) + "]"
		if item.Kind != yaml.MappingNode {
			p.errf(item, field, "want a mapping, got %s", yamlnode.Describe(item))
			continue
		}
		a := Action{On: alert.Firing, Line: item.Line}
		var kinds []*yaml.Node
		p.mapping(item, field, func(key string, k, v *yaml.Node) {
			f := field + "." + key
			switch key {
			case "on":
				if s, ok := p.str(v, f); ok {
					if s != string(alert.Firing) && s != string(alert.Resolved) {
						p.errf(v, f, "want firing or resolved, got %q", s)
					}
					a.On = alert.State(s)
				}
			case "webhook":
				kinds = append(kinds, k)
				a.Webhook = p.webhook(v, f)
			case "exec":
				kinds = append(kinds, k)
				a.Exec = p.exec(v, f)
			case "cooldown":
				a.Cooldown, _ = p.duration(v, f, false)
			case "rate_limit":
				a.RateLimit = p.rate(v, f)
			case "dry_run":
				if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
					p.errf(v, f, "want true or false, got %s", yamlnode.Describe(v))
				} else {
					a.DryRun = v.Value == "true"
				}
			default:
				p.errf(k, f, "unknown key (want %s)", actionKeys)
			}
		})
		switch len(kinds) {
		case 0:
			p.errf(item, field, "want one of webhook or exec")
		case 1:
		default:
			p.errf(kinds[1], field+"."+kinds[1].Value, "want one of webhook or exec, got both")
		}
		out = append(out, a)
	}
	return out
}

// rate parses "6/h", "100/m", "1/s" or "3/10m".
func (p *parser) rate(n *yaml.Node, field string) Rate {
	s, ok := p.str(n, field)
	if !ok {
		return Rate{}
	}
	num, per, found := strings.Cut(s, "/")
	count, err := strconv.Atoi(num)
	var d time.Duration
	switch per {
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	default:
		d, _ = time.ParseDuration(per)
	}
	if !found || err != nil || count <= 0 || d <= 0 {
		p.errf(n, field, "want runs per period such as 6/h, 100/m or 3/10m, got %q", s)
		return Rate{}
	}
	return Rate{N: count, Per: d}
}

func (p *parser) webhook(n *yaml.Node, field string) *Webhook {
	if n.Kind != yaml.MappingNode {
		p.errf(n, field, "want a mapping such as {url: https://hooks.example.com/x}, got %s", yamlnode.Describe(n))
		return nil
	}
	w := &Webhook{Timeout: DefaultWebhookTimeout, Retries: DefaultWebhookRetries}
	hasURL := false
	p.mapping(n, field, func(key string, k, v *yaml.Node) {
		f := field + "." + key
		switch key {
		case "url":
			hasURL = true
			if s, ok := p.str(v, f); ok {
				u, err := url.Parse(s)
				switch {
				case err != nil:
					p.errf(v, f, "%v", err)
				case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
					p.errf(v, f, "want an http:// or https:// URL with a host, got %q", s)
				case u.User != nil:
					p.errf(v, f, "credentials in the URL: use headers_env or secret_env")
				}
				w.URL = s
			}
		case "timeout":
			w.Timeout, _ = p.duration(v, f, true)
		case "retries":
			if r, ok := p.number(v, f); ok && (r < 0 || r > 10 || r != float64(int(r))) {
				p.errf(v, f, "want a whole number from 0 to 10, got %s", v.Value)
			} else {
				w.Retries = int(r)
			}
		case "secret_env":
			w.SecretEnv = p.envName(v, f)
		case "secret_file":
			if s, ok := p.str(v, f); ok {
				if !filepath.IsAbs(s) {
					p.errf(v, f, "want an absolute path, got %q", s)
				}
				w.SecretFile = s
			}
		case "headers":
			w.Headers = p.headers(v, f, false)
		case "headers_env":
			w.HeadersEnv = p.headers(v, f, true)
		default:
			p.errf(k, f, "unknown key (want url, timeout, retries, secret_env, secret_file, headers or headers_env)")
		}
	})
	if !hasURL {
		p.errf(n, field+".url", "required")
	}
	if w.SecretEnv != "" && w.SecretFile != "" {
		p.errf(n, field, "want one of secret_env or secret_file, got both")
	}
	return w
}

func (p *parser) envName(n *yaml.Node, field string) string {
	s, ok := p.str(n, field)
	if ok && (s == "" || strings.ContainsAny(s, "= \t\n\x00")) {
		p.errf(n, field, "want an environment variable name, got %q", s)
	}
	return s
}

// headers parses a mapping of header names to values, or to environment
// variable names when env.
func (p *parser) headers(n *yaml.Node, field string, env bool) map[string]string {
	if yamlnode.IsNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errf(n, field, "want a mapping of header names to values, got %s", yamlnode.Describe(n))
		return nil
	}
	h := map[string]string{}
	p.mapping(n, field, func(key string, k, v *yaml.Node) {
		f := field + "." + key
		if !validHeader(key) {
			p.errf(k, f, "not a valid header name")
			return
		}
		if env {
			h[key] = p.envName(v, f)
		} else if s, ok := p.str(v, f); ok {
			if strings.ContainsAny(s, "\r\n") {
				p.errf(v, f, "a header value must not contain line breaks")
			}
			h[key] = s
		}
	})
	return h
}

func validHeader(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (p *parser) exec(n *yaml.Node, field string) *Exec {
	if n.Kind != yaml.MappingNode {
		p.errf(n, field, "want a mapping such as {command: restart-service, args: [...]}, got %s", yamlnode.Describe(n))
		return nil
	}
	e := &Exec{Timeout: DefaultExecTimeout}
	var cmd *yaml.Node
	p.mapping(n, field, func(key string, k, v *yaml.Node) {
		f := field + "." + key
		switch key {
		case "command":
			cmd = v
			if s, ok := p.str(v, f); ok {
				e.Command = s
				if s == "" || s == "." || s == ".." || strings.ContainsAny(s, `/\`+"\x00") {
					p.errf(v, f, "want the bare name of a program in the actions directory, got %q", s)
					cmd = nil
				}
			} else {
				cmd = nil
			}
		case "args":
			e.Args, e.args = p.args(v, f)
		case "timeout":
			e.Timeout, _ = p.duration(v, f, true)
		default:
			p.errf(k, f, "unknown key (want command, args or timeout)")
		}
	})
	if yamlnode.Lookup(n, "command") == nil {
		p.errf(n, field+".command", "required")
	}
	if cmd != nil && p.opts.ResolveExec {
		path, err := resolve(p.opts.ActionsDir, e.Command)
		if err != nil {
			p.errf(cmd, field+".command", "%v", err)
		}
		e.Path = path
	}
	return e
}

// resolve returns the executable regular file name in dir.
func resolve(dir, name string) (string, error) {
	if dir == "" {
		return "", errors.New("exec actions need --actions-dir, the directory of the programs they may run")
	}
	path := filepath.Join(dir, name)
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not in the actions directory %s: %w", name, dir, err)
	case !st.Mode().IsRegular():
		return "", fmt.Errorf("%s is not a regular file", path)
	case st.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("%s is not executable", path)
	}
	return path, nil
}

func (p *parser) args(n *yaml.Node, field string) ([]string, []*template.Template) {
	if yamlnode.IsNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errf(n, field, "want a list of arguments, got %s", yamlnode.Describe(n))
		return nil, nil
	}
	srcs := make([]string, 0, len(n.Content))
	ts := make([]*template.Template, 0, len(n.Content))
	sample := &alert.Event{Labels: map[string]string{}}
	for i, a := range n.Content {
		a = yamlnode.Deref(a)
		f := field + "[" + strconv.Itoa(i) + "]"
		s, ok := p.str(a, f)
		if !ok {
			continue
		}
		name := "args[" + strconv.Itoa(i) + "]"
		t, err := template.New(name).Option("missingkey=error").Parse(s)
		if err == nil {
			err = checkTemplate(t)
		}
		if err == nil {
			// Labels are known only at run time: the sample run checks the
			// fields with any label rendering empty.
			var c *template.Template
			if c, err = t.Clone(); err == nil {
				var w limitWriter
				err = c.Option("missingkey=zero").Execute(&w, sample)
			}
		}
		if err != nil {
			p.errf(a, f, "%v", err)
			continue
		}
		srcs, ts = append(srcs, s), append(ts, t)
	}
	return srcs, ts
}
