package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
)

// ErrIncompatible marks a checkpoint that was written by another format
// version or under another configuration: it is discarded, never misread.
var ErrIncompatible = errors.New("incompatible checkpoint")

// ErrCorrupt marks a checkpoint that does not decode.
var ErrCorrupt = errors.New("corrupt checkpoint")

// ConfigHash fingerprints the description of a configuration, for a
// checkpoint's header: a stage describes every setting its state depends on.
func ConfigHash(description string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(description))
	return h.Sum64()
}

// AppendHeader starts a stage's checkpoint: its kind ("movavg"), the
// version of its format and the hash of its configuration.
func AppendHeader(dst []byte, kind string, version uint16, config uint64) []byte {
	e := Encoder{B: dst}
	e.String(kind)
	e.Uvarint(uint64(version))
	e.Uint64(config)
	return e.B
}

// Encoder appends the fields of a checkpoint to B.
type Encoder struct{ B []byte }

func (e *Encoder) Uvarint(v uint64) { e.B = binary.AppendUvarint(e.B, v) }
func (e *Encoder) Varint(v int64)   { e.B = binary.AppendVarint(e.B, v) }
func (e *Encoder) Uint64(v uint64)  { e.B = binary.LittleEndian.AppendUint64(e.B, v) }

// Float64 is stored bit for bit: a restored state must compute exactly what
// the checkpointed one would have.
func (e *Encoder) Float64(v float64) { e.Uint64(math.Float64bits(v)) }

func (e *Encoder) Bool(v bool) {
	if v {
		e.B = append(e.B, 1)
	} else {
		e.B = append(e.B, 0)
	}
}

func (e *Encoder) String(s string) {
	e.Uvarint(uint64(len(s)))
	e.B = append(e.B, s...)
}

// Floats stores a length and the values.
func (e *Encoder) Floats(v []float64) {
	e.Uvarint(uint64(len(v)))
	for _, x := range v {
		e.Float64(x)
	}
}

// Decoder reads what an Encoder wrote. Its first failure sticks: every
// later read returns a zero value, and Err reports it, so that a stage
// decodes a whole record and checks once.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder reads src.
func NewDecoder(src []byte) *Decoder { return &Decoder{b: src} }

// Err is the first failure, wrapping ErrCorrupt.
func (d *Decoder) Err() error { return d.err }

// Len is the number of bytes left.
func (d *Decoder) Len() int { return len(d.b) }

// Fail records a failure found by the caller (a value out of range, say).
func (d *Decoder) Fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	d.b = nil
}

// Header reads what AppendHeader wrote and checks it against the reader's
// kind, version and configuration.
func (d *Decoder) Header(kind string, version uint16, config uint64) error {
	k := d.String()
	v := d.Uvarint()
	c := d.Uint64()
	switch {
	case d.err != nil:
		return d.err
	case k != kind:
		return fmt.Errorf("%w: a %q checkpoint, not %q", ErrIncompatible, k, kind)
	case v != uint64(version):
		return fmt.Errorf("%w: format version %d, this build reads %d", ErrIncompatible, v, version)
	case c != config:
		return fmt.Errorf("%w: written under another configuration (hash %016x, now %016x)", ErrIncompatible, c, config)
	}
	return nil
}

func (d *Decoder) Uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.Fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *Decoder) Varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.Fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *Decoder) Uint64() uint64 {
	if len(d.b) < 8 {
		d.Fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *Decoder) Float64() float64 { return math.Float64frombits(d.Uint64()) }

func (d *Decoder) Bool() bool {
	if len(d.b) < 1 || d.b[0] > 1 {
		d.Fail("bad bool")
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

// Count reads a length and checks that each of that many items, at least
// minSize bytes long, can be in what is left: a damaged length must not
// allocate gigabytes.
func (d *Decoder) Count(minSize int) int {
	n := d.Uvarint()
	if n > uint64(len(d.b)/max(minSize, 1)) {
		d.Fail("count %d exceeds the %d bytes left", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *Decoder) String() string {
	n := d.Count(1)
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// Floats reads what Encoder.Floats wrote, reusing dst.
func (d *Decoder) Floats(dst []float64) []float64 {
	n := d.Count(8)
	dst = dst[:0]
	for range n {
		dst = append(dst, d.Float64())
	}
	return dst
}
