package incident

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config says which alerts form one incident and how its origin is found.
type Config struct {
	// Window: an alert joins an incident when it starts within Window of
	// the incident's alerts' starts (--incident-window).
	Window time.Duration
	// Lateness is how long after an incident last changed (in the publish
	// time of alert events) an alert may still join it: alert events
	// arrive from several partitions, each in order, the partitions not in
	// step with each other (--incident-lateness).
	Lateness time.Duration
	// GroupBy are the labels an alert must share a value of with one of an
	// incident's alerts to join it (--incident-group-by).
	GroupBy []string
	// Lead is T of the onset rule: a candidate whose anomaly began more than
	// Lead before every other's is the located fault (--incident-lead).
	Lead time.Duration
	// ServiceLabel is the label whose values the declared dependencies
	// name.
	ServiceLabel string
	// Scope are the labels the alerts of one incident never disagree on:
	// with "cluster", a service's hosts in two clusters are two places, and
	// a dependency holds within a cluster (--incident-scope).
	Scope []string
	// Dependencies maps each service to the services it depends on
	// (rules.Set.Dependencies); acyclic.
	Dependencies map[string][]string
}

// DefaultGroupBy are the grouping labels of --incident-group-by.
var DefaultGroupBy = []string{"host", "service", "cluster"}

// Validate reports every invalid setting, each naming its flag.
func (c Config) Validate() error {
	var errs []error
	if c.Window <= 0 {
		errs = append(errs, fmt.Errorf("--incident-window %s: want > 0", c.Window))
	}
	if c.Lateness < 0 {
		errs = append(errs, fmt.Errorf("--incident-lateness %s: want ≥ 0", c.Lateness))
	}
	if c.Lead < 0 {
		errs = append(errs, fmt.Errorf("--incident-lead %s: want ≥ 0", c.Lead))
	}
	if len(c.GroupBy) == 0 {
		errs = append(errs, errors.New("--incident-group-by is empty: want at least one label"))
	}
	for _, l := range append(slices.Clip(c.GroupBy), c.Scope...) {
		if strings.TrimSpace(l) == "" {
			errs = append(errs, errors.New("--incident-group-by, --incident-scope: empty label name"))
			break
		}
	}
	if c.ServiceLabel == "" {
		errs = append(errs, errors.New("incident service label is empty"))
	}
	return errors.Join(errs...)
}

// closure returns, for each service, every service it depends on directly
// or through others.
func closure(deps map[string][]string) map[string]map[string]bool {
	out := make(map[string]map[string]bool, len(deps))
	var walk func(root, s string)
	walk = func(root, s string) {
		for _, d := range deps[s] {
			if !out[root][d] {
				out[root][d] = true
				walk(root, d)
			}
		}
	}
	for s := range deps {
		out[s] = map[string]bool{}
		walk(s, s)
	}
	return out
}
