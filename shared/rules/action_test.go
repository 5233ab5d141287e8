package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/alert"
)

// actionsDir returns an allow-list directory holding the executable
// restart-deployment and the non-executable notes.txt.
func actionsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "restart-deployment"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestParseActionErrors(t *testing.T) {
	opts := Options{ActionsDir: actionsDir(t), ResolveExec: true}
	f := func(actions, want string) {
		t.Helper()
		src := base + "    actions:\n" + actions
		set, err := ParseWith("rules.yaml", []byte(src), opts)
		if err == nil {
			t.Errorf("ParseWith(%q) = %d rules, want error containing %q", src, len(set.Rules), want)
			return
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseWith(%q) error:\n%v\nwant it to contain %q", src, err, want)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("error %T is not an *Error", err)
		}
	}
	const at = "rules.yaml:5: rules[0] (cpu_high): actions[0]"
	const at6 = "rules.yaml:6: rules[0] (cpu_high): actions[0]"
	f("      - on: pending\n        webhook: {url: http://x}\n", at+`.on: want firing or resolved, got "pending"`)
	f("      - cooldown: 1m\n", at+": want one of webhook or exec")
	f("      - webhook: {url: http://x}\n        exec: {command: restart-deployment}\n", `rules.yaml:6: rules[0] (cpu_high): actions[0].exec: want one of webhook or exec, got both`)
	f("      - webhook: {url: ftp://x}\n", at+`.webhook.url: want an http:// or https:// URL with a host, got "ftp://x"`)
	f("      - webhook: {url: \"https://u:p@x\"}\n", at+`.webhook.url: credentials in the URL`)
	f("      - webhook: {timeout: 5s}\n", at+".webhook.url: required")
	f("      - webhook: {url: http://x, retries: 11}\n", at+".webhook.retries: want a whole number from 0 to 10, got 11")
	f("      - webhook: {url: http://x, secret_env: A, secret_file: /s}\n", at+".webhook: want one of secret_env or secret_file, got both")
	f("      - webhook: {url: http://x, secret_file: s}\n", at+`.webhook.secret_file: want an absolute path, got "s"`)
	f("      - webhook: {url: http://x, headers_env: {Authorization: \"A=B\"}}\n", at+`.webhook.headers_env.Authorization: want an environment variable name, got "A=B"`)
	f("      - webhook: {url: http://x, headers: {\"X Team\": ops}}\n", at+".webhook.headers.X Team: not a valid header name")
	f("      - webhook: {url: http://x, secret: abc}\n", at+".webhook.secret: unknown key")
	f("      - webhook: {url: http://x}\n        rate_limit: 6/day\n", at6+`.rate_limit: want runs per period such as 6/h, 100/m or 3/10m, got "6/day"`)
	f("      - webhook: {url: http://x}\n        rate_limit: 0/h\n", at6+`.rate_limit: want runs per period`)
	f("      - webhook: {url: http://x}\n        cooldown: -1m\n", at6+".cooldown: must not be negative")
	f("      - webhook: {url: http://x}\n        dry_run: yes\n", at6+".dry_run: want true or false")
	f("      - exec: {args: [a]}\n", at+".exec.command: required")
	f("      - exec: {command: /bin/sh}\n", at+`.exec.command: want the bare name of a program in the actions directory, got "/bin/sh"`)
	f("      - exec: {command: ../restart-deployment}\n", at+`.exec.command: want the bare name`)
	f("      - exec: {command: kubectl}\n", at+`.exec.command: "kubectl" is not in the actions directory`)
	f("      - exec: {command: notes.txt}\n", at+`.exec.command: `+filepath.Join(opts.ActionsDir, "notes.txt")+" is not executable")
	f("      - exec: {command: restart-deployment, args: [\"{{ .Lables.x }}\"]}\n", at+`.exec.args[0]: template: args[0]:1:10: executing "args[0]" at <.Lables.x>: can't evaluate field Lables`)
	f("      - exec: {command: restart-deployment, args: [\"{{ template \\\"x\\\" }}\"]}\n", at+`.exec.args[0]: args[0]:1:12: {{ template }} is not supported`)
	f("      - exec: {command: restart-deployment, timeout: 0s}\n", at+".exec.timeout: must be positive")
	f("      5\n", `rules.yaml:5: rules[0] (cpu_high): actions: want a list of actions, got 5`)

	// Without ResolveExec (rule tests, backtests) only the form is checked;
	// with it but no directory, exec actions are refused.
	src := base + "    actions:\n      - exec: {command: kubectl}\n"
	if _, err := Parse("rules.yaml", []byte(src)); err != nil {
		t.Errorf("Parse without ResolveExec: %v", err)
	}
	_, err := ParseWith("rules.yaml", []byte(src), Options{ResolveExec: true})
	if err == nil || !strings.Contains(err.Error(), "rules.yaml:5: rules[0] (cpu_high): actions[0].exec.command: exec actions need --actions-dir") {
		t.Errorf("ParseWith without a directory: %v", err)
	}
}

