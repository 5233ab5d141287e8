package kafkaio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go/compress"
)

func compressed(t *testing.T, c compress.Compression, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := c.Codec().NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Every codec decodes what kafka-go's writers encode, up to the limit and
// not beyond.
func TestDecompressorLimits(t *testing.T) {
	data := []byte(strings.Repeat("cpu,host=a usage=0.5 1700000000000000000\n", 2000)) // 82 KB
	var d decompressor
	defer d.close()
	for _, c := range []compress.Compression{compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd} {
		body := compressed(t, c, data)
		if out, err := d.decompress(c, body, len(data)); err != nil || !bytes.Equal(out, data) {
			t.Errorf("%s: %d bytes, error %v; want the %d bytes back", c, len(out), err, len(data))
		}
		if _, err := d.decompress(c, body, len(data)-1); !errors.Is(err, errInflateLimit) {
			t.Errorf("%s, one byte short of the limit: error %v, want the limit", c, err)
		}
	}
	if _, err := d.decompress(compress.Compression(5), nil, 100); err == nil || !strings.Contains(err.Error(), "unknown compression codec 5") {
		t.Errorf("codec 5: error %v", err)
	}
}

// Sizes claimed by headers are checked before anything is allocated: a
// xerial chunk, a snappy block or a zstd frame claiming 256 MiB costs next
// to nothing to refuse.
func TestDecompressorRefusesClaimsBeforeAllocating(t *testing.T) {
	const claim = 256 << 20
	snappyBlock := binary.AppendUvarint(nil, claim) // a decoded length, then nothing
	xerial := []byte(xerialMagic + "\x00\x00\x00\x01\x00\x00\x00\x01")
	// A single-segment frame of 256 MiB, says its 4-byte content size, then
	// one raw byte.
	zstdFrame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0x00, 0x00, 0x00, 0x10, 0x09, 0x00, 0x00, 'x'}
	for _, tc := range []struct {
		name  string
		codec compress.Compression
		body  []byte
	}{
		{"raw snappy block", compress.Snappy, snappyBlock},
		{"xerial chunk", compress.Snappy, binary.BigEndian.AppendUint32(xerial, claim)},
		{"xerial chunk's block", compress.Snappy, append(binary.BigEndian.AppendUint32(xerial, uint32(len(snappyBlock))), snappyBlock...)},
		{"zstd frame", compress.Zstd, zstdFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d decompressor
			defer d.close()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := d.decompress(tc.codec, tc.body, 1<<20)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("no error")
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
				t.Fatalf("allocated %d MiB to refuse it (%v)", n>>20, err)
			}
		})
	}
}
