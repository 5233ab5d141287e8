package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/metricpipe/metricpipe/shared/incident"
)

// incidentTailOrigins is how many likely origins an incident block lists:
// the ranking's head is what an operator acts on; --json has them all.
const incidentTailOrigins = 3

// validIncidentTailState checks --state for --incidents.
func validIncidentTailState(s string) error {
	switch incident.State(s) {
	case "", incident.Open, incident.Resolved, incident.Merged:
		return nil
	}
	return fmt.Errorf("--state %q: with --incidents want open, resolved or merged", s)
}

func (c tailConfig) incidentTailFilter() tailFilter[incident.State] {
	rank, _ := tailSeverityRank(c.Severity)
	return tailFilter[incident.State]{State: incident.State(c.State), MinRank: rank}
}

// incidentTailSeen remembers, for the last n distinct incident ids added,
// the newest version added.
type incidentTailSeen struct{ *tailMemory[string, int] }

func newIncidentTailSeen(n int) incidentTailSeen {
	return incidentTailSeen{newTailMemory[string, int](n)}
}

// add records version of incident id and reports whether it is newer than
// every version of id remembered: a replay, or an event older than one
// already printed, is not.
func (s incidentTailSeen) add(id string, version int) bool {
	if v, ok := s.get(id); ok && version <= v {
		return false
	}
	s.put(id, version)
	return true
}

// incident renders e as a block of lines without a final newline: a header
// line, then its listed alerts and its first likely origins, indented. A
// merged event is its header alone. now only adds "(2m ago)" to events at
// least a minute old, and the zero time leaves it out.
func (f tailFormat) incident(e incident.Event, now time.Time) string {
	loc := f.Loc
	if loc == nil {
		loc = time.UTC
	}
	at := e.UpdatedAt
	if at.IsZero() {
		at = e.StartedAt
	}

	var b strings.Builder
	f.writeTime(&b, at, loc)
	b.WriteString("  ")
	switch e.State {
	case incident.Resolved:
		f.column(&b, "RESOLVED", tailGreen, 8)
		f.column(&b, tailOrDash(e.Severity), "", 8)
	case incident.Merged:
		f.column(&b, "MERGED", "", 8)
		f.column(&b, tailOrDash(e.Severity), "", 8)
	default:
		color := tailSeverityColor(e.Severity)
		f.column(&b, tailOrDash(strings.ToUpper(string(e.State))), color, 8)
		f.column(&b, tailOrDash(e.Severity), color, 8)
	}
	b.WriteString(tailOrDash(e.ID))
	if e.State == incident.Merged {
		b.WriteString("  merged into " + tailOrDash(e.MergedInto))
		f.writeAge(&b, at, now)
		return b.String()
	}
	fmt.Fprintf(&b, "  %d alert%s, %d firing", e.AlertCount, incidentTailPlural(e.AlertCount), e.Firing)
	origins := incidentTailRanked(e.Origins)
	if len(origins) > 0 {
		b.WriteString("  origin " + incidentTailLabels(origins[0].Labels))
		if ev := incidentTailLead(origins[0]); ev != "" {
			b.WriteString(" (" + ev + ")")
		}
	}
	if s := strings.TrimSpace(tailPrintable(e.Summary)); s != "" {
		b.WriteString("  — " + s)
	}
	f.writeAge(&b, at, now)

	ruleWidth := 0
	for _, a := range e.Alerts {
		ruleWidth = max(ruleWidth, len([]rune(tailOrDash(a.Rule))))
	}
	for _, a := range e.Alerts {
		b.WriteString("\n    ")
		f.writeTime(&b, a.StartsAt, loc)
		b.WriteString("  ")
		if a.State == "resolved" {
			f.column(&b, "RESOLVED", tailGreen, 8)
		} else {
			f.column(&b, tailOrDash(strings.ToUpper(a.State)), tailSeverityColor(a.Severity), 8)
		}
		rule := tailOrDash(a.Rule)
		b.WriteString(rule + strings.Repeat(" ", ruleWidth-len([]rune(rule))+2))
		b.WriteString(tailOrDash(a.Series))
	}
	if more := e.AlertCount - len(e.Alerts); more > 0 {
		fmt.Fprintf(&b, "\n    … and %d more alert%s", more, incidentTailPlural(more))
	}
	for i, o := range origins[:min(len(origins), incidentTailOrigins)] {
		rank := o.Rank
		if rank <= 0 {
			rank = i + 1
		}
		fmt.Fprintf(&b, "\n    origin %d  %s", rank, incidentTailLabels(o.Labels))
		if ev := incidentTailLead(o); ev != "" {
			b.WriteString("  " + ev)
		}
		for _, line := range o.Evidence {
			if line = strings.TrimSpace(tailPrintable(line)); line != "" {
				b.WriteString("\n        " + line)
			}
		}
	}
	return b.String()
}

// writeTime writes t in loc, or a dash as wide, for the zero time.
func (f tailFormat) writeTime(b *strings.Builder, t time.Time, loc *time.Location) {
	if t.IsZero() {
		fmt.Fprintf(b, "%-*s", len(tailTimeLayout), "-")
		return
	}
	b.WriteString(t.In(loc).Format(tailTimeLayout))
}

// writeAge writes "  (2m ago)" when at is at least a minute before now.
func (f tailFormat) writeAge(b *strings.Builder, at, now time.Time) {
	if now.IsZero() || at.IsZero() {
		return
	}
	if ago := now.Sub(at); ago >= time.Minute {
		b.WriteString("  (" + tailAgo(ago) + ")")
	}
}

func incidentTailPlural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// incidentTailRanked returns origins most likely first: by rank as
// published (0, unranked, last), stable otherwise.
func incidentTailRanked(origins []incident.Origin) []incident.Origin {
	out := slices.Clone(origins)
	slices.SortStableFunc(out, func(a, b incident.Origin) int {
		ra, rb := a.Rank, b.Rank
		if ra <= 0 {
			ra = int(^uint(0) >> 1)
		}
		if rb <= 0 {
			rb = int(^uint(0) >> 1)
		}
		return ra - rb
	})
	return out
}

// incidentTailLabels prints labels as k=v,k=v sorted by key, the way the
// analyzer writes an incident's origin to InfluxDB; "-" when there are none.
func incidentTailLabels(labels map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(tailPrintable(k) + "=" + tailPrintable(labels[k]))
	}
	return tailOrDash(b.String())
}

// incidentTailLead says how far o's anomaly led the next candidate's and
// whether that located the fault: "lead 45s, located", "lead 1.5s", "".
func incidentTailLead(o incident.Origin) string {
	var parts []string
	if o.LeadSeconds > 0 {
		parts = append(parts, "lead "+incidentTailSeconds(o.LeadSeconds))
	}
	if o.Located {
		parts = append(parts, "located")
	}
	return strings.Join(parts, ", ")
}

// incidentTailSeconds prints a lead: to the tenth of a second under a
// minute (45s, 1.5s), to the second above (3m12s).
func incidentTailSeconds(s float64) string {
	if s < 60 {
		return strconv.FormatFloat(math.Round(s*10)/10, 'f', -1, 64) + "s"
	}
	return tailDuration(time.Duration(s * float64(time.Second)))
}
