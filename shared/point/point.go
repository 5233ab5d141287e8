package point

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// Point is one timestamped set of numeric fields of one series.
//
// A point is valid when Validate returns nil. Decoders only return valid
// points, and every valid point survives an encode/decode round trip through
// either format unchanged (with nil Tags when it has none).
type Point struct {
	// Measurement names what is measured, e.g. "cpu".
	Measurement string
	// Tags identify the series within the measurement. They are sorted by
	// Key and the keys are unique; decoders guarantee this and set Tags to
	// nil when there are none, builders call SortTags.
	Tags []Tag
	// Fields are the values, in wire order, with unique keys; at least one.
	Fields []Field
	// Time is the point's time in Unix nanoseconds. 0 means "not given":
	// the caller then uses the Kafka message time.
	Time int64
}

// Tag is one key/value pair of a point's series identity.
type Tag struct{ Key, Value string }

// Field is one named value of a point.
type Field struct {
	Key   string
	Value float64
}

// Validate reports the first reason the point would be rejected by the
// decoders, or nil: an invalid measurement, tag key, tag value or field key
// (ErrInvalidName, see the package documentation for the naming rules), a
// tag or field key given twice (ErrDuplicateKey), tags not sorted by key
// (ErrUnsortedTags), no fields (ErrNoFields) or a NaN or infinite value
// (ErrNonFinite). The error is a plain error wrapping the sentinel.
func (p *Point) Validate() error { return p.validate(false) }

// ValidateAnyOrder is Validate for tags in any order, for points encoded
// with AppendLine, AppendLineKeyed or AppendSeriesKey, which write tags
// sorted: sorting a copy of the tags first would cost an allocation.
func (p *Point) ValidateAnyOrder() error { return p.validate(true) }

func (p *Point) validate(anyOrder bool) error {
	if r := nameProblem(p.Measurement, kindMeasurement); r != "" {
		return fmt.Errorf("%w: measurement %q %s", ErrInvalidName, p.Measurement, r)
	}
	for i, t := range p.Tags {
		if r := nameProblem(t.Key, kindKey); r != "" {
			return fmt.Errorf("%w: tag key %q %s", ErrInvalidName, t.Key, r)
		}
		if r := nameProblem(t.Value, kindValue); r != "" {
			return fmt.Errorf("%w: value %q of tag %q %s", ErrInvalidName, t.Value, t.Key, r)
		}
		if i == 0 {
			continue
		}
		switch prev := p.Tags[i-1].Key; {
		case prev == t.Key:
			return fmt.Errorf("%w: tag %q", ErrDuplicateKey, t.Key)
		case prev > t.Key && !anyOrder:
			return fmt.Errorf("%w: tag %q after %q", ErrUnsortedTags, t.Key, prev)
		}
	}
	if anyOrder && !slices.IsSortedFunc(p.Tags, cmpTag) {
		var buf [32]int
		idx := sortedIndex(p.Tags, &buf)
		for j := 1; j < len(idx); j++ {
			if k := p.Tags[idx[j]].Key; k == p.Tags[idx[j-1]].Key {
				return fmt.Errorf("%w: tag %q", ErrDuplicateKey, k)
			}
		}
	}
	if len(p.Fields) == 0 {
		return ErrNoFields
	}
	var seen map[string]struct{}
	for i, f := range p.Fields {
		if r := nameProblem(f.Key, kindKey); r != "" {
			return fmt.Errorf("%w: field key %q %s", ErrInvalidName, f.Key, r)
		}
		var dup bool
		if dup, seen = dupField(p.Fields[:i], nil, f.Key, seen); dup {
			return fmt.Errorf("%w: field %q", ErrDuplicateKey, f.Key)
		}
		if math.IsNaN(f.Value) || math.IsInf(f.Value, 0) {
			return fmt.Errorf("%w: field %q is %v", ErrNonFinite, f.Key, f.Value)
		}
	}
	return nil
}

// SortTags sorts p.Tags by key in place (by value among equal keys, which
// Validate rejects anyway).
func (p *Point) SortTags() { sortTags(p.Tags) }

// Clone returns a copy of p with its own Tags and Fields arrays; the strings
// are shared. Nil slices stay nil.
func (p *Point) Clone() Point {
	q := *p
	q.Tags = slices.Clone(p.Tags)
	q.Fields = slices.Clone(p.Fields)
	return q
}

// AppendSeriesKey appends the series key of p to dst and returns the
// extended slice: the measurement and the tags sorted by key, escaped as in
// line protocol, e.g. `cpu,host=a,region=eu`. Producers use it as the Kafka
// message key. It is the same for every order of p.Tags, and p is not
// modified. It does not allocate when dst has enough capacity, unless p has
// more than 32 tags that are not sorted.
func AppendSeriesKey(dst []byte, p *Point) []byte {
	dst = appendEscaped(dst, p.Measurement, false)
	return appendTags(dst, p.Tags)
}

