package incident

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/metricpipe/metricpipe/shared/alert"
)

// maxListedOrigins bounds the origins an event lists: past the first few,
// a ranking tells the reader nothing.
const maxListedOrigins = 10

// alertKey identifies one firing of an alert: what its firing and resolved
// events share.
type alertKey struct {
	fingerprint string
	startsAt    int64
}

type member struct {
	alertKey
	endsAt                 int64
	firing                 bool
	rule, series, severity string
	labels                 map[string]string
	group                  map[string]string // its GroupBy labels: its origin candidate
	candidate              string            // group as k=v,… sorted
}

type incident struct {
	id        string
	version   int
	members   []*member
	first     int64 // earliest start
	last      int64 // latest start
	firing    int
	resolved  int64          // latest end, once none fires
	values    map[string]int // "label\x00value" of members' GroupBy labels → members
	mergedTo  string
	updatedAt int64
	touched   int64 // publish time of the last alert event that changed it
}

// Correlator groups alert events into incidents. It is fed every alert
// event once, in any order across alerts (each alert's own events in
// order), with the time it was published; what it derives depends only on
// those. Not safe for concurrent use.
type Correlator struct {
	cfg       Config
	dependsOn map[string]map[string]bool
	live      []*incident // in order of creation
	byAlert   map[alertKey]*incident
	watermark int64 // the latest event time seen
	clock     int64 // the latest publish time seen
	// Unmatched counts resolved events of alerts it never saw fire (they
	// fired before it started, or before the replayed span).
	Unmatched int64
}

// NewCorrelator returns a correlator for cfg, which must be valid.
func NewCorrelator(cfg Config) *Correlator {
	return &Correlator{cfg: cfg, dependsOn: closure(cfg.Dependencies), byAlert: map[alertKey]*incident{}}
}

// SetDependencies replaces the declared dependencies (on a rule reload);
// incidents formed before keep their alerts.
func (c *Correlator) SetDependencies(deps map[string][]string) {
	c.cfg.Dependencies = deps
	c.dependsOn = closure(deps)
}

// Open returns how many incidents it holds open.
func (c *Correlator) Open() int {
	n := 0
	for _, inc := range c.live {
		if inc.firing > 0 {
			n++
		}
	}
	return n
}

// Observe feeds one alert event, published at the given time, and appends
// to out the events of the incidents it changed: the incident it joined or
// resolved and those it merged into it.
func (c *Correlator) Observe(e alert.Event, published time.Time, out []Event) []Event {
	t := e.EventTime.UnixNano()
	c.watermark = max(c.watermark, t)
	c.clock = max(c.clock, published.UnixNano())
	k := alertKey{e.Fingerprint, e.StartsAt.UnixNano()}
	var changed []*incident
	if inc, ok := c.byAlert[k]; ok {
		if c.update(inc, k, e) {
			inc.updatedAt = t
			changed = append(changed, inc)
		}
	} else if e.State == alert.Firing {
		changed = c.join(c.newMember(k, e), t)
	} else {
		c.Unmatched++
	}
	for _, inc := range changed {
		inc.touched = c.clock
		out = append(out, c.event(inc))
	}
	c.evict()
	return out
}

// update applies an event of an alert the incident has; it reports whether
// the incident changed.
func (c *Correlator) update(inc *incident, k alertKey, e alert.Event) bool {
	i := slices.IndexFunc(inc.members, func(m *member) bool { return m.alertKey == k })
	m := inc.members[i]
	if e.State != alert.Resolved || !m.firing {
		return false // a repeat
	}
	m.firing, m.endsAt = false, e.EndsAt.UnixNano()
	inc.firing--
	if inc.firing == 0 {
		inc.resolved = 0
		for _, m := range inc.members {
			inc.resolved = max(inc.resolved, m.endsAt)
		}
	}
	return true
}

func (c *Correlator) newMember(k alertKey, e alert.Event) *member {
	m := &member{alertKey: k, firing: true, rule: e.Rule, series: e.Series, severity: e.Severity,
		labels: e.Labels, group: map[string]string{}}
	var parts []string
	for _, l := range c.cfg.GroupBy {
		if v, ok := e.Labels[l]; ok && v != "" {
			m.group[l] = v
			parts = append(parts, l+"="+v)
		}
	}
	slices.Sort(parts)
	m.candidate = strings.Join(parts, ",")
	return m
}

// join adds a new firing alert to the incident it links to, merging the
// incidents it links together into the oldest, or starts one. It returns
// the incidents changed, the one joined first.
func (c *Correlator) join(m *member, t int64) []*incident {
	w := int64(c.cfg.Window)
	var linked []*incident
	for _, inc := range c.live {
		if m.startsAt >= inc.first-w && m.startsAt <= inc.last+w && c.links(inc, m) {
			linked = append(linked, inc)
		}
	}
	if len(linked) == 0 {
		inc := &incident{id: newID(m.alertKey), first: m.startsAt, last: m.startsAt, values: map[string]int{}}
		c.live = append(c.live, inc)
		linked = append(linked, inc)
	}
	slices.SortStableFunc(linked, func(a, b *incident) int { return cmp.Or(cmp.Compare(a.first, b.first), strings.Compare(a.id, b.id)) })
	into := linked[0]
	for _, from := range linked[1:] {
		for _, o := range from.members {
			c.add(into, o)
		}
		from.mergedTo, from.updatedAt = into.id, t
		c.live = slices.DeleteFunc(c.live, func(x *incident) bool { return x == from })
	}
	c.add(into, m)
	into.updatedAt = t
	return linked
}

