package point

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeJSON is Decode for a JSON payload: one point object or an array of
// them (see the package documentation). Errors report the byte offset in
// payload and Line 0.
func (d Decoder) DecodeJSON(dst []Point, payload []byte) ([]Point, error) {
	if e := d.tooLarge(FormatJSON, payload); e != nil {
		return dst, e
	}
	s := d.text(payload)
	if a := d.Arena; a != nil {
		out, sc, e := parseJSON(s, dst, a.scratch())
		return a.keep(dst, out, sc, e.locate(FormatJSON, s))
	}
	var bufs scratchBufs
	out, sc, e := parseJSON(s, dst, bufs.scratch())
	return sc.finish(dst, out, e.locate(FormatJSON, s))
}

// parseJSON appends the points of the JSON payload s to dst, their tags
// and fields to sc. On error it returns the points appended so far for the
// caller to clear.
func parseJSON(s string, dst []Point, sc scratch) ([]Point, scratch, *DecodeError) {
	out := dst
	fail := func(e *DecodeError) ([]Point, scratch, *DecodeError) { return out, sc, e }
	var (
		p Point
		e *DecodeError
	)
	pos := skipWS(s, 0)
	switch peek(s, pos) {
	case '{':
		if p, pos, sc, e = parseObject(s, pos, sc); e != nil {
			return fail(e)
		}
		out = append(out, p)
	case '[':
		start := pos
		pos = skipWS(s, pos+1)
		if peek(s, pos) == ']' {
			if end := skipWS(s, pos+1); end < len(s) {
				return fail(errAt(end, ErrSyntax, "", "unexpected data after JSON value"))
			}
			return fail(errAt(start, ErrEmpty, "", "empty array"))
		}
		for {
			if peek(s, pos) != '{' {
				return fail(errExpected(s, pos, "a point object"))
			}
			if p, pos, sc, e = parseObject(s, pos, sc); e != nil {
				return fail(e)
			}
			out = append(out, p)
			pos = skipWS(s, pos)
			if c := peek(s, pos); c == ',' {
				pos = skipWS(s, pos+1)
				continue
			} else if c == ']' {
				pos++
				break
			}
			return fail(errExpected(s, pos, "',' or ']'"))
		}
	case 0:
		if pos == len(s) {
			return fail(errAt(pos, ErrEmpty, "", ""))
		}
		fallthrough
	default:
		return fail(errExpected(s, pos, "'{' or '['"))
	}
	if pos = skipWS(s, pos); pos < len(s) {
		return fail(errAt(pos, ErrSyntax, "", "unexpected data after JSON value"))
	}
	return out, sc, nil
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(s string, pos int) int {
	for pos < len(s) && isJSONSpace(s[pos]) {
		pos++
	}
	return pos
}

// peek returns s[pos], or 0 at the end of s.
func peek(s string, pos int) byte {
	if pos < len(s) {
		return s[pos]
	}
	return 0
}

// errExpected reports a syntax error at pos: what was expected there.
func errExpected(s string, pos int, what string) *DecodeError {
	if pos >= len(s) {
		return errAt(len(s), ErrSyntax, "", "unexpected end of input, expected "+what)
	}
	return errAt(pos, ErrSyntax, "", "expected "+what+", found "+quoteByte(s[pos]))
}

// hasLiteral reports whether s[pos:] starts with lit ("true", "null"...).
func hasLiteral(s string, pos int, lit string) bool {
	return strings.HasPrefix(s[pos:], lit)
}

// Bits of the keys a point object has given.
const (
	keyMeasurement = 1 << iota
	keyTags
	keyFields
	keyTime
)

// parseObject parses the point object at s[pos] == '{' and returns the
// point with the position after the object. Its tags and fields go to sc.
func parseObject(s string, pos int, sc scratch) (Point, int, scratch, *DecodeError) {
	var p Point
	start := pos
	t0, f0 := len(sc.tags), len(sc.fields)
	var given uint8
	pos, e := parseMembers(s, pos, func(key string, kStart, pos int) (int, *DecodeError) {
		var bit uint8
		switch key {
		case "measurement":
			bit = keyMeasurement
		case "tags":
			bit = keyTags
		case "fields":
			bit = keyFields
		case "time":
			bit = keyTime
		default:
			return pos, errAt(kStart, ErrSyntax, key, `unknown key; a point has "measurement", "tags", "fields" and "time"`)
		}
		if given&bit != 0 {
			return pos, errAt(kStart, ErrDuplicateKey, key, "key given twice")
		}
		given |= bit
		var e *DecodeError
		switch c := peek(s, pos); {
		case bit == keyMeasurement:
			if c != '"' {
				return pos, errAt(pos, ErrUnsupportedValue, key, "measurement must be a string")
			}
			vStart := pos
			if p.Measurement, pos, e = parseString(s, pos); e != nil {
				return pos, e
			}
			if r := nameProblem(p.Measurement, kindMeasurement); r != "" {
				return pos, errAt(vStart, ErrInvalidName, "", "measurement "+r)
			}
		case bit == keyTime:
			p.Time, pos, e = parseTime(s, pos)
		case c == 'n' && hasLiteral(s, pos, "null"): // tags or fields
			pos += len("null")
		case c == '{' && bit == keyTags:
			pos, sc, e = parseTags(s, pos, sc)
		case c == '{' && bit == keyFields:
			pos, sc, e = parseFields(s, pos, sc)
		case bit == keyTags:
			return pos, errAt(pos, ErrUnsupportedValue, key, "tags must be an object of strings")
		default:
			return pos, errAt(pos, ErrUnsupportedValue, key, "fields must be an object of numbers and booleans")
		}
		return pos, e
	})
	if e != nil {
		return p, pos, sc, e
	}
	if given&keyMeasurement == 0 {
		return p, pos, sc, errAt(start, ErrInvalidName, "", `missing "measurement"`)
	}
	if len(sc.fields) == f0 {
		return p, pos, sc, errAt(start, ErrNoFields, "", `"fields" missing or empty`)
	}
	sortTags(sc.tags[t0:])
	sc.spans = append(sc.spans, span{t0: t0, t1: len(sc.tags), f0: f0, f1: len(sc.fields)})
	return p, pos, sc, nil
}

// parseMembers parses the object at s[pos] == '{', calling member for each
// key (found at kStart) with pos at its value; member returns the position
// after the value.
func parseMembers(s string, pos int, member func(key string, kStart, pos int) (int, *DecodeError)) (int, *DecodeError) {
	pos = skipWS(s, pos+1)
	if peek(s, pos) == '}' {
		return pos + 1, nil
	}
	for {
		if peek(s, pos) != '"' {
			return pos, errExpected(s, pos, "a string key")
		}
		kStart := pos
		key, end, e := parseString(s, pos)
		if e != nil {
			return end, e
		}
		if pos = skipWS(s, end); peek(s, pos) != ':' {
			return pos, errExpected(s, pos, "':'")
		}
		if pos, e = member(key, kStart, skipWS(s, pos+1)); e != nil {
			return pos, e
		}
		pos = skipWS(s, pos)
		if c := peek(s, pos); c == ',' {
			pos = skipWS(s, pos+1)
			continue
		} else if c == '}' {
			return pos + 1, nil
		}
		return pos, errExpected(s, pos, "',' or '}'")
	}
}

// parseTags parses the "tags" object at s[pos] into sc.tags.
func parseTags(s string, pos int, sc scratch) (int, scratch, *DecodeError) {
	t0 := len(sc.tags)
	pos, e := parseMembers(s, pos, func(k string, kStart, pos int) (int, *DecodeError) {
		if r := nameProblem(k, kindKey); r != "" {
			return pos, errAt(kStart, ErrInvalidName, k, "tag key "+r)
		}
		var dup bool
		if dup, sc.seen = dupTag(sc.tags[t0:], k, sc.seen); dup {
			return pos, errAt(kStart, ErrDuplicateKey, k, "tag given twice")
		}
		if peek(s, pos) != '"' {
			return pos, errAt(pos, ErrUnsupportedValue, k, "tag values must be strings")
		}
		v, end, e := parseString(s, pos)
		if e != nil {
			return end, e
		}
		if r := nameProblem(v, kindValue); r != "" {
			return end, errAt(pos, ErrInvalidName, k, "tag value "+r)
		}
		sc.tags = append(sc.tags, Tag{Key: k, Value: v})
		return end, nil
	})
	return pos, sc, e
}

// parseFields parses the "fields" object at s[pos] into sc.fields.
func parseFields(s string, pos int, sc scratch) (int, scratch, *DecodeError) {
	f0 := len(sc.fields)
	pos, e := parseMembers(s, pos, func(k string, kStart, pos int) (int, *DecodeError) {
		if r := nameProblem(k, kindKey); r != "" {
			return pos, errAt(kStart, ErrInvalidName, k, "field key "+r)
		}
		var dup bool
		if dup, sc.seen = dupField(sc.fields[f0:], nil, k, sc.seen); dup {
			return pos, errAt(kStart, ErrDuplicateKey, k, "field given twice")
		}
		var v float64
		switch c := peek(s, pos); {
		case c == 't' && hasLiteral(s, pos, "true"):
			v = 1
			pos += len("true")
		case c == 'f' && hasLiteral(s, pos, "false"):
			pos += len("false")
		case c == '-' || ('0' <= c && c <= '9'):
			end, _, ok := scanNumber(s, pos)
			if !ok {
				return end, errAt(pos, ErrSyntax, k, "invalid number")
			}
			var err error
			if v, err = strconv.ParseFloat(s[pos:end], 64); err != nil {
				return end, errAt(pos, ErrNonFinite, k, s[pos:end]+" overflows float64")
			}
			pos = end
		case c == '"':
			return pos, errAt(pos, ErrUnsupportedValue, k, "string field values are not supported; fields must be numbers or booleans")
		case c == 'n' && hasLiteral(s, pos, "null"), c == '{', c == '[':
			return pos, errAt(pos, ErrUnsupportedValue, k, "fields must be numbers or booleans")
		default:
			return pos, errExpected(s, pos, "a value")
		}
		sc.fields = append(sc.fields, Field{Key: k, Value: v})
		return pos, nil
	})
	return pos, sc, e
}

// parseTime parses the value of "time" at s[pos]: integer nanoseconds, an
// RFC 3339 string or null.
func parseTime(s string, pos int) (int64, int, *DecodeError) {
	switch c := peek(s, pos); {
	case c == 'n' && hasLiteral(s, pos, "null"):
		return 0, pos + len("null"), nil
	case c == '"':
		str, end, e := parseString(s, pos)
		if e != nil {
			return 0, end, e
		}
		t, err := time.Parse(time.RFC3339Nano, str)
		if err != nil {
			return 0, end, errAt(pos, ErrUnsupportedValue, "time", "not an RFC 3339 timestamp: "+strconv.Quote(str))
		}
		if t.Before(time.Unix(0, math.MinInt64)) || t.After(time.Unix(0, math.MaxInt64)) {
			return 0, end, errAt(pos, ErrUnsupportedValue, "time", "out of the int64 nanosecond range (years 1677 to 2262)")
		}
		return t.UnixNano(), end, nil
	case c == '-' || ('0' <= c && c <= '9'):
		end, isInt, ok := scanNumber(s, pos)
		if !ok {
			return 0, end, errAt(pos, ErrSyntax, "time", "invalid number")
		}
		if !isInt {
			return 0, end, errAt(pos, ErrUnsupportedValue, "time", "must be an integer number of nanoseconds")
		}
		n, err := strconv.ParseInt(s[pos:end], 10, 64)
		if err != nil {
			return 0, end, errAt(pos, ErrUnsupportedValue, "time", "out of the int64 nanosecond range")
		}
		return n, end, nil
	case c == 't' || c == 'f' || c == '{' || c == '[':
		return 0, pos, errAt(pos, ErrUnsupportedValue, "time", "must be integer nanoseconds, an RFC 3339 string or null")
	}
	return 0, pos, errExpected(s, pos, "a value")
}

// scanNumber scans the JSON number at s[pos] and returns its end, whether
// it has neither fraction nor exponent, and whether it is well formed:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(s string, pos int) (end int, isInt, ok bool) {
	i := pos
	if peek(s, i) == '-' {
		i++
	}
	switch c := peek(s, i); {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		i = digits(s, i)
	default:
		return i, false, false
	}
	isInt = true
	if peek(s, i) == '.' {
		j := digits(s, i+1)
		if j == i+1 {
			return j, false, false
		}
		i, isInt = j, false
	}
	if c := peek(s, i); c == 'e' || c == 'E' {
		i++
		if c := peek(s, i); c == '+' || c == '-' {
			i++
		}
		j := digits(s, i)
		if j == i {
			return j, false, false
		}
		i, isInt = j, false
	}
	return i, isInt, true
}

