package point

import (
	"bytes"
	"strconv"
	"strings"
	"unsafe"
)

// Format identifies a wire format of points.
type Format uint8

// The wire formats; the zero Format is not a format.
const (
	// FormatLine is InfluxDB line protocol.
	FormatLine Format = iota + 1
	// FormatJSON is the JSON form described in the package documentation.
	FormatJSON
)

// String returns "line-protocol" or "json", or "Format(n)" for other values.
func (f Format) String() string {
	switch f {
	case FormatLine:
		return "line-protocol"
	case FormatJSON:
		return "json"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// ContentType returns the content type producers should put in the Kafka
// message header: "application/vnd.influx.line-protocol" for FormatLine,
// "application/json" for FormatJSON and "" for other values.
func (f Format) ContentType() string {
	switch f {
	case FormatLine:
		return contentTypeLine
	case FormatJSON:
		return contentTypeJSON
	}
	return ""
}

const (
	contentTypeLine = "application/vnd.influx.line-protocol"
	contentTypeJSON = "application/json"
)

// ParseContentType maps a content-type header to a Format. The media type is
// compared case-insensitively and parameters such as "; charset=utf-8" are
// ignored. "application/json" is FormatJSON; "text/plain",
// "application/vnd.influx.line-protocol", "application/x-influx-line-protocol"
// and "text/x-influx-line-protocol" are FormatLine. It reports false for an
// empty or unknown type.
func ParseContentType(ct string) (Format, bool) {
	switch ct { // what producers send, read for every message
	case contentTypeLine:
		return FormatLine, true
	case contentTypeJSON:
		return FormatJSON, true
	}
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	switch {
	case strings.EqualFold(ct, "application/json"):
		return FormatJSON, true
	case strings.EqualFold(ct, "application/vnd.influx.line-protocol"),
		strings.EqualFold(ct, "text/plain"),
		strings.EqualFold(ct, "application/x-influx-line-protocol"),
		strings.EqualFold(ct, "text/x-influx-line-protocol"):
		return FormatLine, true
	}
	return 0, false
}

// Detect guesses the format of a payload from its first byte that is not
// ASCII white space: '{' or '[' means FormatJSON, anything else (including
// an empty or all-blank payload) FormatLine. A line-protocol measurement that
// starts with '{' or '[' is therefore misdetected; producers of such names
// must set the content type.
func Detect(payload []byte) Format {
	i := 0
	for i < len(payload) && isJSONSpace(payload[i]) {
		i++
	}
	if i < len(payload) && (payload[i] == '{' || payload[i] == '[') {
		return FormatJSON
	}
	return FormatLine
}

// DefaultMaxMessageBytes is the message size limit of a Decoder whose
// MaxMessageBytes is not positive: 1 MiB, the default max.message.bytes of
// a Kafka broker.
const DefaultMaxMessageBytes = 1 << 20

// Decoder decodes messages of points. The zero value is ready to use. A
// Decoder has no mutable state, so one value may be used by any number of
// goroutines at once.
type Decoder struct {
	// MaxMessageBytes bounds the payload length; longer payloads fail with
	// ErrTooLarge before any parsing. Zero or negative means
	// DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Alias makes the decoded strings refer to the payload rather than to
	// a copy of it, saving an allocation and a copy per payload. Set it
	// only when the payload is never modified afterwards, as with the
	// Value of a message read from Kafka.
	Alias bool
	// Arena, when set, holds the decoded points' Tags and Fields instead of
	// two arrays allocated per payload. A Decoder with an Arena must not be
	// used by several goroutines at once.
	Arena *Arena
}

// Arena holds the Tags and Fields of decoded points for a caller that
// drops them all together, such as a consumer once it wrote a batch. The
// decoders collect into it directly, so it also spares them the copy out of
// their stack scratch.
type Arena struct {
	tags    []Tag
	fields  []Field
	spans   []span
	strKeys []string
	seen    map[string]struct{}
}

// Reset makes the arena's memory reusable: the points decoded into it
// before must no longer be used.
func (a *Arena) Reset() { a.tags, a.fields = a.tags[:0], a.fields[:0] }

// scratch collects a payload's tags and fields after those of the points
// decoded before.
func (a *Arena) scratch() scratch {
	return scratch{tags: a.tags, fields: a.fields, spans: a.spans[:0], strKeys: a.strKeys, seen: a.seen}
}

// keep gives the points a decoder appended to dst, out[len(dst):], their
// tags and fields, which stay in the arena, and keeps sc's grown arrays for
// the next payload. On e it returns dst and e, and the arena is as before.
func (a *Arena) keep(dst, out []Point, sc scratch, e *DecodeError) ([]Point, error) {
	if e != nil {
		clear(out[len(dst):]) // drop references into the payload
		return dst, e
	}
	sc.attach(out[len(dst):], sc.tags, sc.fields)
	// Earlier points' slices have capped capacity: appending after them
	// leaves them alone.
	a.tags, a.fields, a.spans, a.strKeys, a.seen = sc.tags, sc.fields, sc.spans, sc.strKeys, sc.seen
	return out, nil
}

// text returns payload as the string the decoded points refer to.
func (d Decoder) text(payload []byte) string {
	if d.Alias {
		return unsafe.String(unsafe.SliceData(payload), len(payload))
	}
	return string(payload)
}

func (d Decoder) maxBytes() int {
	if d.MaxMessageBytes > 0 {
		return d.MaxMessageBytes
	}
	return DefaultMaxMessageBytes
}

// tooLarge returns the ErrTooLarge error for payload, or nil.
func (d Decoder) tooLarge(f Format, payload []byte) *DecodeError {
	limit := d.maxBytes()
	if len(payload) <= limit {
		return nil
	}
	e := errAt(limit, ErrTooLarge, "", "message is "+strconv.Itoa(len(payload))+" bytes, limit is "+strconv.Itoa(limit))
	e.Format = f
	if f == FormatLine {
		e.Line = 1 + bytes.Count(payload[:limit], []byte{'\n'})
	}
	return e
}

// Decode appends the points in payload to dst and returns the extended
// slice. ct is the message's content-type header; "" means the format is
// chosen by Detect, and a type ParseContentType does not know fails with
// ErrUnknownContentType.
//
// On error Decode returns dst unchanged in length (a message is decoded
// entirely or not at all) and a *DecodeError wrapping one sentinel error.
//
// Decode does not retain payload (unless Alias): the strings of the
// returned points are substrings of one copy of it, so the caller may reuse
// payload at once, and keeping any string of a point keeps the whole copy
// alive. The Tags and Fields of all points of one message are sub-slices
// (with capped capacity) of two shared arrays, or of the Arena;
// Point.Clone detaches a point's slices.
func (d Decoder) Decode(dst []Point, payload []byte, ct string) ([]Point, error) {
	f, ok := ParseContentType(ct)
	switch {
	case ct == "":
		f = Detect(payload)
	case !ok:
		return dst, errAt(0, ErrUnknownContentType, "", strconv.Quote(ct))
	}
	if f == FormatJSON {
		return d.DecodeJSON(dst, payload)
	}
	return d.DecodeLine(dst, payload)
}

// finish gives the points a decoder appended to dst, out[len(dst):], their
// tags and fields, which it collected in sc, from two exactly sized arrays.
// Copying out of the scratch arrays is what lets them live on the decoder's
// stack. On e it returns dst and e.
func (sc scratch) finish(dst, out []Point, e *DecodeError) ([]Point, error) {
	if e != nil {
		clear(out[len(dst):]) // drop references into the payload
		return dst, e
	}
	var tags []Tag
	if len(sc.tags) > 0 {
		tags = append([]Tag(nil), sc.tags...)
	}
	sc.attach(out[len(dst):], tags, append([]Field(nil), sc.fields...))
	return out, nil
}

// attach gives pts, one per span of sc, their tags and fields from tags and
// fields, which hold sc's at the same indices.
func (sc scratch) attach(pts []Point, tags []Tag, fields []Field) {
	for i, sp := range sc.spans {
		p := &pts[i]
		if sp.t1 > sp.t0 {
			p.Tags = tags[sp.t0:sp.t1:sp.t1]
		}
		p.Fields = fields[sp.f0:sp.f1:sp.f1]
	}
}

// Stack capacities of the decoders' scratch arrays: a message of up to
// this many points, tags and fields decodes with no allocation beyond the
// payload copy and the two result arrays. Larger messages grow the scratch
// on the heap. The arrays are zeroed on every call, so bigger is not free:
// together they take 1.5 KiB.
const (
	stackTags   = 16
	stackFields = 32
	stackSpans  = 8
)

// span locates one decoded point's tags and fields in the scratch arrays.
type span struct{ t0, t1, f0, f1 int }

// scratchBufs are the stack arrays of a decode without an Arena. DecodeLine
// and DecodeJSON each call their parser directly: handed to a shared helper
// as a function value, the parser would move the arrays to the heap.
type scratchBufs struct {
	tags   [stackTags]Tag
	fields [stackFields]Field
	spans  [stackSpans]span
}

func (b *scratchBufs) scratch() scratch {
	return scratch{tags: b.tags[:0], fields: b.fields[:0], spans: b.spans[:0]}
}

// scratch collects the tags and fields of one message while it is decoded.
// It is passed and returned by value, never by pointer, so that the escape
// analysis can keep its initial arrays on the stack.
type scratch struct {
	tags   []Tag
	fields []Field
	spans  []span
	// strKeys holds the keys of the current line's skipped string fields,
	// for duplicate detection.
	strKeys []string
	// seen indexes the current point's keys once there are too many to
	// compare linearly (see dupTag).
	seen map[string]struct{}
}
