package point

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors. Decoders return them wrapped in a *DecodeError and
// Point.Validate wraps them in a plain error; callers branch with errors.Is.
var (
	// ErrSyntax reports input that does not follow the grammar of its
	// format, including unknown JSON keys and data after the JSON value.
	ErrSyntax = errors.New("syntax error")
	// ErrNonFinite reports a field value that is NaN or ±Inf, or a number
	// too large for a float64.
	ErrNonFinite = errors.New("non-finite value")
	// ErrNoFields reports a point without numeric fields.
	ErrNoFields = errors.New("no fields")
	// ErrTooLarge reports a message longer than Decoder.MaxMessageBytes.
	ErrTooLarge = errors.New("message too large")
	// ErrDuplicateKey reports a tag key, field key or JSON object key
	// given twice within one point.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrEmpty reports a message that holds no point.
	ErrEmpty = errors.New("no points in message")
	// ErrInvalidName reports a measurement, tag key, tag value or field
	// key that breaks the naming rules of the package documentation.
	ErrInvalidName = errors.New("invalid name")
	// ErrUnsupportedValue reports a JSON value of the wrong type, such as
	// a string field value or a fractional "time".
	ErrUnsupportedValue = errors.New("unsupported value")
	// ErrUnsortedTags reports tags that are not sorted by key; only
	// Point.Validate returns it, since decoders sort tags themselves.
	// Point.SortTags fixes it.
	ErrUnsortedTags = errors.New("tags not sorted by key")
	// ErrUnknownContentType reports a content type that is neither a
	// line-protocol nor a JSON type (see ParseContentType).
	ErrUnknownContentType = errors.New("unknown content type")
)

// DecodeError describes why a message could not be decoded. It always wraps
// one of the sentinel errors of this package in Err.
type DecodeError struct {
	// Format is the format the message was decoded as; 0 when the
	// content type was not recognised.
	Format Format
	// Line is the 1-based line of Offset for line protocol, 0 for JSON.
	Line int
	// Offset is the byte offset into the whole payload where the problem
	// was found, 0 <= Offset <= len(payload).
	Offset int
	// Field is the tag key, field key or JSON key involved, if any.
	Field string
	// Reason is a human-readable detail, e.g. "expected '=' after field key".
	Reason string
	// Err is one of the sentinel errors.
	Err error
}

// Error formats the error on one line, for example
//
//	line-protocol: line 3, byte 57: key "usage": non-finite value: NaN
//	json: byte 12: key "host": unsupported value: tag values must be strings
func (e *DecodeError) Error() string {
	b := make([]byte, 0, 64+len(e.Field)+len(e.Reason))
	switch e.Format {
	case FormatLine:
		b = append(b, "line-protocol: line "...)
		b = strconv.AppendInt(b, int64(e.Line), 10)
		b = append(b, ", byte "...)
		b = strconv.AppendInt(b, int64(e.Offset), 10)
		b = append(b, ": "...)
	case FormatJSON:
		b = append(b, "json: byte "...)
		b = strconv.AppendInt(b, int64(e.Offset), 10)
		b = append(b, ": "...)
	default:
		b = append(b, "decode: "...)
	}
	if e.Field != "" {
		b = append(b, "key "...)
		b = strconv.AppendQuote(b, e.Field)
		b = append(b, ": "...)
	}
	if e.Err != nil {
		b = append(b, e.Err.Error()...)
	} else {
		b = append(b, "decode error"...)
	}
	if e.Reason != "" {
		b = append(b, ": "...)
		b = append(b, e.Reason...)
	}
	return string(b)
}

// Unwrap returns the sentinel error.
func (e *DecodeError) Unwrap() error { return e.Err }

// errAt builds a *DecodeError without Format and Line; the decoders' entry
// points fill those in (see locate) so that the parsing code stays small.
func errAt(off int, sentinel error, field, reason string) *DecodeError {
	return &DecodeError{Offset: off, Field: field, Reason: reason, Err: sentinel}
}

// locate fills in the format and, for line protocol, the line number of
// e.Offset within s.
func (e *DecodeError) locate(f Format, s string) *DecodeError {
	if e == nil {
		return nil
	}
	e.Format = f
	if f == FormatLine {
		e.Line = 1 + strings.Count(s[:e.Offset], "\n")
	}
	return e
}
