package rules

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseDependencies(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       map[string][]string
		err        string
	}{
		{name: "lists and a single service",
			yaml: "dependencies:\n  api: [db, cache]\n  web: api\n",
			want: map[string][]string{"api": {"db", "cache"}, "web": {"api"}}},
		{name: "none", yaml: "dependencies:\n", want: nil},
		{name: "cycle", yaml: "dependencies:\n  a: [b]\n  b: [c]\n  c: [a]\n",
			err: "rules.yaml:2: dependencies: cycle a → b → c → a"},
		{name: "itself", yaml: "dependencies:\n  a: [a]\n", err: "rules.yaml:2: dependencies.a: a service cannot depend on itself"},
		{name: "twice", yaml: "dependencies:\n  a: [b, b]\n", err: `rules.yaml:2: dependencies.a: "b" listed twice`},
		{name: "not a mapping", yaml: "dependencies: [a]\n", err: "rules.yaml:1: dependencies: want a mapping of each service to the services it depends on, got a list"},
		{name: "a mapping as target", yaml: "dependencies:\n  a: {b: c}\n", err: "rules.yaml:2: dependencies.a: want a service or a list of services, got a mapping"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set, err := Parse("rules.yaml", []byte(c.yaml))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(set.Dependencies, c.want) {
				t.Errorf("dependencies %v, want %v", set.Dependencies, c.want)
			}
		})
	}
}