// parseString parses the JSON string at s[pos] == '"' and returns it with
// the position after the closing quote. Without escapes the result is a
// substring of s.
func parseString(s string, pos int) (string, int, *DecodeError) {
	for i := pos + 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[pos+1 : i], i + 1, nil
		case c == '\\':
			return parseEscapedString(s, pos)
		case c < 0x20:
			return "", i, errAt(i, ErrSyntax, "", "control character in string")
		}
	}
	return "", len(s), errAt(pos, ErrSyntax, "", "unterminated string")
}

// parseEscapedString is parseString's path for strings with escapes.
func parseEscapedString(s string, pos int) (string, int, *DecodeError) {
	// Find the end first so that one allocation holds the result: decoding
	// never makes a string longer.
	end := -1
	for i := pos + 1; i < len(s); i++ {
		if c := s[i]; c == '"' {
			end = i
			break
		} else if c == '\\' {
			i++
		} else if c < 0x20 {
			return "", i, errAt(i, ErrSyntax, "", "control character in string")
		}
	}
	if end < 0 {
		return "", len(s), errAt(pos, ErrSyntax, "", "unterminated string")
	}
	var b strings.Builder
	b.Grow(end - pos - 1)
	for i := pos + 1; i < end; i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case '"', '\\', '/':
			b.WriteByte(s[i])
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4(s, i+1, end)
			if !ok {
				return "", end + 1, errAt(i-1, ErrSyntax, "", `invalid \u escape`)
			}
			i += 4
			if utf16.IsSurrogate(r) {
				var r2 rune = -1
				if i+2 < end && s[i+1] == '\\' && s[i+2] == 'u' {
					r2, _ = hex4(s, i+3, end)
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return "", end + 1, errAt(i-5, ErrSyntax, "", "lone surrogate in \\u escape")
				}
				i += 6
			}
			b.WriteRune(r)
		default:
			return "", end + 1, errAt(i-1, ErrSyntax, "", "invalid escape \\ before "+quoteByte(s[i]))
		}
	}
	return b.String(), end + 1, nil
}

