package kafkaio

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
)

// wireConn speaks the few Kafka requests the fetcher needs (Fetch,
// ListOffsets, and SASL) on one broker connection, and hands back each
// response whole, in a buffer the caller may reuse. kafka-go's Conn copies
// every message's key, value and headers into allocations of their own;
// decoding a fetch response in place (records.go) costs a fraction of that
// per message. Not safe for concurrent use.
type wireConn struct {
	conn     net.Conn
	clientID string
	corrID   int32
	req      []byte // reused request buffer
}

// wireSecurity is how wireConn connects: TLS and SASL, nil when off.
type wireSecurity struct {
	tls      *tls.Config
	sasl     sasl.Mechanism
	clientID string
}

// Kafka API keys and the versions used: the oldest every broker from
// Kafka 3.0 to 4.x accepts (4.0 removed Fetch v0–3 and ListOffsets v0), and
// none of them uses the flexible (tagged-field) encoding.
const (
	apiFetch            = 1
	apiListOffsets      = 2
	apiSASLHandshake    = 17
	apiSASLAuthenticate = 36

	fetchVersion       = 4
	listOffsetsVersion = 2
	saslHandshakeV     = 1
	saslAuthenticateV  = 0
)

// maxResponseSize bounds one response's declared size, so a corrupt length
// cannot make the fetcher allocate gigabytes.
const maxResponseSize = 256 << 20

// dialWire connects to addr, then runs the TLS handshake and SASL
// authentication when configured.
func dialWire(ctx context.Context, addr string, sec wireSecurity) (*wireConn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	raw := conn // a stop unblocks the handshakes through it, TLS included
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := conn.SetDeadline(time.Now().Add(dialTimeout)); err != nil {
		conn.Close()
		return nil, err
	}
	if sec.tls != nil {
		cfg := sec.tls
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(addr)
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		conn = tc
	}
	w := &wireConn{conn: conn, clientID: sec.clientID}
	if sec.sasl != nil {
		if err := w.authenticate(ctx, sec.sasl); err != nil {
			conn.Close()
			return nil, fmt.Errorf("SASL %s with %s: %w", sec.sasl.Name(), addr, err)
		}
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, err
	}
	return w, nil
}

func (w *wireConn) Close() error { return w.conn.Close() }

// authenticate runs a SASL handshake (v1) and the mechanism's exchange in
// SaslAuthenticate requests.
func (w *wireConn) authenticate(ctx context.Context, mech sasl.Mechanism) error {
	resp, err := w.roundTrip(nil, apiSASLHandshake, saslHandshakeV, appendString(nil, mech.Name()))
	if err != nil {
		return err
	}
	r := wireReader{b: resp}
	if code := r.int16(); code != 0 {
		return fmt.Errorf("handshake: %w", kafka.Error(code))
	}
	sess, state, err := mech.Start(ctx)
	if err != nil {
		return err
	}
	for done := false; !done; {
		resp, err := w.roundTrip(nil, apiSASLAuthenticate, saslAuthenticateV, appendBytes(nil, state))
		if err != nil {
			return err
		}
		r := wireReader{b: resp}
		code, msg, challenge := r.int16(), r.string(), r.bytes()
		if r.err != nil {
			return r.err
		}
		if code != 0 {
			return fmt.Errorf("%w: %s", kafka.Error(code), msg)
		}
		if done, state, err = sess.Next(ctx, challenge); err != nil {
			return err
		}
	}
	return nil
}