func (c *Correlator) add(inc *incident, m *member) {
	inc.members = append(inc.members, m)
	inc.first, inc.last = min(inc.first, m.startsAt), max(inc.last, m.startsAt)
	for l, v := range m.group {
		inc.values[l+"\x00"+v]++
	}
	if m.firing {
		inc.firing++
		inc.resolved = 0
	}
	c.byAlert[m.alertKey] = inc
}

// links reports whether m shares a grouping label value with one of the
// incident's alerts, or is linked to one by a declared dependency, and
// agrees with that alert on the scope labels.
func (c *Correlator) links(inc *incident, m *member) bool {
	shares := false
	for l, v := range m.group {
		if inc.values[l+"\x00"+v] > 0 {
			shares = true
			break
		}
	}
	svc := m.labels[c.cfg.ServiceLabel]
	if !shares && (svc == "" || len(c.dependsOn) == 0) {
		return false
	}
	for _, o := range inc.members {
		if !c.inScope(m.labels, o.labels) {
			continue
		}
		if c.related(svc, o.labels[c.cfg.ServiceLabel]) {
			return true
		}
		for l, v := range m.group {
			if o.group[l] == v {
				return true
			}
		}
	}
	return false
}

// related reports whether one of two services depends on the other.
func (c *Correlator) related(a, b string) bool {
	return a != "" && b != "" && (c.dependsOn[a][b] || c.dependsOn[b][a])
}

// inScope reports whether two alerts' labels agree on every scope label
// both have.
func (c *Correlator) inScope(a, b map[string]string) bool {
	for _, l := range c.cfg.Scope {
		va, oka := a[l]
		vb, okb := b[l]
		if oka && okb && va != vb {
			return false
		}
	}
	return true
}

// evict forgets the incidents that resolved, with no alert started, more
// than a window before the latest event time, and last changed by an
// alert event published more than the lateness before the latest: no
// alert can join them now. Publish time, not event time, measures
// lateness: in a backfill the partitions' event times lie hours apart
// while their alerts are published within seconds.
func (c *Correlator) evict() {
	w := int64(c.cfg.Window)
	c.live = slices.DeleteFunc(c.live, func(inc *incident) bool {
		if inc.firing > 0 || max(inc.resolved, inc.last)+w >= c.watermark || inc.touched+int64(c.cfg.Lateness) >= c.clock {
			return false
		}
		for _, m := range inc.members {
			delete(c.byAlert, m.alertKey)
		}
		return true
	})
}

// newID derives an incident's id from its first alert.
func newID(k alertKey) string {
	h := fnv.New64a()
	h.Write([]byte(k.fingerprint))
	h.Write([]byte(strconv.FormatInt(k.startsAt, 10)))
	return fmt.Sprintf("inc-%016x", h.Sum64())
}

var severityRank = map[string]int{alert.SeverityInfo: 1, alert.SeverityWarning: 2, alert.SeverityCritical: 3}

// event describes the incident as it stands.
func (c *Correlator) event(inc *incident) Event {
	inc.version++
	e := Event{ID: inc.id, Version: inc.version, StartedAt: time.Unix(0, inc.first).UTC(), UpdatedAt: time.Unix(0, inc.updatedAt).UTC()}
	if inc.mergedTo != "" {
		e.State, e.MergedInto = Merged, inc.mergedTo
		e.Summary = "merged into " + inc.mergedTo
		return e
	}
	e.State, e.Firing, e.AlertCount = Open, inc.firing, len(inc.members)
	if inc.firing == 0 {
		e.State, e.ResolvedAt = Resolved, time.Unix(0, inc.resolved).UTC()
	}
	members := slices.Clone(inc.members)
	slices.SortStableFunc(members, func(a, b *member) int {
		return cmp.Or(cmp.Compare(a.startsAt, b.startsAt), strings.Compare(a.fingerprint, b.fingerprint))
	})
	for i, m := range members {
		if severityRank[m.severity] > severityRank[e.Severity] {
			e.Severity = m.severity
		}
		if i < MaxListedAlerts {
			e.Alerts = append(e.Alerts, m.describe())
		}
	}
	e.Labels = commonLabels(members)
	e.Origins = c.rank(members)
	e.Summary = summarize(e)
	return e
}

func (m *member) describe() Member {
	d := Member{Fingerprint: m.fingerprint, Rule: m.rule, Series: m.series, Severity: m.severity,
		State: string(alert.Firing), Labels: m.labels, StartsAt: time.Unix(0, m.startsAt).UTC()}
	if !m.firing {
		d.State, d.EndsAt = string(alert.Resolved), time.Unix(0, m.endsAt).UTC()
	}
	return d
}

// commonLabels returns the grouping labels every member has with one value.
func commonLabels(members []*member) map[string]string {
	common := maps.Clone(members[0].group)
	for _, m := range members[1:] {
		maps.DeleteFunc(common, func(l, v string) bool { return m.group[l] != v })
	}
	if len(common) == 0 {
		return nil
	}
	return common
}
