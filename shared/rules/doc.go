// Package rules is the analyzer's alert rules: a YAML file, validated with
// file:line:field errors, matched against series, evaluated per point, and
// reloaded on SIGHUP and on change ([Watcher]).
//
// The analyzer forecasts every series (a measurement, its tags and one
// numeric field), scores each point's surprise, and for each rule that
// [Rule.Matches] the series asks [Rule.Eval] whether the rule's condition
// holds for the point (or [Rule.Absent], between points, for absence
// rules). What happens next, pending, firing and resolving, is the alert
// lifecycle of package shared/alert; this package only answers "does this
// rule apply?" and "is its condition true now?".
//
// # Rule file
//
// A commented example is testdata/example.yaml. The file holds one mapping
// with the key rules, a list of rules (and optionally dependencies, see
// Dependencies):
//
//	rules:
//	  - name: cpu_high             # required, unique, letters, digits, _ . -
//	    match:                     # optional; every pattern defaults to "*"
//	      measurement: cpu
//	      field: "usage_*"
//	      tags: {host: "web-*"}    # each tag must be present and match
//	    threshold: {of: value, above: 90}
//	    for: 1m
//	    keep_firing_for: 5m
//	    hysteresis: 5
//	    severity: critical
//	    labels: {team: infra}
//	    summary: 'CPU {{ .Value | printf "%.1f" }} > {{ .Threshold }} on {{ .Labels.host }}'
//	    description: "..."
//
// The keys of a rule:
//
//   - name: required; unique in the file; made of A-Z a-z 0-9 _ . and -.
//   - match: which series the rule applies to: measurement, field (the
//     field's key) and tags (tag key → pattern; every listed tag must be on
//     the series with a matching value, other tags are ignored). Patterns
//     have the syntax of path.Match (*, ?, [a-z], [^a-z], \ to escape) but
//     '*' and '?' also match '/', since tag values are often paths.
//     Missing patterns, and a missing match, match everything.
//   - threshold, anomaly, predictive or absence: the rule's condition,
//     exactly one of the four (see Conditions below).
//   - for: how long the condition must hold, in event time, before the alert
//     fires; default 0.
//   - keep_firing_for: how long the alert keeps firing after the condition
//     cleared; default 0.
//   - hysteresis: a number ≥ 0, default 0: once active, a threshold or
//     predictive condition stays active until the value is back past its
//     bound by this margin (above 90 with hysteresis 5 clears at 85 or
//     less); an anomaly condition until the score or |z| falls below
//     bound − hysteresis. It must leave the condition a way to clear (less
//     than half an outside band, less than an anomaly bound) and is not
//     allowed on absence rules.
//   - severity: critical, warning (the default) or info.
//   - labels: extra labels for the rule's alerts (name → value).
//   - summary, description: text/template sources for the alert's texts,
//     executed by [Rule.Render] with .Value (what the condition looked at:
//     for anomaly rules the score), .Threshold, .HasThreshold, .Observed
//     and .HasObserved (the point's own value), .Expected and .HasExpected
//     (its forecast), .State ("firing" or "resolved"), .Labels, .Rule and
//     .Severity. Summary defaults to a sentence for the rule's kind
//     ("cpu_high: value 93.5 above 90", prefixed "resolved: " when it
//     resolves), description to "".
//     Templates may not use {{ define }}, {{ block }} or {{ template }}, may
//     {{ range }} only over a field (.Labels), and render at most 16 KiB:
//     an alert's text must not be able to stall the analyzer.
//   - actions: recovery actions run when the rule's alerts fire or resolve
//     (see Actions below). They are not part of [Rule.Hash]: editing them
//     keeps the alerts' state across a reload.
//
// Durations are Go durations ("90s", "5m", "1h30m"); days ("1d") are not
// accepted: write "24h". Numbers are YAML numbers; a quoted "90" is a
// string and rejected. An empty file, or an empty rules list, is a valid
// file without rules. Aliases are followed; merge keys (<<) are rejected.
//
// # Conditions
//
//   - threshold: {of: S, above: X}, {of: S, below: X} or {of: S, outside:
//     [lo, hi]}. S, the source, is value (the default), sma, ema or
//     forecast (the one-step forecast made for the point). Above and below
//     are strict; outside is true below lo or above hi, lo < hi.
//   - anomaly: {score: s}, true when the anomaly score (in [0,1]) is at
//     least s (0 < s ≤ 1); or {z: k}, true when the absolute residual
//     z-score is at least k (k > 0). Never true while the series' model
//     warms up.
//   - predictive: {above: X, within: D} or {below: X, within: D}: the
//     multi-step forecast crosses X within D of the point, D > 0 (see
//     [Rule.Eval] for how the horizon is probed).
//   - absence: {for: D}: no point of the series for D > 0 (deadman;
//     evaluated by [Rule.Absent]).
//
// # Actions
//
// Each entry of a rule's actions list is a webhook or an exec action:
//
//	actions:
//	  - on: firing               # or resolved; default firing
//	    webhook: {url: https://hooks.example.com/x, timeout: 5s, retries: 3,
//	              secret_env: HOOK_SECRET, headers: {X-Team: ops},
//	              headers_env: {Authorization: HOOK_TOKEN}}
//	    cooldown: 10m            # per alert: no second run within it
//	    rate_limit: 6/h          # runs of this action over all the rule's alerts
//	    dry_run: false           # true: log and audit, run nothing
//	  - exec: {command: restart-deployment, args: ["{{ .Labels.service }}"], timeout: 30s}
//
// A webhook's url must be http or https without credentials; its secrets
// come from the environment (secret_env, headers_env) or an absolute
// secret_file, read at each run, never from the rule file. retries (0 to
// 10, default 3) follow 5xx and network errors, never 4xx. An exec
// command is the bare name of a program in the analyzer's --actions-dir
// ([Options]): no path, no shell. Its args are text/template sources over
// the alert event (.Labels.service, .Rule, .Fingerprint, .State, .Value,
// .Series, .Severity, .Summary); a label the event lacks fails the run
// rather than pass "<no value>". Package shared/action runs them.
//
// # Dependencies
//
// Beside rules, the file may declare which services depend on which, by
// the value of the service label; the analyzer's incidents (package
// shared/incident) link alerts of dependent services and rank a service
// others depend on as the likelier origin. A cycle is an error.
//
//	dependencies:
//	  api: [db, cache]
//	  web: [api]
//
// # Validation
//
// [Parse] and [Load] report every problem of a file at once, each an
// [*Error] formatted "file:line: rules[i] (name): field: problem":
//
//	rules.yaml:12: rules[1] (cpu_high): threshold.above: want a number, got "ninety"
//
// Unknown keys are errors (a misspelt "threshhold" must not silently leave
// a rule without its condition), as are duplicate keys and names, a rule
// with no condition or several, malformed patterns, templates that do not
// parse, use the features above or fail on sample data (a misspelt
// {{ .Valeu }}), malformed
// or negative durations and out-of-range numbers.
package rules
