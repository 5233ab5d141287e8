package rules

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"text/template"
	"time"

	"github.com/metricpipe/metricpipe/shared/point"
)

// Kind is the kind of a rule's condition.
type Kind int

// The four conditions a rule can have; each rule has exactly one.
const (
	Threshold  Kind = iota // the value, an average or the forecast against a bound
	Anomaly                // the anomaly score or residual z-score against a bound
	Predictive             // the multi-step forecast crossing a bound within a horizon
	Absence                // no point for a while (deadman)
)

// String returns the kind's key in the rule file: "threshold", "anomaly",
// "predictive" or "absence".
func (k Kind) String() string {
	switch k {
	case Threshold:
		return "threshold"
	case Anomaly:
		return "anomaly"
	case Predictive:
		return "predictive"
	case Absence:
		return "absence"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Source is what a threshold condition compares with its bound.
type Source int

// The values of a threshold's `of`.
const (
	OfValue    Source = iota // the point's value
	OfSMA                    // the series' simple moving average
	OfEMA                    // the series' exponential moving average
	OfForecast               // the one-step forecast made for the point
)

var sourceNames = [...]string{OfValue: "value", OfSMA: "sma", OfEMA: "ema", OfForecast: "forecast"}

// String returns the source's name in the rule file.
func (s Source) String() string {
	if s >= 0 && int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return "source(" + strconv.Itoa(int(s)) + ")"
}

// Op is how a threshold or predictive condition compares with its bound.
type Op int

// Above and Below compare with one bound (strictly); Outside, for
// thresholds only, is true below Lo or above Hi.
const (
	Above Op = iota
	Below
	Outside
)

var opNames = [...]string{Above: "above", Below: "below", Outside: "outside"}

// String returns the op's key in the rule file.
func (o Op) String() string {
	if o >= 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// ThresholdCond is a threshold condition: Of compared with Bound (Above,
// Below) or with the band [Lo, Hi] (Outside).
type ThresholdCond struct {
	Of     Source
	Op     Op
	Bound  float64
	Lo, Hi float64
}

// AnomalyCond is an anomaly condition. Exactly one of Score and Z is set
// (positive): the condition holds when the anomaly score is at least Score,
// or when the absolute residual z-score is at least Z.
type AnomalyCond struct {
	Score, Z float64
}

// PredictiveCond is a predictive condition: the forecast goes Above or
// Below Bound within Within of the point.
type PredictiveCond struct {
	Op     Op
	Bound  float64
	Within time.Duration
}

// AbsenceCond is an absence condition: no point for For.
type AbsenceCond struct {
	For time.Duration
}

// Match selects the series a rule applies to. Every pattern has the syntax
// of path.Match, except that '*' and '?' match '/' too.
type Match struct {
	// Measurement and Field are patterns; "*" (what Parse sets when the
	// file gives none) and "" match all.
	Measurement, Field string
	// Tags, sorted by Key with unique keys, must each be present on the
	// series with a matching value.
	Tags []TagMatch
}

// TagMatch requires the tag Key with a value matching Pattern.
type TagMatch struct {
	Key, Pattern string
}

// Rule is one alert rule of a rule file. Rules come from Parse or Load and
// must not be modified afterwards; all their methods are then safe for
// concurrent use.
type Rule struct {
	// Name is unique within its Set.
	Name string
	// Kind says which one of Threshold, Anomaly, Predictive and Absence
	// holds the condition; the other three are zero.
	Kind       Kind
	Threshold  ThresholdCond
	Anomaly    AnomalyCond
	Predictive PredictiveCond
	Absence    AbsenceCond
	Match      Match
	// For is how long the condition must hold, in event time, before the
	// alert fires; KeepFiringFor how long it keeps firing after the
	// condition cleared. Both are applied by the alert lifecycle.
	For, KeepFiringFor time.Duration
	// Hysteresis is the margin, ≥ 0, by which an active condition's value
	// must get back past its bound before the condition clears (see Eval).
	Hysteresis float64
	// Severity is "critical", "warning" (the default) or "info".
	Severity string
	// Labels are added to the rule's alerts; nil when there are none.
	Labels map[string]string
	// Summary and Description are the text/template sources of the alert's
	// texts; Summary holds the default for the rule's kind when the file
	// gives none.
	Summary, Description string
	// Actions are run when the rule's alerts fire or resolve. They are not
	// part of Hash: changing them does not reset the alerts' state.
	Actions []Action
	// Line is where the rule starts in its file, for messages.
	Line int
	// Hash identifies the rule's whole definition: two rules have the same
	// hash when (with overwhelming probability only when) every setting
	// above except Actions and Line is equal, however the YAML was written. A reload
	// keeps the alert state of rules whose name and hash are unchanged.
	Hash uint64

	summary, description *template.Template
}

// Set is the rules of one rule file, in file order. A Set is not modified
// after Parse returns it.
type Set struct {
	Rules []*Rule
	// Dependencies are the declared dependencies between services: each
	// service, by its value of the service label, with the services it
	// depends on. The analyzer's incidents use them to link alerts and rank
	// origins. Acyclic.
	Dependencies map[string][]string
	// Source is the file name given to Parse (the path for Load).
	Source string
}

// Matches reports whether the rule applies to the series of measurement,
// field and tags; tags must be sorted by key, as decoded points' are. It
// does not allocate.
func (r *Rule) Matches(measurement, field string, tags []point.Tag) bool {
	if !glob(r.Match.Measurement).match(measurement) || !glob(r.Match.Field).match(field) {
		return false
	}
	// Both lists are sorted by key: one merge walk.
	j := 0
	for _, tm := range r.Match.Tags {
		for j < len(tags) && tags[j].Key < tm.Key {
			j++
		}
		if j == len(tags) || tags[j].Key != tm.Key || !glob(tm.Pattern).match(tags[j].Value) {
			return false
		}
		j++
	}
	return true
}

// Matching appends the rules that apply to the series to dst, in file
// order, and returns the extended slice. It allocates only when dst must
// grow; callers reuse dst[:0].
func (s *Set) Matching(measurement, field string, tags []point.Tag, dst []*Rule) []*Rule {
	for _, r := range s.Rules {
		if r.Matches(measurement, field, tags) {
			dst = append(dst, r)
		}
	}
	return dst
}

// sameRules reports whether a and b hold the same rules in the same order.
func sameRules(a, b *Set) bool {
	if a == nil || b == nil || len(a.Rules) != len(b.Rules) {
		return a == b
	}
	for i := range a.Rules {
		if a.Rules[i].Name != b.Rules[i].Name || a.Rules[i].Hash != b.Rules[i].Hash {
			return false
		}
	}
	return true
}

// hash computes r.Hash from every setting but Line. Strings are length
// prefixed so that adjacent ones cannot trade bytes.
func (r *Rule) hash() uint64 {
	h := fnv.New64a()
	var buf [8]byte
	u := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	s := func(v string) {
		u(uint64(len(v)))
		h.Write([]byte(v))
	}
	f := func(v float64) { u(math.Float64bits(v)) }

	s(r.Name)
	u(uint64(r.Kind))
	switch r.Kind {
	case Threshold:
		c := r.Threshold
		u(uint64(c.Of))
		u(uint64(c.Op))
		f(c.Bound)
		f(c.Lo)
		f(c.Hi)
	case Anomaly:
		f(r.Anomaly.Score)
		f(r.Anomaly.Z)
	case Predictive:
		u(uint64(r.Predictive.Op))
		f(r.Predictive.Bound)
		u(uint64(r.Predictive.Within))
	case Absence:
		u(uint64(r.Absence.For))
	}
	s(r.Match.Measurement)
	s(r.Match.Field)
	u(uint64(len(r.Match.Tags)))
	for _, t := range r.Match.Tags {
		s(t.Key)
		s(t.Pattern)
	}
	u(uint64(r.For))
	u(uint64(r.KeepFiringFor))
	f(r.Hysteresis)
	s(r.Severity)
	keys := make([]string, 0, len(r.Labels))
	for k := range r.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	u(uint64(len(keys)))
	for _, k := range keys {
		s(k)
		s(r.Labels[k])
	}
	s(r.Summary)
	s(r.Description)
	return h.Sum64()
}
