package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/metricpipe/metricpipe/shared/alert"
)

// tailFilter selects the events printed, alert events or incident
// events (whose severity is their most severe alert's): --state and
// --severity.
type tailFilter[S ~string] struct {
	State   S   // "": any
	MinRank int // see tailSeverityRank
}

func (f tailFilter[S]) match(state S, severity string) bool {
	if f.State != "" && state != f.State {
		return false
	}
	rank, known := tailSeverityRank(severity)
	return !known || rank >= f.MinRank // what cannot be ranked is never hidden
}

// tailSeverityRank orders severities, info < warning < critical. An empty
// severity is a warning, the rules' default.
func tailSeverityRank(s string) (rank int, known bool) {
	switch s {
	case alert.SeverityInfo:
		return 0, true
	case alert.SeverityWarning, "":
		return 1, true
	case alert.SeverityCritical:
		return 2, true
	}
	return 0, false
}

// tailKey identifies an event for deduplication, as alert.Event documents.
type tailKey struct {
	fingerprint string
	state       alert.State
	startsSec   int64
	startsNsec  int
}

func tailKeyOf(e alert.Event) tailKey {
	return tailKey{e.Fingerprint, e.State, e.StartsAt.Unix(), e.StartsAt.Nanosecond()}
}

// tailMemory remembers a value for each of the last n (at least 1)
// distinct keys put, forgetting the key first put first: the bounded
// memory the tails deduplicate with. It is not safe for concurrent use.
type tailMemory[K comparable, V any] struct {
	vals map[K]V
	ring []K // first-put order; next is the oldest once full
	next int
}

func newTailMemory[K comparable, V any](n int) *tailMemory[K, V] {
	return &tailMemory[K, V]{vals: make(map[K]V), ring: make([]K, 0, max(n, 1))}
}

func (m *tailMemory[K, V]) get(k K) (V, bool) {
	v, ok := m.vals[k]
	return v, ok
}

// put remembers v for k; a key already remembered keeps its place.
func (m *tailMemory[K, V]) put(k K, v V) {
	if _, ok := m.vals[k]; !ok {
		if len(m.ring) < cap(m.ring) {
			m.ring = append(m.ring, k)
		} else {
			delete(m.vals, m.ring[m.next])
			m.ring[m.next] = k
			m.next = (m.next + 1) % len(m.ring)
		}
	}
	m.vals[k] = v
}

func (m *tailMemory[K, V]) len() int { return len(m.vals) }

// tailSeen remembers the last n distinct alert event keys added.
type tailSeen struct{ *tailMemory[tailKey, struct{}] }

func newTailSeen(n int) tailSeen { return tailSeen{newTailMemory[tailKey, struct{}](n)} }

// add records k and reports whether it was not already remembered.
func (s tailSeen) add(k tailKey) bool {
	if _, ok := s.get(k); ok {
		return false
	}
	s.put(k, struct{}{})
	return true
}

// tailFormat renders events for people, one line each.
type tailFormat struct {
	Color bool           // ANSI colours by severity; resolved in green
	Loc   *time.Location // zone of the times shown; nil is UTC
}

const (
	tailReset  = "\x1b[0m"
	tailRed    = "\x1b[31m"
	tailGreen  = "\x1b[32m"
	tailYellow = "\x1b[33m"
	tailCyan   = "\x1b[36m"
)

const (
	tailTimeLayout  = "2006-01-02 15:04:05"
	tailClockLayout = "15:04:05"
)

