package stream

import (
	"errors"
	"math"
	"testing"
)

func TestCodecRoundTrip(t *testing.T) {
	b := AppendHeader(nil, "movavg", 2, ConfigHash("sma=10"))
	e := Encoder{B: b}
	e.Uvarint(300)
	e.Varint(-5)
	e.Float64(math.Copysign(0, -1))
	e.Float64(0.1)
	e.Bool(true)
	e.String("cpu,host=a")
	e.Floats([]float64{1, 2.5})
	d := NewDecoder(e.B)
	if err := d.Header("movavg", 2, ConfigHash("sma=10")); err != nil {
		t.Fatal(err)
	}
	u, v, negZero, tenth, ok, s, fs := d.Uvarint(), d.Varint(), d.Float64(), d.Float64(), d.Bool(), d.String(), d.Floats(nil)
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	if u != 300 || v != -5 || !math.Signbit(negZero) || tenth != 0.1 || !ok || s != "cpu,host=a" || len(fs) != 2 || fs[1] != 2.5 || d.Len() != 0 {
		t.Fatalf("read back %v %v %v %v %v %q %v, %d bytes left", u, v, negZero, tenth, ok, s, fs, d.Len())
	}
}

func TestHeaderRefusesOtherWriters(t *testing.T) {
	b := AppendHeader(nil, "movavg", 2, 7)
	for _, tc := range []struct {
		name    string
		kind    string
		version uint16
		config  uint64
		want    error
	}{
		{"same", "movavg", 2, 7, nil},
		{"kind", "analyzer", 2, 7, ErrIncompatible},
		{"version", "movavg", 3, 7, ErrIncompatible},
		{"config", "movavg", 2, 8, ErrIncompatible},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := NewDecoder(b).Header(tc.kind, tc.version, tc.config)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Header: %v, want %v", err, tc.want)
			}
		})
	}
	if err := NewDecoder(b[:3]).Header("movavg", 2, 7); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated header: %v, want ErrCorrupt", err)
	}
}

// FuzzDecoder: no input makes a Decoder panic or allocate beyond its input.
func FuzzDecoder(f *testing.F) {
	e := Encoder{B: AppendHeader(nil, "k", 1, 1)}
	e.String("abc")
	e.Floats([]float64{1, 2})
	f.Add(e.B)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(b)
		_ = d.Header("k", 1, 1)
		for d.Err() == nil && d.Len() > 0 {
			if s := d.String(); len(s) > len(b) {
				t.Fatalf("string of %d bytes from %d", len(s), len(b))
			}
			if fs := d.Floats(nil); len(fs)*8 > len(b) {
				t.Fatalf("%d floats from %d bytes", len(fs), len(b))
			}
			d.Bool()
			d.Varint()
		}
	})
}
