package kafkaio

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
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

	// readCommitted drops the records of aborted transactions: aborted
	// lists the response's, as the broker sent them; active holds the
	// producers whose aborted transaction the batches are inside.
	readCommitted bool
	aborted       []abortedTxn
	active        []int64
	// inflateMax bounds the bytes the response's batches decompress to,
	// together; inflated counts them.
	inflateMax int
	inflated   int
	dec        *decompressor
}

// abortedTxn is an aborted transaction of a fetch response: its producer
// and its first offset.
type abortedTxn struct{ producerID, firstOffset int64 }

// batchHeaderSize is a record batch's fixed part, from the base offset to
// the record count.
const batchHeaderSize = 61

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record batch attributes.
const (
	attrCompression   = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// decode appends the messages of records at or after rs.from to rs.msgs,
// and returns the offset to fetch next: past the last complete batch
// decoded, including records a compaction removed, transaction markers and
// aborted transactions. A batch cut off at the end of the response (the
// broker fills up to the fetch's size) is left for the next fetch; a
// response with no complete batch at all is a *corruptBatchError wrapping
// errIncomplete, since fetching again with the same size would return the
// same. A batch that cannot be decoded ends the response with a
// *corruptBatchError, after the messages of the batches before it. So
// does a compressed batch that would take the response's decompressed
// bytes beyond inflateMax, unless batches before it took some: then
// decoding stops before it, without error, and the next fetch starts
// with it.
func (rs *recordSet) decode(records []byte) (int64, error) {
	next := rs.from
	if rs.readCommitted && len(rs.aborted) > 1 {
		slices.SortFunc(rs.aborted, func(a, b abortedTxn) int { return cmp.Compare(a.firstOffset, b.firstOffset) })
	}
	for len(records) >= 12 {
		baseOffset := int64(binary.BigEndian.Uint64(records))
		size := 12 + int(int32(binary.BigEndian.Uint32(records[8:])))
		if size < batchHeaderSize {
			return next, rs.corrupt(records, nil, next, fmt.Errorf("length %d is too short", size))
		}
		if size > len(records) {
			break
		}
		batch := records[:size]
		records = records[size:]
		n := len(rs.msgs)
		if err := rs.decodeBatch(batch); err != nil {
			rs.msgs = rs.msgs[:n]
			if errors.Is(err, errInflateLimit) && rs.inflated > 0 {
				return next, nil // the rest next time, with a cap of its own
			}
			return next, rs.corrupt(batch, records, next, err)
		}
		lastOffsetDelta := int64(int32(binary.BigEndian.Uint32(batch[23:])))
		next = max(next, baseOffset+lastOffsetDelta+1)
	}
	if next == rs.from && len(records) > 0 {
		return next, rs.corrupt(records, nil, next, fmt.Errorf("larger than the %d bytes fetched: %w", len(records), errIncomplete))
	}
	return next, nil
}

// corrupt returns a corruptBatchError for the batch at the start of batch
// (whole, cut off, or just a few bytes), followed by rest. A skip goes to the next batch's base
// offset when rest holds one, else past the batch's last offset delta; at
// least past next, and no further than the high-water mark.
func (rs *recordSet) corrupt(batch, rest []byte, next int64, err error) *corruptBatchError {
	base := next // a response cut before the base offset names none
	if len(batch) >= 8 {
		base = int64(binary.BigEndian.Uint64(batch))
	}
	to := base + 1
	if len(batch) >= 27 {
		if delta := int32(binary.BigEndian.Uint32(batch[23:])); delta > 0 {
			to = base + int64(delta) + 1
		}
	}
	if len(rest) >= 8 {
		if nb := int64(binary.BigEndian.Uint64(rest)); nb > base {
			to = nb // outside the CRC, but consistent with the framing that found it
		}
	}
	if rs.highWaterMark > next {
		to = min(to, rs.highWaterMark) // a damaged delta must not jump over the log
	}
	return &corruptBatchError{offset: base, next: max(to, next+1), err: err}
}

func (rs *recordSet) decodeBatch(batch []byte) error {
	if magic := batch[16]; magic != 2 {
		return fmt.Errorf("record format v%d: only v2 is supported", magic)
	}
	if want, got := binary.BigEndian.Uint32(batch[17:]), crc32.Checksum(batch[21:], castagnoli); want != got {
		return fmt.Errorf("CRC mismatch (stored %08x, computed %08x)", want, got)
	}
	attrs := binary.BigEndian.Uint16(batch[21:])
	baseOffset := int64(binary.BigEndian.Uint64(batch))
	lastOffset := baseOffset + int64(int32(binary.BigEndian.Uint32(batch[23:])))
	if producerID := int64(binary.BigEndian.Uint64(batch[43:])); rs.readCommitted && producerID >= 0 {
		// As Kafka's consumer does: a transaction of the response's aborted
		// list is aborted from its first offset on, up to its producer's
		// abort marker.
		for len(rs.aborted) > 0 && rs.aborted[0].firstOffset <= lastOffset {
			rs.active = append(rs.active, rs.aborted[0].producerID)
			rs.aborted = rs.aborted[1:]
		}
		if i := slices.Index(rs.active, producerID); i >= 0 {
			if attrs&attrControl != 0 {
				abort, err := rs.abortMarker(batch, attrs)
				if err != nil {
					return err
				}
				if abort {
					rs.active = slices.Delete(rs.active, i, i+1)
				}
				return nil
			}
			if attrs&attrTransactional != 0 {
				return nil // an aborted transaction's records
			}
		}
	}
	if attrs&attrControl != 0 || lastOffset < rs.from {
		return nil // a transaction marker, or wholly before the fetch offset
	}
	baseTime := int64(binary.BigEndian.Uint64(batch[27:]))
	maxTime := int64(binary.BigEndian.Uint64(batch[35:]))
	count := int(int32(binary.BigEndian.Uint32(batch[57:])))
	body, err := rs.body(batch, attrs)
	if err != nil {
		return err
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

// maxInflate bounds the bytes one fetch response decompresses to, so that
// a compression bomb cannot exhaust memory; it is also the largest batch
// the consumers accept decompressed. A 1 MiB response of metric lines
// rarely inflates past 10 MiB.
const maxInflate = 32 << 20

// body returns the batch's records, decompressed within what is left of
// the response's cap.
func (rs *recordSet) body(batch []byte, attrs uint16) ([]byte, error) {
	body := batch[batchHeaderSize:]
	codec := compress.Compression(attrs & attrCompression)
	if codec == compress.None {
		return body, nil
	}
	if rs.dec == nil {
		rs.dec = &decompressor{}
	}
	limit := cmp.Or(rs.inflateMax, maxInflate) - rs.inflated
	body, err := rs.dec.decompress(codec, body, limit)
	if errors.Is(err, errInflateLimit) {
		return nil, fmt.Errorf("%s: decompresses to more than %d bytes: %w", codec, limit, err)
	}
	rs.inflated += len(body)
	return body, err
}

// abortMarker reports whether a control batch is a transaction's abort
// marker: its record's key is a version and a type, 0 for abort.
func (rs *recordSet) abortMarker(batch []byte, attrs uint16) (bool, error) {
	body, err := rs.body(batch, attrs)
	if err != nil {
		return false, err
	}
	r := wireReader{b: body}
	rec := wireReader{b: r.take(int(r.varint()))}
	rec.take(1)  // attributes
	rec.varint() // timestamp delta
	rec.varint() // offset delta
	key := rec.varBytes()
	if err := cmp.Or(r.err, rec.err); err != nil || len(key) < 4 {
		return false, fmt.Errorf("control record: %w", cmp.Or(err, errTruncated))
	}
	return binary.BigEndian.Uint16(key[2:]) == 0, nil
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
