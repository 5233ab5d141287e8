package rules

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that Parse never panics, that its failures are *Error
// values, and that what it accepts is a consistent set that parses the same
// way again.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(example), base, "", "rules: []", "rules:\n  - {name: a, absence: {for: 1m}}\n",
		"rules:\n  - name: a\n    threshold: {outside: [1, 2]}\n    hysteresis: 0.4\n",
		"x: &a {above: 1}\nrules:\n  - {name: a, threshold: *a}\n",
		"rules:\n  - name: a\n    predictive: {below: 1, within: 1h}\n    match: {tags: {h: \"[a-z]*\"}}\n",
		"rules:\n  - name: a\n    anomaly: {z: 3}\n    summary: '{{ .Value }}'\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Parse("f.yaml", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			return
		}
		names := map[string]bool{}
		for _, r := range set.Rules {
			if names[r.Name] || !validName(r.Name) || r.Kind < Threshold || r.Kind > Absence || r.summary == nil {
				t.Fatalf("inconsistent rule %+v", r)
			}
			names[r.Name] = true
			r.Matches("m", "f", nil)
			r.Eval(&Sample{Ahead: &line{0, 1}, Step: 1}, true)
			r.Render(Verdict{}, nil, "firing", nil)
		}
		again, err := Parse("f.yaml", data)
		if err != nil || !sameRules(set, again) {
			t.Fatalf("second parse differs: %v", err)
		}
	})
}