// hex4 decodes the 4 hex digits at s[i:i+4], which must end before end.
func hex4(s string, i, end int) (rune, bool) {
	if i+4 > end {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// AppendJSON appends p as one JSON object (no trailing newline) and returns
// the extended slice:
//
//	{"measurement":"cpu","tags":{"host":"a"},"fields":{"usage":0.5},"time":1700000000000000000}
//
// Tags and fields are written in slice order, "tags" is omitted when there
// are none and "time" when it is 0. Numbers are formatted as encoding/json
// formats float64s, which parses back to the same value. The output decodes
// back to p when p is valid; AppendJSON does not check, but always writes
// valid JSON (invalid UTF-8 becomes U+FFFD, non-finite values null). It
// does not allocate when dst has enough capacity.
func AppendJSON(dst []byte, p *Point) []byte {
	dst = append(dst, `{"measurement":`...)
	dst = appendJSONString(dst, p.Measurement)
	if len(p.Tags) > 0 {
		dst = append(dst, `,"tags":{`...)
		for i := range p.Tags {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, p.Tags[i].Key)
			dst = append(dst, ':')
			dst = appendJSONString(dst, p.Tags[i].Value)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"fields":{`...)
	for i := range p.Fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, p.Fields[i].Key)
		dst = append(dst, ':')
		dst = appendJSONFloat(dst, p.Fields[i].Value)
	}
	dst = append(dst, '}')
	if p.Time != 0 {
		dst = append(dst, `,"time":`...)
		dst = strconv.AppendInt(dst, p.Time, 10)
	}
	return append(dst, '}')
}

// AppendJSONArray appends ps as one JSON array of AppendJSON objects.
func AppendJSONArray(dst []byte, ps []Point) []byte {
	dst = append(dst, '[')
	for i := range ps {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSON(dst, &ps[i])
	}
	return append(dst, ']')
}

// appendJSONFloat formats v like encoding/json: plain decimals for
// 1e-6 <= |v| < 1e21, exponent form otherwise.
func appendJSONFloat(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, "null"...)
	}
	format := byte('f')
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, v, format, -1, 64)
	if format == 'e' {
		// Shorten e-09 to e-9, as encoding/json does.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendJSONString appends s as a JSON string, escaping '"', '\\' and
// control characters and replacing invalid UTF-8 with U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[last:i]...)
				dst = append(dst, `\ufffd`...)
				last = i + 1
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[last:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		last = i
	}
	dst = append(dst, s[last:]...)
	return append(dst, '"')
}
