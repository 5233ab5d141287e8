package alert

import (
	"encoding/hex"
	"hash/fnv"
	"time"
)

// Timing is how long a rule's condition must hold before its alert fires,
// how long the alert keeps firing after the condition clears, and how often
// a firing alert is announced again (0: never).
type Timing struct {
	For, KeepFiringFor, Repeat time.Duration
}

// Lifecycle is the state of one alert: one rule on one series. Its zero
// value is inactive. Step is given event times, never reads a clock, so a
// replay walks through the same transitions. Not safe for concurrent use:
// the partition worker owning the series owns its lifecycles.
type Lifecycle struct {
	state     phase
	activeAt  int64 // when the condition became true (pending or firing)
	startsAt  int64 // when the alert started firing
	clearedAt int64 // when the condition stopped holding while firing; 0 while it holds
	endsAt    int64 // when the alert resolved
	announced int64 // last firing event published
}

// Step advances the lifecycle to event time now, given whether the rule's
// condition holds then, and reports the event to publish: Firing when the
// alert starts firing or is due to be announced again, Resolved when it
// stops, Inactive (nothing to publish) otherwise. A time earlier than one
// already seen never fires, resolves or re-announces an alert early.
func (l *Lifecycle) Step(active bool, now int64, t Timing) State {
	switch l.state {
	case inactive, resolved:
		if !active {
			l.state = inactive
			return Inactive
		}
		l.state, l.activeAt = pending, now
		return l.pending(now, t)
	case pending:
		if !active {
			l.state = inactive
			return Inactive
		}
		return l.pending(now, t)
	}
	// Firing.
	// keep_firing_for counts from the first evaluation that found the
	// condition false, as Prometheus does.
	switch {
	case active:
		l.clearedAt = 0
	case l.clearedAt == 0:
		l.clearedAt = now
	}
	if !active && now-l.clearedAt >= int64(t.KeepFiringFor) {
		l.state, l.endsAt = resolved, max(now, l.startsAt)
		return Resolved
	}
	if t.Repeat > 0 && now-l.announced >= int64(t.Repeat) {
		l.announced = now
		return Firing
	}
	return Inactive
}

func (l *Lifecycle) pending(now int64, t Timing) State {
	if now-l.activeAt < int64(t.For) {
		return Inactive
	}
	l.state, l.startsAt, l.announced, l.clearedAt = firing, now, now, 0
	return Firing
}

// phase is State in a byte: a lifecycle per rule and series adds up.
type phase uint8

const (
	inactive phase = iota
	pending
	firing
	resolved
)

// State reports where the alert stands; Resolved until its condition holds
// again.
func (l *Lifecycle) State() State {
	switch l.state {
	case pending:
		return Pending
	case firing:
		return Firing
	case resolved:
		return Resolved
	}
	return Inactive
}

// StartsAt is when the alert (last) started firing, Unix ns.
func (l *Lifecycle) StartsAt() int64 { return l.startsAt }

// EndsAt is when the alert resolved, Unix ns; 0 unless resolved.
func (l *Lifecycle) EndsAt() int64 {
	if l.state != resolved {
		return 0
	}
	return l.endsAt
}

// Fingerprint identifies the alert of rule on the series named by key (the
// series' line-protocol key and field, as in Event.Series): 16 hex digits of
// FNV-64a, the same in every process and after every restart.
func Fingerprint(rule, key string) string {
	h := fnv.New64a()
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}
