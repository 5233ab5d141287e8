package point

import (
	"math"
	"strconv"
	"strings"
)

// DecodeLine is Decode for a line-protocol payload (see the package
// documentation for the accepted dialect). Errors report the 1-based line
// and the byte offset in payload.
func (d Decoder) DecodeLine(dst []Point, payload []byte) ([]Point, error) {
	if e := d.tooLarge(FormatLine, payload); e != nil {
		return dst, e
	}
	s := d.text(payload)
	if a := d.Arena; a != nil {
		out, sc, e := parseLines(s, dst, a.scratch())
		return a.keep(dst, out, sc, e.locate(FormatLine, s))
	}
	var bufs scratchBufs
	out, sc, e := parseLines(s, dst, bufs.scratch())
	return sc.finish(dst, out, e.locate(FormatLine, s))
}

// parseLines appends the points of the line-protocol payload s to dst,
// their tags and fields to sc. On error it returns the points appended so
// far for the caller to clear. One function for the whole payload: a call
// per line, passing the scratch in and out, took a sixth of the time of a
// short line.
func parseLines(s string, dst []Point, sc scratch) ([]Point, scratch, *DecodeError) {
	out := dst
	pos := 0
	stringOnly := -1 // offset of the first line skipped for having only string fields
	for {
		pos = skipBlank(s, pos)
		if pos == len(s) {
			break
		}
		var p Point
		start := pos
		p.Measurement, pos = scanName(s, pos, false)
		if r := nameProblem(p.Measurement, kindMeasurement); r != "" {
			return out, sc, errAt(start, ErrInvalidName, "", "measurement "+r)
		}

		t0 := len(sc.tags)
		for pos < len(s) && s[pos] == ',' {
			pos++
			kStart := pos
			var k, v string
			var e *DecodeError
			if k, pos, e = scanKey(s, pos, "tag"); e != nil {
				return out, sc, e
			}
			var dup bool
			if dup, sc.seen = dupTag(sc.tags[t0:], k, sc.seen); dup {
				return out, sc, errAt(kStart, ErrDuplicateKey, k, "tag given twice")
			}
			pos++
			vStart := pos
			v, pos = scanName(s, pos, true)
			if pos < len(s) && s[pos] == '=' {
				return out, sc, errAt(pos, ErrSyntax, k, "unescaped '=' in tag value")
			}
			if r := nameProblem(v, kindValue); r != "" {
				return out, sc, errAt(vStart, ErrInvalidName, k, "tag value "+r)
			}
			sc.tags = append(sc.tags, Tag{Key: k, Value: v})
		}

		// scanName stopped at a space or a line end: names end at nothing else.
		pos = skipSpaces(s, pos)
		if atEOL(s, pos) {
			return out, sc, errAt(pos, ErrNoFields, "", "missing fields")
		}

		f0 := len(sc.fields)
		sc.strKeys = sc.strKeys[:0]
		for {
			kStart := pos
			var k string
			var e *DecodeError
			if k, pos, e = scanKey(s, pos, "field"); e != nil {
				return out, sc, e
			}
			var dup bool
			if dup, sc.seen = dupField(sc.fields[f0:], sc.strKeys, k, sc.seen); dup {
				return out, sc, errAt(kStart, ErrDuplicateKey, k, "field given twice")
			}
			pos++
			vStart := pos
			if pos < len(s) && s[pos] == '"' {
				var ok bool
				if pos, ok = skipString(s, pos); !ok {
					return out, sc, errAt(vStart, ErrSyntax, k, "unterminated string field value")
				}
				// String fields are not metrics: skip them, but keep the key
				// for duplicate detection.
				sc.strKeys = append(sc.strKeys, k)
			} else {
				end := pos
				for end < len(s) && s[end] != ',' && s[end] != ' ' && s[end] != '\n' && s[end] != '\r' {
					end++
				}
				v, reason, err := parseFieldValue(s[pos:end])
				if err != nil {
					return out, sc, errAt(vStart, err, k, reason)
				}
				sc.fields = append(sc.fields, Field{Key: k, Value: v})
				pos = end
			}
			if pos < len(s) && s[pos] == ',' {
				pos++
				continue
			}
			break
		}

		switch {
		case pos < len(s) && s[pos] == ' ':
			pos = skipSpaces(s, pos)
			if atEOL(s, pos) {
				break
			}
			tStart := pos
			var ok bool
			if p.Time, pos, ok = parseTimestamp(s, pos); !ok {
				return out, sc, errAt(tStart, ErrSyntax, "", "invalid timestamp "+strconv.Quote(s[tStart:pos]))
			}
			pos = skipSpaces(s, pos)
			if !atEOL(s, pos) {
				return out, sc, errAt(pos, ErrSyntax, "", "unexpected text after timestamp")
			}
		case !atEOL(s, pos):
			return out, sc, errAt(pos, ErrSyntax, "", "unexpected "+quoteByte(s[pos])+" after field value")
		}
		pos = skipEOL(s, pos)
		if len(sc.fields) == f0 {
			// Only string fields (Telegraf's uptime_format, say): the line
			// carries no metric.
			sc.tags = sc.tags[:t0]
			if stringOnly < 0 {
				stringOnly = start
			}
			continue
		}
		sortTags(sc.tags[t0:])
		sc.spans = append(sc.spans, span{t0: t0, t1: len(sc.tags), f0: f0, f1: len(sc.fields)})
		out = append(out, p)
	}
	if len(out) == len(dst) {
		if stringOnly >= 0 {
			return out, sc, errAt(stringOnly, ErrNoFields, "", "every line has only string fields")
		}
		return out, sc, errAt(len(s), ErrEmpty, "", "")
	}
	return out, sc, nil
}

