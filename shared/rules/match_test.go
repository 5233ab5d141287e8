package rules

import (
	"path"
	"strings"
	"testing"

	"github.com/metricpipe/metricpipe/shared/point"
)

func mustParse(t testing.TB, yaml string) *Set {
	t.Helper()
	set, err := Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// tags builds sorted tags from "k=v" pairs given in key order.
func tags(kv ...string) []point.Tag {
	var ts []point.Tag
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		ts = append(ts, point.Tag{Key: k, Value: v})
	}
	return ts
}

func TestMatches(t *testing.T) {
	f := func(match, measurement, field string, ts []point.Tag, want bool) {
		t.Helper()
		r := mustParse(t, "rules:\n  - name: r\n    threshold: {above: 1}\n"+match).Rules[0]
		if got := r.Matches(measurement, field, ts); got != want {
			t.Errorf("%q matches %s %s %v = %v, want %v", match, measurement, field, ts, got, want)
		}
	}
	f("", "cpu", "usage", nil, true) // no match section
	f("    match:\n", "cpu", "usage", tags("host=a"), true)
	f("    match: {measurement: cpu}\n", "cpu", "usage", nil, true)
	f("    match: {measurement: cpu}\n", "cpu2", "usage", nil, false)
	f("    match: {measurement: \"c?u\"}\n", "cpu", "x", nil, true)
	f("    match: {measurement: \"[a-c]pu\"}\n", "dpu", "x", nil, false)
	f("    match: {measurement: \"[^a-c]pu\"}\n", "dpu", "x", nil, true)
	f("    match: {field: \"usage_*\"}\n", "cpu", "usage_user", nil, true)
	f("    match: {field: \"usage_*\"}\n", "cpu", "usage", nil, false)
	f("    match: {field: \"*_user\"}\n", "cpu", "usage_user", nil, true)
	f("    match: {field: \"\\\\*\"}\n", "cpu", "*", nil, true)
	f("    match: {field: \"\\\\*\"}\n", "cpu", "x", nil, false)
	f("    match: {tags: {host: \"web-*\"}}\n", "cpu", "u", tags("dc=eu", "host=web-1", "zone=a"), true)
	f("    match: {tags: {host: \"web-*\"}}\n", "cpu", "u", tags("dc=eu", "host=db-1"), false)
	f("    match: {tags: {host: \"*\"}}\n", "cpu", "u", tags("dc=eu"), false) // missing tag
	f("    match: {tags: {host: \"*\"}}\n", "cpu", "u", nil, false)
	f("    match: {tags: {host: a, dc: eu}}\n", "cpu", "u", tags("dc=eu", "host=a"), true)
	f("    match: {tags: {host: a, dc: eu}}\n", "cpu", "u", tags("dc=us", "host=a"), false)
	f("    match: {tags: {host: a, zone: b}}\n", "cpu", "u", tags("dc=eu", "host=a"), false)
	// '*' and '?' match '/', unlike path.Match: tag values are often paths.
	f("    match: {tags: {path: \"*\"}}\n", "disk", "used", tags("path=/var/lib"), true)
	f("    match: {tags: {path: \"/var/*\"}}\n", "disk", "used", tags("path=/var/lib/docker"), true)
	f("    match: {tags: {path: \"/?\"}}\n", "disk", "used", tags("path=//"), true)
	f("    match: {measurement: cpu, field: usage, tags: {host: a}}\n", "cpu", "idle", tags("host=a"), false)
}

func TestMatching(t *testing.T) {
	set := mustParse(t, `rules:
  - {name: a, threshold: {above: 1}, match: {measurement: cpu}}
  - {name: b, threshold: {above: 1}, match: {measurement: mem}}
  - {name: c, absence: {for: 1m}}
`)
	dst := make([]*Rule, 0, 4)
	got := set.Matching("cpu", "usage", nil, dst)
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "c" {
		t.Errorf("Matching(cpu) = %v", got)
	}
	if allocs := testing.AllocsPerRun(100, func() { dst = set.Matching("cpu", "usage", nil, dst[:0]) }); allocs != 0 {
		t.Errorf("Matching allocates %v times", allocs)
	}
}

func TestMatchesAllocs(t *testing.T) {
	r := mustParse(t, `rules:
  - name: r
    threshold: {above: 1}
    match: {measurement: "c[a-z]u", field: "usage_*", tags: {host: "web-*", dc: "e?"}}
`).Rules[0]
	ts := tags("dc=eu", "host=web-12", "zone=a")
	if !r.Matches("cpu", "usage_user", ts) {
		t.Fatal("no match")
	}
	if allocs := testing.AllocsPerRun(100, func() { r.Matches("cpu", "usage_user", ts) }); allocs != 0 {
		t.Errorf("Matches allocates %v times", allocs)
	}
}

// FuzzGlob checks that glob agrees with path.Match wherever '/' plays no
// part, and that it never panics.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{{"*", "abc"}, {"a*c", "abc"}, {"[a-c]?", "bz"}, {"[^x]*\\*", "y*"}, {"*x*y", "axxy"}, {"a[", "a"}, {"[]", "x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := glob(pattern).match(name)
		if strings.Contains(pattern+name, "/") || pattern == "" {
			return
		}
		want, err := path.Match(pattern, name)
		if err == nil && got != want {
			t.Errorf("glob(%q).match(%q) = %v, path.Match says %v", pattern, name, got, want)
		}
		if err != nil && got {
			t.Errorf("malformed %q matches %q", pattern, name)
		}
	})
}
