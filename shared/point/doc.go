// Package point is the metric point model of metricpipe and its two wire
// formats, InfluxDB line protocol and a JSON form. This comment is the
// wire-format specification for producers.
//
// Every Kafka message on a metricpipe topic carries one or more points in one
// of the two formats. The message's content-type header names the format
// ([Format.ContentType], [ParseContentType]); when it is absent the consumer
// looks at the first byte that is not white space: '{' or '[' means JSON,
// anything else line protocol ([Detect]). Producers key messages by the
// series key of their points ([AppendSeriesKey]), so that all points of a
// series land in one partition, in order.
//
// A message is decoded entirely or not at all: one bad point rejects the
// message with a [*DecodeError] that locates the problem, and the consumer
// dead-letters it. Messages longer than [Decoder.MaxMessageBytes] (1 MiB by
// default) and messages without points are rejected too.
//
// # Points
//
// A [Point] has a measurement name, tags (string pairs that, with the
// measurement, identify the series), one or more fields (named float64
// values) and a time in nanoseconds since the Unix epoch. Both formats and
// [Point.Validate] enforce the same rules, so a point decoded from either
// format can always be encoded in both:
//
//   - The measurement, tag keys, tag values and field keys are not empty, are
//     valid UTF-8, contain no ASCII control character (U+0000 to U+001F,
//     U+007F; in particular no newline, carriage return or tab), and do not
//     end with a backslash, which line protocol cannot express.
//   - The measurement does not start with '#' (the line would be a comment).
//   - No tag key or field key is "time", which InfluxDB reserves.
//   - Tag keys are unique, field keys are unique (a tag and a field may share
//     a key). Decoded tags are sorted by key, byte-wise.
//   - Field values are finite: NaN and ±Inf are rejected. Negative zero is
//     kept as it is. Integers are converted to float64, so those beyond ±2^53
//     are rounded.
//   - A time of 0 means "not given": the consumer then uses the Kafka message
//     time. As a consequence a point cannot be stamped exactly at the epoch.
//
// # Line protocol
//
// Content type "application/vnd.influx.line-protocol"; "text/plain",
// "application/x-influx-line-protocol" and "text/x-influx-line-protocol" are
// accepted too. The dialect is InfluxDB line protocol with nanosecond
// timestamps, as specified by the grammar of
// github.com/influxdata/line-protocol/v2, one point per line:
//
//	measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]
//
//	cpu,host=a,region=eu usage=0.5,up=true,n=3i 1700000000000000000
//
// In detail:
//
//   - Lines end with "\n". A "\r" before it, or at the very end of the
//     message, is ignored.
//   - Empty lines and lines whose first character other than spaces and tabs
//     is '#' (comments) are skipped. Spaces and tabs before a point are
//     ignored.
//   - The measurement-and-tags, fields and timestamp sections are separated by
//     one or more spaces; spaces may end a line. There are no spaces around
//     ',' and '='.
//   - Escapes: in the measurement, `\,` and `\ ` stand for a comma and a space;
//     in tag keys, tag values and field keys, `\,`, `\=` and `\ ` stand for
//     a comma, an equals sign and a space. Any other backslash is literal:
//     `a\b` is a\b and `a\\,b` is a\,b. An unescaped '=' in a tag value is an
//     error.
//   - Field values: floats such as "1", "-1.5", "1.", ".5", "1e3", "-2.5E-3"
//     (a leading '+' is not allowed; "NaN", "Inf" and values beyond float64
//     are rejected); integers "12i" and "-3i" (int64); unsigned integers
//     "12u" (uint64); booleans "t", "T", "true", "True", "TRUE" (1) and "f",
//     "F", "false", "False", "FALSE" (0).
//   - String field values ("text", in which a backslash escapes the next
//     byte; they may span lines) are not metrics and are skipped. A line
//     whose fields are all strings (Telegraf's uptime_format) yields no
//     point and is skipped too; a message made only of such lines is an
//     error.
//   - The timestamp is optional: a signed integer of nanoseconds since the
//     Unix epoch.
//
// [AppendLine] writes tags and fields in slice order, each value in the
// shortest float form that parses back to the same float64 (3 becomes "3",
// never "3i"), and omits the timestamp when the time is 0.
//
// # JSON
//
// Content type "application/json". A message holds one point object or an
// array of them:
//
//	{"measurement":"cpu","tags":{"host":"a","region":"eu"},"fields":{"usage":0.5,"up":true,"n":3},"time":1700000000000000000}
//
//	[{"measurement":"cpu","fields":{"usage":0.5}},{"measurement":"mem","fields":{"used":1e9},"time":"2023-11-14T22:13:20.5Z"}]
//
// The members of a point object:
//
//   - "measurement": a string; required.
//   - "tags": an object whose values are strings; optional, null means none.
//   - "fields": an object whose values are numbers or booleans (true is 1,
//     false is 0); required and not empty. Strings, null, objects and arrays
//     are rejected: unlike line protocol, JSON does not skip string fields.
//   - "time": optional. An integer of nanoseconds since the Unix epoch (no
//     fraction or exponent), or an RFC 3339 string with optional fractional
//     seconds between the years 1677 and 2262, or null (not given).
//   - Keys are case-sensitive. Unknown keys, duplicate keys (in the point, in
//     "tags", in "fields") and anything after the top-level value are errors.
//   - Numbers follow the JSON grammar and must fit a float64 (1e999 is
//     rejected). Strings may use every JSON escape, including \uXXXX and
//     surrogate pairs; lone surrogates are rejected.
//   - An empty array holds no points and is rejected like an empty message.
//
// [AppendJSON] writes the keys in the order above, tags and fields in slice
// order, omits "tags" when there are none and "time" when it is 0, and
// formats numbers as encoding/json does.
//
// # Errors
//
// Decoders return a [*DecodeError] holding the format, the line (line
// protocol only), the byte offset in the payload, the key involved and a
// reason; it wraps one sentinel error ([ErrSyntax], [ErrInvalidName],
// [ErrNoFields], ...) for errors.Is.
package point