// skipBlank skips spaces, tabs, empty lines and comment lines from pos and
// returns the start of the next point or len(s).
func skipBlank(s string, pos int) int {
	for pos < len(s) {
		switch s[pos] {
		case ' ', '\t', '\n':
			pos++
		case '\r':
			if !atEOL(s, pos) {
				return pos // a lone CR; parseLine rejects it
			}
			pos++
		case '#':
			i := strings.IndexByte(s[pos:], '\n')
			if i < 0 {
				return len(s)
			}
			pos += i + 1
		default:
			return pos
		}
	}
	return pos
}

// atEOL reports whether pos is at the end of a line: the end of s, "\n",
// "\r\n" or a "\r" that ends s.
func atEOL(s string, pos int) bool {
	if pos >= len(s) {
		return true
	}
	switch s[pos] {
	case '\n':
		return true
	case '\r':
		return pos+1 == len(s) || s[pos+1] == '\n'
	}
	return false
}

// skipEOL returns the position after the line end at pos (see atEOL).
func skipEOL(s string, pos int) int {
	if pos < len(s) && s[pos] == '\r' {
		pos++
	}
	if pos < len(s) && s[pos] == '\n' {
		pos++
	}
	return pos
}

func skipSpaces(s string, pos int) int {
	for pos < len(s) && s[pos] == ' ' {
		pos++
	}
	return pos
}

// scanKey scans the tag or field key (what) at pos, which must be valid
// and followed by '=', and returns it with the position of the '='.
func scanKey(s string, pos int, what string) (string, int, *DecodeError) {
	start := pos
	k, pos := scanName(s, pos, true)
	if k == "" {
		return k, pos, errAt(start, ErrInvalidName, "", what+" key is empty")
	}
	if pos >= len(s) || s[pos] != '=' {
		return k, pos, errAt(pos, ErrSyntax, k, "expected '=' after "+what+" key")
	}
	if r := nameProblem(k, kindKey); r != "" {
		return k, pos, errAt(start, ErrInvalidName, k, what+" key "+r)
	}
	return k, pos, nil
}

// escapable reports whether a backslash before c escapes it: ',' and ' '
// everywhere, '=' in keys and tag values (eq).
func escapable(c byte, eq bool) bool {
	return c == ',' || c == ' ' || (eq && c == '=')
}

// scanName scans a measurement (eq false) or a tag key, tag value or field
// key (eq true) from pos. It stops at an unescaped ',' or ' ', an unescaped
// '=' when eq, or a line end, and returns the unescaped name and the stop
// position. A backslash that does not escape the next byte is literal.
func scanName(s string, pos int, eq bool) (string, int) {
	start := pos
	escaped := false
loop:
	for pos < len(s) {
		switch c := s[pos]; c {
		case ',', ' ', '\n':
			break loop
		case '=':
			if eq {
				break loop
			}
		case '\r':
			if atEOL(s, pos) {
				break loop
			}
		case '\\':
			if pos+1 < len(s) && escapable(s[pos+1], eq) {
				escaped = true
				pos++
			}
		}
		pos++
	}
	if !escaped {
		return s[start:pos], pos
	}
	raw := s[start:pos]
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' && i+1 < len(raw) && escapable(raw[i+1], eq) {
			i++
		}
		b.WriteByte(raw[i])
	}
	return b.String(), pos
}