// line renders e without a newline. Its durations come from e's own times;
// now only adds "(2m ago)" to events at least a minute old, and the zero
// time leaves it out.
func (f tailFormat) line(e alert.Event, now time.Time) string {
	loc := f.Loc
	if loc == nil {
		loc = time.UTC
	}
	resolved := e.State == alert.Resolved
	at := e.EventTime
	if at.IsZero() && resolved {
		at = e.EndsAt
	}
	if at.IsZero() {
		at = e.StartsAt
	}

	var b strings.Builder
	if at.IsZero() {
		fmt.Fprintf(&b, "%-*s", len(tailTimeLayout), "-")
	} else {
		b.WriteString(at.In(loc).Format(tailTimeLayout))
	}
	b.WriteString("  ")
	if resolved {
		f.column(&b, "RESOLVED", tailGreen, 8)
		f.column(&b, tailOrDash(e.Severity), "", 8)
	} else {
		color := tailSeverityColor(e.Severity)
		f.column(&b, tailOrDash(strings.ToUpper(string(e.State))), color, 8)
		f.column(&b, tailOrDash(e.Severity), color, 8)
	}
	b.WriteString(tailOrDash(e.Rule))
	b.WriteString("  ")
	b.WriteString(tailOrDash(e.Series))
	b.WriteString("  value=")
	b.WriteString(tailValue(e.Value))
	for _, o := range []struct {
		name string
		v    *float64
	}{{"threshold", e.Threshold}, {"expected", e.Expected}, {"score", e.Score}} {
		if o.v != nil {
			b.WriteString(" " + o.name + "=" + tailValue(*o.v))
		}
	}

	if resolved {
		end := e.EndsAt
		if end.IsZero() {
			end = e.EventTime
		}
		if !e.StartsAt.IsZero() && !end.IsZero() && !end.Before(e.StartsAt) {
			startLayout := tailClockLayout
			if y1, m1, d1 := e.StartsAt.In(loc).Date(); !tailSameDay(y1, m1, d1, end.In(loc)) {
				startLayout = tailTimeLayout
			}
			fmt.Fprintf(&b, "  after %s (fired %s–%s)", tailDuration(end.Sub(e.StartsAt)),
				e.StartsAt.In(loc).Format(startLayout), end.In(loc).Format(tailClockLayout))
		}
	} else if !e.StartsAt.IsZero() && !e.EventTime.IsZero() && !e.EventTime.Before(e.StartsAt) {
		b.WriteString("  for " + tailDuration(e.EventTime.Sub(e.StartsAt)))
	}
	if s := strings.TrimSpace(tailPrintable(e.Summary)); s != "" {
		b.WriteString("  — " + s)
	}
	if !now.IsZero() && !at.IsZero() {
		if ago := now.Sub(at); ago >= time.Minute {
			b.WriteString("  (" + tailAgo(ago) + ")")
		}
	}
	return b.String()
}

// column writes s, coloured when colouring, padded to width, then the gap
// to the next column. Padding stays outside the colour codes.
func (f tailFormat) column(b *strings.Builder, s, color string, width int) {
	if f.Color && color != "" {
		b.WriteString(color + s + tailReset)
	} else {
		b.WriteString(s)
	}
	b.WriteString(strings.Repeat(" ", max(width-utf8.RuneCountInString(s), 0)+2))
}

func tailSeverityColor(severity string) string {
	switch severity {
	case alert.SeverityCritical:
		return tailRed
	case alert.SeverityWarning:
		return tailYellow
	case alert.SeverityInfo:
		return tailCyan
	}
	return ""
}

func tailSameDay(y int, m time.Month, d int, t time.Time) bool {
	y2, m2, d2 := t.Date()
	return y == y2 && m == m2 && d == d2
}

// tailOrDash returns s made printable, or "-" when empty.
func tailOrDash(s string) string {
	if s = tailPrintable(s); s == "" {
		return "-"
	}
	return s
}

// tailPrintable replaces control and bidirectional-override characters with
// spaces: what comes from the topic must not move the cursor, recolour the
// terminal or break the line.
func tailPrintable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return ' '
		}
		return r
	}, s)
}

// tailValue prints v with at most 10 significant digits, in plain
// notation unless very large or small: 97.2, 0.3 (not 0.30000000000000004),
// 123456789, 1e-07.
func tailValue(v float64) string {
	if a := math.Abs(v); a != 0 && (a < 1e-4 || a >= 1e15) {
		return strconv.FormatFloat(v, 'g', 10, 64)
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 10, 64), 64)
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// tailDuration prints d to the second without zero trailing units: 3m12s,
// 5m, 2h, 1h0m5s.
func tailDuration(d time.Duration) string {
	s := d.Round(time.Second).String() // 3m12s, 5m0s, 2h0m0s, 1h0m5s
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2] // 5m, 2h0m
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2] // 2h
	}
	return s
}

// tailAgo prints d coarsely: 5m ago, 3h ago, 2d ago.
func tailAgo(d time.Duration) string {
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}