func TestParseActions(t *testing.T) {
	dir := actionsDir(t)
	src := base + `    actions:
      - on: firing
        webhook: {url: "https://hooks.example.com/x", timeout: 2s, retries: 1, secret_env: HOOK_SECRET, headers: {X-Team: ops}, headers_env: {Authorization: HOOK_TOKEN}}
        cooldown: 10m
        rate_limit: 6/h
        dry_run: true
      - on: resolved
        exec: {command: restart-deployment, args: ["{{ .Labels.service }}", "--namespace", "{{ .Labels.namespace }}"], timeout: 1m}
        rate_limit: 3/10m
`
	set, err := ParseWith("rules.yaml", []byte(src), Options{ActionsDir: dir, ResolveExec: true})
	if err != nil {
		t.Fatal(err)
	}
	acts := set.Rules[0].Actions
	if len(acts) != 2 {
		t.Fatalf("got %d actions, want 2", len(acts))
	}
	w := acts[0]
	if w.On != alert.Firing || w.Kind() != "webhook" || w.Webhook.URL != "https://hooks.example.com/x" || w.Webhook.Timeout != 2*time.Second ||
		w.Webhook.Retries != 1 || w.Webhook.SecretEnv != "HOOK_SECRET" || w.Webhook.Headers["X-Team"] != "ops" ||
		w.Webhook.HeadersEnv["Authorization"] != "HOOK_TOKEN" || w.Cooldown != 10*time.Minute ||
		w.RateLimit != (Rate{N: 6, Per: time.Hour}) || !w.DryRun || w.Line != 5 {
		t.Errorf("webhook action = %+v %+v", w, w.Webhook)
	}
	e := acts[1]
	if e.On != alert.Resolved || e.Kind() != "exec" || e.Exec.Path != filepath.Join(dir, "restart-deployment") ||
		e.Exec.Timeout != time.Minute || e.RateLimit != (Rate{N: 3, Per: 10 * time.Minute}) || e.DryRun {
		t.Errorf("exec action = %+v %+v", e, e.Exec)
	}
	args, err := e.Exec.RenderArgs(&alert.Event{Labels: map[string]string{"service": "api", "namespace": "prod"}})
	if err != nil || strings.Join(args, " ") != "api --namespace prod" {
		t.Errorf("RenderArgs = %q, %v", args, err)
	}
	if _, err := e.Exec.RenderArgs(&alert.Event{Labels: map[string]string{"service": "api"}}); err == nil {
		t.Errorf("RenderArgs without the namespace label: no error")
	}
	// Defaults.
	set, err = Parse("rules.yaml", []byte(base+"    actions:\n      - webhook: {url: http://x}\n      - exec: {command: c}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := set.Rules[0].Actions
	if d[0].On != alert.Firing || d[0].Webhook.Timeout != DefaultWebhookTimeout || d[0].Webhook.Retries != DefaultWebhookRetries ||
		d[1].Exec.Timeout != DefaultExecTimeout || d[1].Exec.Path != "" {
		t.Errorf("defaults: %+v %+v %+v", d[0], d[0].Webhook, d[1].Exec)
	}
}

// Editing a rule's actions keeps its hash, and so its alerts' state across
// a reload.
func TestActionsOutsideHash(t *testing.T) {
	a, err1 := Parse("a.yaml", []byte(base))
	b, err2 := Parse("b.yaml", []byte(base+"    actions:\n      - webhook: {url: http://x}\n"))
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if a.Rules[0].Hash != b.Rules[0].Hash {
		t.Errorf("actions changed the rule's hash")
	}
}