// quoteByte quotes c for an error message.
func quoteByte(c byte) string {
	if c < 0x80 {
		return strconv.QuoteRune(rune(c))
	}
	return "byte 0x" + strconv.FormatUint(uint64(c), 16)
}

// skipString skips the double-quoted string field value at s[pos] and
// returns the position after its closing quote. A backslash escapes any
// byte; the value may span lines.
func skipString(s string, pos int) (int, bool) {
	for i := pos + 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return len(s), false
}

// parseFieldValue parses a float, integer, unsigned or boolean field value.
// On failure it returns the sentinel and a reason.
func parseFieldValue(tok string) (v float64, reason string, err error) {
	if tok == "" {
		return 0, "missing field value", ErrSyntax
	}
	if v, ok := parseDecimal(tok); ok {
		return v, "", nil
	}
	switch tok {
	case "t", "T", "true", "True", "TRUE":
		return 1, "", nil
	case "f", "F", "false", "False", "FALSE":
		return 0, "", nil
	}
	switch last := tok[len(tok)-1]; {
	case last == 'i' && isInt(tok[:len(tok)-1], true):
		n, err := strconv.ParseInt(tok[:len(tok)-1], 10, 64)
		if err != nil {
			return 0, "integer " + tok + " out of range", ErrSyntax
		}
		return float64(n), "", nil
	case last == 'u' && isInt(tok[:len(tok)-1], false):
		n, err := strconv.ParseUint(tok[:len(tok)-1], 10, 64)
		if err != nil {
			return 0, "unsigned integer " + tok + " out of range", ErrSyntax
		}
		return float64(n), "", nil
	case isFloat(tok):
		f, err := strconv.ParseFloat(tok, 64)
		if err != nil {
			// Well-formed, so the only failure is overflow to ±Inf.
			return 0, tok + " overflows float64", ErrNonFinite
		}
		return f, "", nil
	}
	if isNonFiniteWord(tok) {
		return 0, tok, ErrNonFinite
	}
	return 0, "invalid field value " + strconv.Quote(tok), ErrSyntax
}