// roundTrip sends one request and returns its response body (after the
// correlation ID), read into buf when it is large enough, else into a new
// buffer.
func (w *wireConn) roundTrip(buf []byte, apiKey, version int16, body []byte) ([]byte, error) {
	w.corrID++
	req := w.req[:0]
	req = binary.BigEndian.AppendUint32(req, 0) // size, set below
	req = binary.BigEndian.AppendUint16(req, uint16(apiKey))
	req = binary.BigEndian.AppendUint16(req, uint16(version))
	req = binary.BigEndian.AppendUint32(req, uint32(w.corrID))
	req = appendString(req, w.clientID)
	req = append(req, body...)
	binary.BigEndian.PutUint32(req, uint32(len(req)-4))
	w.req = req
	if _, err := w.conn.Write(req); err != nil {
		return nil, err
	}
	var head [8]byte
	if _, err := io.ReadFull(w.conn, head[:]); err != nil {
		return nil, err
	}
	size, corr := int32(binary.BigEndian.Uint32(head[:4])), int32(binary.BigEndian.Uint32(head[4:]))
	if size < 4 || size > maxResponseSize {
		return nil, fmt.Errorf("kafka response of %d bytes: corrupt or not a Kafka broker", size)
	}
	if corr != w.corrID {
		return nil, fmt.Errorf("kafka response for request %d, want %d", corr, w.corrID)
	}
	resp := buf[:0]
	if n := int(size - 4); cap(resp) >= n {
		resp = resp[:n]
	} else {
		resp = make([]byte, n)
	}
	if _, err := io.ReadFull(w.conn, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// listOffset returns the partition's offset at ts: kafka.FirstOffset (-2)
// for the oldest message the broker holds, kafka.LastOffset (-1) for the
// high-water mark, or under readCommitted the last stable offset.
func (w *wireConn) listOffset(topic string, partition int, ts int64, readCommitted bool) (int64, error) {
	b := binary.BigEndian.AppendUint32(nil, ^uint32(0)) // replica ID -1: a client
	b = append(b, isolation(readCommitted))
	b = binary.BigEndian.AppendUint32(b, 1)
	b = appendString(b, topic)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, uint32(partition))
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	resp, err := w.roundTrip(nil, apiListOffsets, listOffsetsVersion, b)
	if err != nil {
		return 0, err
	}
	r := wireReader{b: resp}
	r.int32() // throttle time
	for range r.arrayLen() {
		r.string()
		for range r.arrayLen() {
			p, code := r.int32(), r.int16()
			r.int64() // timestamp
			offset := r.int64()
			if r.err == nil && int(p) == partition {
				if code != 0 {
					return 0, kafka.Error(code)
				}
				return offset, nil
			}
		}
	}
	if r.err != nil {
		return 0, fmt.Errorf("list offsets response: %w", r.err)
	}
	return 0, fmt.Errorf("list offsets response names no partition %d of %s", partition, topic)
}

// isolation is the isolation level field of Fetch and ListOffsets
// requests: 1 for read_committed, which the broker bounds at the last
// stable offset, so that no record of an open transaction is returned.
func isolation(readCommitted bool) byte {
	if readCommitted {
		return 1
	}
	return 0
}

// fetchResult is one partition's part of a fetch response. records aliases
// resp, the whole response; aborted is the buffer passed to fetch.
type fetchResult struct {
	highWaterMark int64
	lastStable    int64 // -1 when the broker did not say
	records       []byte
	resp          []byte
	aborted       []abortedTxn
}

// fetchArgs are a fetch's partition and limits.
type fetchArgs struct {
	topic         string
	partition     int
	offset        int64
	maxWait       time.Duration // at the broker, for the first byte
	maxBytes      int
	readCommitted bool
}

// fetch asks for a partition's messages from an offset. The response is
// read into buf when it fits, and its aborted transactions are appended
// to aborted[:0].
func (w *wireConn) fetch(buf []byte, aborted []abortedTxn, a fetchArgs) (fetchResult, error) {
	b := binary.BigEndian.AppendUint32(nil, ^uint32(0)) // replica ID -1: a client
	b = binary.BigEndian.AppendUint32(b, uint32(a.maxWait.Milliseconds()))
	b = binary.BigEndian.AppendUint32(b, 1) // min bytes
	b = binary.BigEndian.AppendUint32(b, uint32(a.maxBytes))
	b = append(b, isolation(a.readCommitted))
	b = binary.BigEndian.AppendUint32(b, 1)
	b = appendString(b, a.topic)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, uint32(a.partition))
	b = binary.BigEndian.AppendUint64(b, uint64(a.offset))
	b = binary.BigEndian.AppendUint32(b, uint32(a.maxBytes))
	resp, err := w.roundTrip(buf, apiFetch, fetchVersion, b)
	if err != nil {
		return fetchResult{resp: buf, aborted: aborted[:0]}, err
	}
	r := wireReader{b: resp}
	r.int32() // throttle time
	for range r.arrayLen() {
		r.string()
		for range r.arrayLen() {
			p, code, hwm, lso := r.int32(), r.int16(), r.int64(), r.int64()
			aborted = aborted[:0]
			n := r.arrayLen()
			if n > len(r.b)/16 { // what a corrupt length could claim
				r.fail()
				n = 0
			}
			for range n {
				aborted = append(aborted, abortedTxn{producerID: r.int64(), firstOffset: r.int64()})
			}
			records := r.bytes()
			if r.err == nil && int(p) == a.partition {
				res := fetchResult{highWaterMark: hwm, lastStable: lso, resp: resp, aborted: aborted}
				if code != 0 {
					return res, kafka.Error(code)
				}
				res.records = records
				return res, nil
			}
		}
	}
	if r.err != nil {
		return fetchResult{resp: resp, aborted: aborted[:0]}, fmt.Errorf("fetch response: %w", r.err)
	}
	return fetchResult{resp: resp, aborted: aborted[:0]}, fmt.Errorf("fetch response names no partition %d of %s", a.partition, a.topic)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// errTruncated reports a response or record that ends before its fields do.
var errTruncated = errors.New("truncated or corrupt")

// wireReader reads protocol fields: big-endian integers and int-prefixed
// strings in responses, varints and varint-prefixed bytes in records. After
// the first bad read (fail) every read returns zero and err is set.
type wireReader struct {
	b   []byte
	err error
}

// fail records the first bad read and drops what is left to read.
func (r *wireReader) fail() {
	r.b, r.err = nil, errTruncated
}

func (r *wireReader) take(n int) []byte {
	if r.err == nil && (n < 0 || n > len(r.b)) {
		r.fail()
	}
	if r.err != nil {
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *wireReader) skip(n int) { r.take(n) }

func (r *wireReader) int16() int16 {
	if v := r.take(2); v != nil {
		return int16(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (r *wireReader) int32() int32 {
	if v := r.take(4); v != nil {
		return int32(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (r *wireReader) int64() int64 {
	if v := r.take(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// arrayLen returns an array's length, 0 for a null array or after an error.
func (r *wireReader) arrayLen() int {
	n := int(r.int32())
	if n < 0 || r.err != nil {
		return 0
	}
	if n > len(r.b) { // every element takes at least a byte
		r.fail()
		return 0
	}
	return n
}

func (r *wireReader) string() string {
	n := int(r.int16())
	if n < 0 {
		return ""
	}
	return string(r.take(n))
}

// bytes returns a length-prefixed byte string aliasing the response, nil
// when null.
func (r *wireReader) bytes() []byte {
	n := int(r.int32())
	if n < 0 {
		return nil
	}
	return r.take(n)
}

// varint reads a zigzag varint. A record has eight, mostly one byte long:
// those skip the general decoder (after a failure b is empty, so none does).
func (r *wireReader) varint() int64 {
	if b := r.b; len(b) > 0 && b[0] < 0x80 {
		r.b = b[1:]
		return int64(b[0]>>1) ^ -int64(b[0]&1)
	}
	return r.varintLong()
}

func (r *wireReader) varintLong() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// varBytes reads a varint length (-1: null) and that many bytes.
func (r *wireReader) varBytes() []byte {
	n := r.varint()
	if n < 0 {
		return nil
	}
	return r.take(int(n))
}
