package incident

import (
	"encoding/json"
	"fmt"
	"time"
)

// State is where an incident stands.
type State string

const (
	// Open: at least one of its alerts is firing.
	Open State = "open"
	// Resolved: all its alerts resolved. An alert that joins it later, within
	// the window, opens it again under the same id.
	Resolved State = "resolved"
	// Merged: an alert linked it to an older incident, which took over its
	// alerts; MergedInto names that incident. Its last event.
	Merged State = "merged"
)

// Event is one incident event on the incidents topic, keyed by ID. An
// incident is published whole on every change (a member joins or resolves,
// its state or origin ranking changes), so the latest event per ID is the
// incident; readers need nothing else. Replays after a restart may repeat
// an event: (ID, Version) identifies it.
type Event struct {
	// ID is stable for the incident's life: derived from its first alert's
	// fingerprint and start.
	ID    string `json:"id"`
	State State  `json:"state"`
	// Version counts the incident's events, from 1.
	Version    int    `json:"version"`
	MergedInto string `json:"merged_into,omitempty"`
	// Severity is the most severe of its alerts'.
	Severity string `json:"severity"`
	// Labels are the grouping labels all its alerts share (none, when they
	// are linked through different labels or declared dependencies).
	Labels map[string]string `json:"labels,omitempty"`
	// StartedAt is the earliest alert's start; ResolvedAt the last alert's
	// end, zero (omitted) unless resolved; UpdatedAt the event time of the
	// alert event that caused this incident event.
	StartedAt  time.Time `json:"started_at"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Firing and AlertCount count its alerts: those firing, and all.
	Firing     int `json:"firing"`
	AlertCount int `json:"alert_count"`
	// Alerts are its alerts in order of start, at most MaxListedAlerts.
	Alerts []Member `json:"alerts"`
	// Origins are the likely origins, most likely first: one per distinct
	// set of grouping labels among its alerts (a host, a service, ...).
	Origins []Origin `json:"origins"`
	// Summary says in a line what the incident is and where it likely began.
	Summary string `json:"summary"`
}

// Member is one alert of an incident, as its last alert event described it.
type Member struct {
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Series      string            `json:"series"`
	Severity    string            `json:"severity"`
	State       string            `json:"state"` // firing or resolved
	Labels      map[string]string `json:"labels"`
	StartsAt    time.Time         `json:"starts_at"`
	EndsAt      time.Time         `json:"ends_at,omitzero"`
}

// Origin is a candidate origin of an incident: the grouping labels of some
// of its alerts, with the evidence that ranks it.
type Origin struct {
	Rank int `json:"rank"` // 1: most likely
	// Labels are the candidate's grouping labels, such as
	// {"cluster": "eu", "host": "db-eu-1", "service": "db"}.
	Labels map[string]string `json:"labels"`
	// Onset is the start of its earliest alert.
	Onset time.Time `json:"onset"`
	// LeadSeconds is, for the earliest candidate, how long before the next
	// one its anomaly began; 0 for the others.
	LeadSeconds float64 `json:"lead_seconds"`
	// Located is set when that lead exceeds the incident lead (the rule
	// "if Δt > T then fault located").
	Located bool `json:"located"`
	// Upstream and Downstream count the other candidates whose service
	// depends on this one's, and on which this one's depends (declared
	// dependencies, transitive).
	Upstream   int `json:"upstream_of"`
	Downstream int `json:"downstream_of"`
	// SharedWith counts the incident's other alerts that share at least one
	// grouping label value with it.
	SharedWith int `json:"shared_with"`
	Alerts     int `json:"alerts"`
	// Evidence says why it ranks where it does, a line per reason.
	Evidence []string `json:"evidence"`
}

// MaxListedAlerts bounds the alerts an event lists, so that an incident
// spanning a whole cluster stays one Kafka message (AlertCount has them all).
const MaxListedAlerts = 500

// Decode parses an incident event from its JSON and checks the fields every
// event has.
func Decode(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("decode incident event: %w", err)
	}
	switch {
	case e.ID == "":
		return Event{}, fmt.Errorf("decode incident event: no id")
	case e.State != Open && e.State != Resolved && e.State != Merged:
		return Event{}, fmt.Errorf("decode incident event %s: state %q: want open, resolved or merged", e.ID, e.State)
	case e.State == Merged && e.MergedInto == "":
		return Event{}, fmt.Errorf("decode incident event %s: merged into nothing", e.ID)
	}
	return e, nil
}
