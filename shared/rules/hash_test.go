package rules

import (
	"strings"
	"testing"
)

func TestHashIgnoresFormatting(t *testing.T) {
	same := []string{
		`rules:
  - name: cpu_high
    match: {measurement: cpu, tags: {host: "web-*", dc: eu}}
    threshold: {of: value, above: 90}
    for: 1m
    severity: warning
    labels: {team: infra, tier: web}
`,
		`# the same rule, written differently
rules:
- labels:
    tier: web
    team: infra
  for: 60s
  threshold:
    above: 90.0
  name: "cpu_high"
  match:
    field: "*"
    tags:
      dc: eu
      host: web-*
    measurement: 'cpu'
  hysteresis: 0
  keep_firing_for: 0s
  description: ""
`,
	}
	var first uint64
	for i, y := range same {
		h := mustParse(t, y).Rules[0].Hash
		if i == 0 {
			first = h
		} else if h != first {
			t.Errorf("version %d: hash %x, want %x", i, h, first)
		}
	}
}

func TestHashSeesEveryField(t *testing.T) {
	const base = `rules:
  - name: r
    match: {measurement: cpu, field: usage, tags: {host: a}}
    threshold: {of: value, above: 90}
    for: 1m
    keep_firing_for: 5m
    hysteresis: 1
    severity: warning
    labels: {team: infra}
    summary: s
    description: d
`
	changes := [][2]string{
		{"name: r", "name: r2"},
		{"measurement: cpu", "measurement: mem"},
		{"field: usage", "field: idle"},
		{"tags: {host: a}", "tags: {host: b}"},
		{"tags: {host: a}", "tags: {hostname: a}"},
		{"tags: {host: a}", "tags: {host: a, dc: eu}"},
		{"of: value", "of: sma"},
		{"above: 90", "above: 91"},
		{"above: 90", "below: 90"},
		{"above: 90", "outside: [80, 90]"},
		{"threshold: {of: value, above: 90}\n    for: 1m\n    keep_firing_for: 5m\n    hysteresis: 1", "anomaly: {score: 0.99}\n    for: 1m\n    keep_firing_for: 5m\n    hysteresis: 0.5"},
		{"threshold: {of: value, above: 90}", "anomaly: {z: 3}"},
		{"threshold: {of: value, above: 90}", "predictive: {above: 90, within: 1h}"},
		{"threshold: {of: value, above: 90}\n    for: 1m\n    keep_firing_for: 5m\n    hysteresis: 1", "absence: {for: 1m}\n    for: 1m\n    keep_firing_for: 5m"},
		{"for: 1m", "for: 2m"},
		{"keep_firing_for: 5m", "keep_firing_for: 6m"},
		{"hysteresis: 1", "hysteresis: 2"},
		{"severity: warning", "severity: info"},
		{"team: infra", "team: web"},
		{"team: infra", "owner: infra"},
		{"summary: s", "summary: s2"},
		{"description: d", "description: d2"},
	}
	seen := map[uint64]string{mustParse(t, base).Rules[0].Hash: "base"}
	for _, c := range changes {
		y := strings.Replace(base, c[0], c[1], 1)
		h := mustParse(t, y).Rules[0].Hash
		if prev, dup := seen[h]; dup {
			t.Errorf("%q → %q: same hash as %s", c[0], c[1], prev)
		}
		seen[h] = c[1]
	}
	// Predictive and absence parameters.
	for _, pair := range [][2]string{
		{"predictive: {above: 1, within: 1h}", "predictive: {above: 1, within: 2h}"},
		{"predictive: {above: 1, within: 1h}", "predictive: {below: 1, within: 1h}"},
		{"absence: {for: 1m}", "absence: {for: 2m}"},
		{"anomaly: {z: 3}", "anomaly: {z: 4}"},
	} {
		a := mustParse(t, "rules:\n  - name: r\n    "+pair[0]+"\n    summary: s\n").Rules[0].Hash
		b := mustParse(t, "rules:\n  - name: r\n    "+pair[1]+"\n    summary: s\n").Rules[0].Hash
		if a == b {
			t.Errorf("%s and %s: same hash", pair[0], pair[1])
		}
	}
}
