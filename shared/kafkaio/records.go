package kafkaio

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"time"
	"unsafe"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// recordSet decodes the record batches (format v2, the only one Kafka 3.0
// and later store) of one partition's fetch response into messages whose
// keys, values and headers alias the response: nothing is copied or
// allocated per message. They are valid until the response's buffer is
// reused (see Handler).
type recordSet struct {
	topic         string
	partition     int
	highWaterMark int64
	from          int64           // the fetch offset: a batch may begin before it
	msgs          []kafka.Message // decoded so far
	headers       []kafka.Header  // backing store of their headers
}

// batchHeaderSize is a record batch's fixed part, from the base offset to
// the record count.
const batchHeaderSize = 61

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record batch attributes.
const (
	attrCompression   = 0x07
	attrLogAppendTime = 0x08
	attrControl       = 0x20
)

// decode appends the messages of records at or after rs.from to rs.msgs,
// and returns the offset to fetch next: past the last complete batch
// appended, including records a compaction removed and transaction markers.
// No message of a batch that fails to decode is appended. A batch cut off
// at the end of the response (the broker fills up to the fetch's size) is
// left for the next fetch; a response with no complete batch at all is an
// error, since fetching again would return the same.
func (rs *recordSet) decode(records []byte) (int64, error) {
	next := rs.from
	for len(records) >= 12 {
		baseOffset := int64(binary.BigEndian.Uint64(records))
		size := 12 + int(int32(binary.BigEndian.Uint32(records[8:])))
		if size < batchHeaderSize {
			return next, fmt.Errorf("record batch at offset %d: length %d is too short", baseOffset, size)
		}
		if size > len(records) {
			break
		}
		batch := records[:size]
		records = records[size:]
		n := len(rs.msgs)
		if err := rs.decodeBatch(batch); err != nil {
			rs.msgs = rs.msgs[:n]
			return next, fmt.Errorf("record batch at offset %d: %w", baseOffset, err)
		}
		lastOffsetDelta := int64(int32(binary.BigEndian.Uint32(batch[23:])))
		next = max(next, baseOffset+lastOffsetDelta+1)
	}
	if next == rs.from && len(records) > 0 {
		return next, fmt.Errorf("fetch at offset %d: %d bytes hold no complete record batch", rs.from, len(records))
	}
	return next, nil
}

func (rs *recordSet) decodeBatch(batch []byte) error {
	if magic := batch[16]; magic != 2 {
		return fmt.Errorf("record format v%d: only v2 is supported", magic)
	}
	if want, got := binary.BigEndian.Uint32(batch[17:]), crc32.Checksum(batch[21:], castagnoli); want != got {
		return fmt.Errorf("CRC mismatch (stored %08x, computed %08x)", want, got)
	}
	attrs := binary.BigEndian.Uint16(batch[21:])
	if attrs&attrControl != 0 {
		return nil // a transaction marker, not a message
	}
	baseOffset := int64(binary.BigEndian.Uint64(batch))
	lastOffset := baseOffset + int64(int32(binary.BigEndian.Uint32(batch[23:])))
	baseTime := int64(binary.BigEndian.Uint64(batch[27:]))
	maxTime := int64(binary.BigEndian.Uint64(batch[35:]))
	count := int(int32(binary.BigEndian.Uint32(batch[57:])))
	body := batch[batchHeaderSize:]
	if codec := compress.Compression(attrs & attrCompression); codec != compress.None {
		var err error
		if body, err = decompress(codec, body); err != nil {
			return err
		}
	}
	r := wireReader{b: body}
	for i := 0; i < count; i++ {
		rec := wireReader{b: r.take(int(r.varint()))}
		rec.take(1) // attributes, unused
		ts := baseTime + rec.varint()
		if attrs&attrLogAppendTime != 0 {
			ts = maxTime
		}
		offset := baseOffset + rec.varint()
		key := rec.varBytes()
		value := rec.varBytes()
		n := int(rec.varint())
		if n < 0 || n > len(rec.b) { // a header takes at least 2 bytes
			rec.fail()
			n = 0
		}
		if cap(rs.headers)-len(rs.headers) < n {
			// Room for this batch's remaining records, if they carry as many
			// headers as this one (bounded by the bytes they could be read
			// from), and for a response as large next time the array is
			// reused. Earlier messages keep the old array: nothing is copied.
			rs.headers = make([]kafka.Header, 0, max(min(n*(count-i), n+len(r.b)/2), 2*cap(rs.headers)))
		}
		h0 := len(rs.headers)
		for range n {
			k := rec.varBytes()
			rs.headers = append(rs.headers, kafka.Header{Key: aliasString(k), Value: rec.varBytes()})
		}
		if err := cmp.Or(r.err, rec.err); err != nil {
			return fmt.Errorf("record %d of %d: %w", i, count, err)
		}
		if offset > lastOffset || len(rs.msgs) > 0 && offset <= rs.msgs[len(rs.msgs)-1].Offset {
			return fmt.Errorf("record %d of %d: offset %d out of order", i, count, offset)
		}
		if offset < rs.from {
			continue
		}
		var headers []kafka.Header
		if n > 0 {
			headers = rs.headers[h0:len(rs.headers):len(rs.headers)]
		}
		// Built in place: a message is 152 bytes.
		rs.msgs = append(rs.msgs, kafka.Message{})
		rs.msgs[len(rs.msgs)-1] = kafka.Message{Topic: rs.topic, Partition: rs.partition, Offset: offset,
			HighWaterMark: rs.highWaterMark, Key: key, Value: value, Headers: headers, Time: messageTime(ts)}
	}
	return nil
}

// decompress returns body decompressed into a buffer of its own, refusing
// to inflate it beyond maxResponseSize.
func decompress(c compress.Compression, body []byte) ([]byte, error) {
	codec := c.Codec()
	if codec == nil {
		return nil, fmt.Errorf("unknown compression codec %d", c)
	}
	zr := codec.NewReader(bytes.NewReader(body))
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, maxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", codec.Name(), err)
	}
	if len(out) > maxResponseSize {
		return nil, fmt.Errorf("%s: decompresses to more than %d bytes", codec.Name(), maxResponseSize)
	}
	return out, nil
}

// messageTime converts a record's timestamp (milliseconds; -1 when the
// producer set none) as kafka-go does: the zero time when unset.
func messageTime(ms int64) time.Time {
	if ms < 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// aliasString returns b as a string without copying it, valid as long as
// b's bytes are.
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
