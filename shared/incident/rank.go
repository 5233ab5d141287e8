package incident

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

type candidate struct {
	key        string
	labels     map[string]string
	service    string
	onset      int64
	alerts     int
	lead       int64 // before the earliest other candidate; math.MaxInt64: none other
	located    bool
	upstream   int
	downstream int
	shared     int
}

// rank returns the incident's candidate origins, most likely first. The
// onset rule comes first: a candidate whose anomaly began more than Lead
// before every other's is where the fault is. Without one, declared
// dependencies decide (a service others depend on before one that depends
// on others), then the earlier onset, then the candidate more alerts share
// labels with.
func (c *Correlator) rank(members []*member) []Origin {
	var cands []*candidate
	byKey := map[string]*candidate{}
	for _, m := range members { // in order of start: a candidate's first is its onset
		if m.candidate == "" {
			continue // no grouping label: no place to point at
		}
		cd, ok := byKey[m.candidate]
		if !ok {
			cd = &candidate{key: m.candidate, labels: m.group, service: m.group[c.cfg.ServiceLabel], onset: m.startsAt}
			if cd.service == "" {
				cd.service = m.labels[c.cfg.ServiceLabel]
			}
			byKey[m.candidate] = cd
			cands = append(cands, cd)
		}
		cd.alerts++
	}
	for _, cd := range cands {
		c.weigh(cd, cands, members)
	}
	slices.SortStableFunc(cands, func(a, b *candidate) int {
		return cmp.Or(
			-cmp.Compare(b2i(a.located), b2i(b.located)),
			-cmp.Compare(a.upstream-a.downstream, b.upstream-b.downstream),
			cmp.Compare(a.onset, b.onset),
			-cmp.Compare(a.shared, b.shared),
			strings.Compare(a.key, b.key))
	})
	origins := make([]Origin, 0, min(len(cands), maxListedOrigins))
	for i, cd := range cands[:min(len(cands), maxListedOrigins)] {
		o := Origin{Rank: i + 1, Labels: maps.Clone(cd.labels), Onset: time.Unix(0, cd.onset).UTC(), Located: cd.located,
			Upstream: cd.upstream, Downstream: cd.downstream, SharedWith: cd.shared, Alerts: cd.alerts}
		if cd.lead > 0 && cd.lead != math.MaxInt64 {
			o.LeadSeconds = time.Duration(cd.lead).Seconds()
		}
		o.Evidence = c.evidence(cd, cands, len(members))
		origins = append(origins, o)
	}
	return origins
}

// weigh sets a candidate's lead, located, dependency counts and shared
// count against the others.
func (c *Correlator) weigh(cd *candidate, cands []*candidate, members []*member) {
	// The lead is over the other services' onsets when there are some: the
	// hosts of one faulty service start together, and together lead.
	otherService := slices.ContainsFunc(cands, func(o *candidate) bool { return o.service != cd.service })
	cd.lead = math.MaxInt64
	for _, o := range cands {
		if o == cd || (otherService && o.service == cd.service) {
			continue
		}
		cd.lead = min(cd.lead, o.onset-cd.onset)
		if c.related(cd.service, o.service) && c.inScope(cd.labels, o.labels) {
			if c.dependsOn[o.service][cd.service] {
				cd.upstream++
			} else {
				cd.downstream++
			}
		}
	}
	cd.located = cd.lead > int64(c.cfg.Lead)
	for _, m := range members {
		if m.candidate == cd.key {
			continue
		}
		for l, v := range cd.labels {
			if m.group[l] == v {
				cd.shared++
				break
			}
		}
	}
}

// evidence says, a line per reason, why the candidate ranks where it does.
func (c *Correlator) evidence(cd *candidate, cands []*candidate, members int) []string {
	var ev []string
	switch {
	case cd.lead == math.MaxInt64:
		ev = append(ev, "the only place alerting: fault located")
	case cd.located:
		ev = append(ev, fmt.Sprintf("its anomaly began %s before any other's (> T = %s): fault located", time.Duration(cd.lead), c.cfg.Lead))
	case cd.lead >= 0:
		ev = append(ev, fmt.Sprintf("its anomaly began %s before the next (not > T = %s): not located by onset", time.Duration(cd.lead), c.cfg.Lead))
	default:
		ev = append(ev, fmt.Sprintf("its anomaly began %s after the earliest", time.Duration(-cd.lead)))
	}
	if cd.upstream > 0 {
		ev = append(ev, fmt.Sprintf("%d alerting %s depend on %s (declared)", cd.upstream, plural(cd.upstream, "place", "places"), cd.service))
	}
	if cd.downstream > 0 {
		ev = append(ev, fmt.Sprintf("%s depends on %d other alerting %s (declared)", cd.service, cd.downstream, plural(cd.downstream, "place", "places")))
	}
	if others := members - cd.alerts; others > 0 {
		ev = append(ev, fmt.Sprintf("shares labels with %d of the %d other alerts", cd.shared, others))
	}
	return ev
}

// summarize says in a line what the incident is and where it likely began.
func summarize(e Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.AlertCount, plural(e.AlertCount, "alert", "alerts"))
	if e.Firing > 0 && e.Firing < e.AlertCount {
		fmt.Fprintf(&b, " (%d firing)", e.Firing)
	}
	if len(e.Labels) > 0 {
		fmt.Fprintf(&b, " on %s", FormatLabels(e.Labels))
	}
	if len(e.Origins) > 0 {
		o := e.Origins[0]
		fmt.Fprintf(&b, "; likely origin %s", FormatLabels(o.Labels))
		if o.Located {
			b.WriteString(" (located")
			if o.LeadSeconds > 0 {
				fmt.Fprintf(&b, ", %s ahead", time.Duration(o.LeadSeconds*float64(time.Second)).Round(time.Second))
			}
			b.WriteString(")")
		}
	}
	return b.String()
}

// FormatLabels writes labels as k=v,k=v sorted by key.
func FormatLabels(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ",")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