// parseDecimal parses the common field value [-]digits[.digits][e[±]digits]
// of at most 15 digits and a power of ten within ±22, exactly and about
// four times faster than strconv.ParseFloat: the digits and the power of
// ten are both exact float64s, so one correctly rounded multiplication or
// division gives the correctly rounded value (Clinger's fast path).
func parseDecimal(t string) (float64, bool) {
	i := 0
	neg := t != "" && t[0] == '-'
	if neg {
		i = 1
	}
	var mant uint64
	n, dot := 0, -1 // digits, and digits before the '.'
	for ; i < len(t) && t[i] != 'e' && t[i] != 'E'; i++ {
		if t[i] == '.' && dot < 0 {
			dot = n
			continue
		}
		d := t[i] - '0'
		if d > 9 || n == 15 {
			return 0, false
		}
		mant = mant*10 + uint64(d)
		n++
	}
	if n == 0 {
		return 0, false
	}
	exp := 0
	if dot >= 0 {
		exp = dot - n
	}
	if i < len(t) { // an exponent
		i++
		eneg := i < len(t) && t[i] == '-'
		if i < len(t) && (t[i] == '-' || t[i] == '+') {
			i++
		}
		if i == len(t) || len(t)-i > 2 {
			return 0, false
		}
		e := 0
		for ; i < len(t); i++ {
			d := t[i] - '0'
			if d > 9 {
				return 0, false
			}
			e = e*10 + int(d)
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	v := float64(mant)
	switch {
	case exp < -len(pow10)+1 || exp > len(pow10)-1:
		return 0, false
	case exp < 0:
		v /= pow10[-exp]
	default:
		v *= pow10[exp]
	}
	if neg {
		v = -v
	}
	return v, true
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [23]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
	1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// isNonFiniteWord reports whether tok spells NaN or infinity the way
// strconv.ParseFloat accepts it, so that the error can say what it is.
func isNonFiniteWord(tok string) bool {
	if tok != "" && (tok[0] == '+' || tok[0] == '-') {
		tok = tok[1:]
	}
	return strings.EqualFold(tok, "nan") || strings.EqualFold(tok, "inf") || strings.EqualFold(tok, "infinity")
}

// isInt reports whether t is [-]digits ('-' only when signed).
func isInt(t string, signed bool) bool {
	if signed && t != "" && t[0] == '-' {
		t = t[1:]
	}
	return t != "" && digits(t, 0) == len(t)
}

// digits returns the position after the run of ASCII digits at t[i].
func digits(t string, i int) int {
	for i < len(t) && '0' <= t[i] && t[i] <= '9' {
		i++
	}
	return i
}

// isFloat reports whether t is a line-protocol float:
// [-] (digits [. [digits]] | . digits) [(e|E) [+|-] digits].
func isFloat(t string) bool {
	i := 0
	if i < len(t) && t[i] == '-' {
		i++
	}
	j := digits(t, i)
	n := j - i
	if j < len(t) && t[j] == '.' {
		k := digits(t, j+1)
		n += k - j - 1
		j = k
	}
	if n == 0 {
		return false
	}
	if j < len(t) && (t[j] == 'e' || t[j] == 'E') {
		j++
		if j < len(t) && (t[j] == '+' || t[j] == '-') {
			j++
		}
		k := digits(t, j)
		if k == j {
			return false
		}
		j = k
	}
	return j == len(t)
}

// parseTimestamp parses the timestamp at s[pos], [-]digits as int64
// nanoseconds, up to the next space or line end, in one pass: every line
// has one. It returns the position after it.
func parseTimestamp(s string, pos int) (t int64, end int, ok bool) {
	neg := pos < len(s) && s[pos] == '-'
	if neg {
		pos++
	}
	start := pos
	var n uint64
	for ; pos < len(s); pos++ {
		d := s[pos] - '0'
		if d > 9 {
			break
		}
		n = n*10 + uint64(d)
	}
	digits := pos - start
	for pos < len(s) && s[pos] != ' ' && s[pos] != '\n' && s[pos] != '\r' {
		pos++
	}
	// 19 digits cannot overflow a uint64.
	if digits == 0 || digits > 19 || pos != start+digits {
		return 0, pos, false
	}
	switch {
	case neg && n <= 1<<63:
		return int64(-n), pos, true // -(1<<63) wraps to the minimum, as it should
	case !neg && n <= math.MaxInt64:
		return int64(n), pos, true
	}
	return 0, pos, false
}

// AppendLine appends p as one line of line protocol, terminated by '\n',
// and returns the extended slice. Tags are written sorted, fields in slice
// order, values in the shortest form that parses back to the same float64
// (so 3 is written "3", not "3i"), and the timestamp is omitted when Time is
// 0. The output decodes back to p when p is valid; AppendLine does not check.
// It does not allocate when dst has enough capacity.
func AppendLine(dst []byte, p *Point) []byte {
	dst, _ = AppendLineKeyed(dst, p)
	return dst
}

// AppendLineKeyed is AppendLine that also returns where the series key
// ends: the appended line begins with p's series key (AppendSeriesKey, tags
// sorted whatever their order in p), keyEnd bytes into dst, so a producer
// gets key and value from one encoding.
func AppendLineKeyed(dst []byte, p *Point) (line []byte, keyEnd int) {
	dst = appendEscaped(dst, p.Measurement, false)
	dst = appendTags(dst, p.Tags)
	keyEnd = len(dst)
	for i := range p.Fields {
		if i == 0 {
			dst = append(dst, ' ')
		} else {
			dst = append(dst, ',')
		}
		dst = appendEscaped(dst, p.Fields[i].Key, true)
		dst = append(dst, '=')
		dst = strconv.AppendFloat(dst, p.Fields[i].Value, 'g', -1, 64)
	}
	if p.Time != 0 {
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, p.Time, 10)
	}
	return append(dst, '\n'), keyEnd
}

// AppendLines appends each of ps with AppendLine.
func AppendLines(dst []byte, ps []Point) []byte {
	for i := range ps {
		dst = AppendLine(dst, &ps[i])
	}
	return dst
}

// appendEscaped appends s with a backslash before each ',' and ' ' and, when
// eq, each '='. Other backslashes need no escape: valid names never end
// with one, so a backslash is always followed by a byte it does not escape
// or by an escaped byte.
func appendEscaped(dst []byte, s string, eq bool) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; escapable(c, eq) {
			dst = append(dst, s[last:i]...)
			dst = append(dst, '\\', c)
			last = i + 1
		}
	}
	return append(dst, s[last:]...)
}