// appendTags appends ts sorted, without modifying them: they belong to the
// caller.
func appendTags(dst []byte, ts []Tag) []byte {
	if slices.IsSortedFunc(ts, cmpTag) {
		for i := range ts {
			dst = appendTag(dst, &ts[i])
		}
		return dst
	}
	var buf [32]int
	for _, i := range sortedIndex(ts, &buf) {
		dst = appendTag(dst, &ts[i])
	}
	return dst
}

// sortedIndex returns the indices of ts in sorted order, in buf when ts
// has no more tags than buf holds.
func sortedIndex(ts []Tag, buf *[32]int) []int {
	if len(ts) > len(buf) {
		idx := make([]int, len(ts))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return cmpTag(ts[a], ts[b]) })
		return idx
	}
	idx := buf[:len(ts)]
	for i := range idx { // insertion sort: a point has few tags
		idx[i] = i
		for j := i; j > 0 && cmpTag(ts[idx[j]], ts[idx[j-1]]) < 0; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	return idx
}

func appendTag(dst []byte, t *Tag) []byte {
	dst = append(dst, ',')
	dst = appendEscaped(dst, t.Key, true)
	dst = append(dst, '=')
	return appendEscaped(dst, t.Value, true)
}

func cmpTag(a, b Tag) int {
	if c := strings.Compare(a.Key, b.Key); c != 0 {
		return c
	}
	return strings.Compare(a.Value, b.Value)
}

func sortTags(ts []Tag) {
	if !slices.IsSortedFunc(ts, cmpTag) {
		slices.SortFunc(ts, cmpTag)
	}
}

// nameKind selects the naming rules nameProblem applies.
type nameKind uint8

const (
	kindMeasurement nameKind = iota
	kindKey                  // tag key or field key
	kindValue                // tag value
)

// nameProblem returns why s cannot be a name of the given kind, phrased to
// follow the name ("is empty"), or "" when s is fine. These rules make every
// valid name expressible in line protocol and in JSON; they follow the
// grammar of github.com/influxdata/line-protocol/v2.
func nameProblem(s string, kind nameKind) string {
	if s == "" {
		return "is empty"
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		// One comparison for the common printable ASCII byte:
		// c < 0x20 wraps around to a large value.
		if c := s[i]; c-0x20 >= 0x7f-0x20 {
			if c < 0x20 || c == 0x7f {
				return fmt.Sprintf("contains non-printable character %U at byte %d", rune(c), i)
			}
			ascii = false
		}
	}
	if !ascii && !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if s[len(s)-1] == '\\' {
		// Line protocol would read the backslash as escaping the ',', ' '
		// or '=' that follows the name.
		return "ends with a backslash"
	}
	switch kind {
	case kindMeasurement:
		if s[0] == '#' {
			return "starts with '#'" // the line would be a comment
		}
	case kindKey:
		if s == "time" {
			return "is reserved by InfluxDB"
		}
	}
	return ""
}

// linearKeys is how many keys of one point are compared linearly for
// duplicates; beyond it a map keeps a 1 MiB line of tiny fields from costing
// billions of comparisons.
const linearKeys = 32

// dupTag reports whether k is the key of one of ts, the tags of the current
// point. seen is the map it uses once len(ts) reaches linearKeys (allocated
// on first use, rebuilt for each point); the caller keeps the returned map
// and must call dupTag for every key it adds.
func dupTag(ts []Tag, k string, seen map[string]struct{}) (bool, map[string]struct{}) {
	if len(ts) < linearKeys {
		for i := range ts {
			if ts[i].Key == k {
				return true, seen
			}
		}
		return false, seen
	}
	if len(ts) == linearKeys {
		seen = resetSeen(seen)
		for i := range ts {
			seen[ts[i].Key] = struct{}{}
		}
	}
	return checkSeen(seen, k), seen
}

// dupField is dupTag for fields, whose keys are those of fs and strKeys.
func dupField(fs []Field, strKeys []string, k string, seen map[string]struct{}) (bool, map[string]struct{}) {
	n := len(fs) + len(strKeys)
	if n < linearKeys {
		for i := range fs {
			if fs[i].Key == k {
				return true, seen
			}
		}
		return slices.Contains(strKeys, k), seen
	}
	if n == linearKeys {
		seen = resetSeen(seen)
		for i := range fs {
			seen[fs[i].Key] = struct{}{}
		}
		for _, s := range strKeys {
			seen[s] = struct{}{}
		}
	}
	return checkSeen(seen, k), seen
}

func resetSeen(seen map[string]struct{}) map[string]struct{} {
	if seen == nil {
		return make(map[string]struct{}, 2*linearKeys)
	}
	clear(seen)
	return seen
}

// checkSeen reports whether k is in seen and adds it.
func checkSeen(seen map[string]struct{}, k string) bool {
	if _, ok := seen[k]; ok {
		return true
	}
	seen[k] = struct{}{}
	return false
}
