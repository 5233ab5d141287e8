package alert

import (
	"encoding/json"
	"fmt"
	"time"
)

// State is where an alert stands in its lifecycle.
type State string

// The lifecycle: inactive → pending (condition true, waiting out `for`) →
// firing → resolved. Only firing and resolved are published.
const (
	Inactive State = "inactive"
	Pending  State = "pending"
	Firing   State = "firing"
	Resolved State = "resolved"
)

// Severity ranks alerts for the reader; rules default to SeverityWarning.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Event is one alert event on the alert topic, keyed by Fingerprint. An
// event is published on every transition to firing or resolved and, when
// configured, repeatedly while firing. Replays after a restart may publish
// an event again: (Fingerprint, State, StartsAt) identifies it, so readers
// deduplicate on that triple.
type Event struct {
	// Fingerprint identifies the alert: one rule on one series. It is stable
	// across restarts and rule reloads that keep the rule's name.
	Fingerprint string `json:"fingerprint"`
	Rule        string `json:"rule"`
	State       State  `json:"state"`
	Severity    string `json:"severity"`
	// Series is the series in line-protocol key form plus field:
	// "cpu,host=a usage_user".
	Series string `json:"series"`
	// Labels are the series' measurement (as "measurement"), field (as
	// "field") and tags, then the rule's labels (which win on a clash).
	Labels map[string]string `json:"labels"`
	// Value is what the rule's condition looked at when the event was made:
	// the point's value, a moving average, a forecast, a score, or for
	// absence rules the seconds since the last point.
	Value float64 `json:"value"`
	// Threshold is the condition's bound, when it has one.
	Threshold *float64 `json:"threshold,omitempty"`
	// Expected is the forecast for the point's time, when one was made.
	Expected *float64 `json:"expected,omitempty"`
	// Score is the point's anomaly score in [0,1], when the series is warm.
	Score *float64 `json:"score,omitempty"`
	// StartsAt is the event time the alert started firing.
	StartsAt time.Time `json:"starts_at"`
	// EndsAt is the event time the alert resolved; zero (omitted) while firing.
	EndsAt time.Time `json:"ends_at,omitzero"`
	// EventTime is the event time of the point (or evaluation) that caused
	// this event.
	EventTime   time.Time `json:"event_time"`
	Summary     string    `json:"summary,omitempty"`
	Description string    `json:"description,omitempty"`
}

// Decode parses an alert event from its JSON and checks the fields every
// event has.
func Decode(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("decode alert event: %w", err)
	}
	switch {
	case e.Fingerprint == "":
		return Event{}, fmt.Errorf("decode alert event: no fingerprint")
	case e.State != Firing && e.State != Resolved:
		return Event{}, fmt.Errorf("decode alert event %s: state %q: want firing or resolved", e.Fingerprint, e.State)
	}
	return e, nil
}
