package kafkaio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/segmentio/kafka-go/compress"
)

// decompressor inflates record batch bodies without letting one claim more
// memory than it is allowed. kafka-go's codecs are streams that trust
// their input: its snappy reader allocates whatever a xerial chunk header
// claims (up to 4 GiB) before it reads a byte of the chunk, and a zstd
// stream allocates the window its frame header asks for (up to 512 MiB by
// default). Snappy and zstd are decoded here whole, with every size
// checked first; gzip and lz4 stream through a limit. Not safe for
// concurrent use.
type decompressor struct {
	zstd    *zstd.Decoder // made on first use: most topics never see zstd
	zstdMax int           // the limit it was made for
}

// errInflateLimit reports a body that decompresses to more than allowed.
var errInflateLimit = errors.New("decompression limit reached")

// decompress returns body decompressed into a new buffer of at most limit
// bytes, or errInflateLimit.
func (d *decompressor) decompress(c compress.Compression, body []byte, limit int) ([]byte, error) {
	var out []byte
	var err error
	switch c {
	case compress.Snappy:
		out, err = unsnappy(body, limit)
	case compress.Zstd:
		out, err = d.unzstd(body, limit)
	case compress.Gzip, compress.Lz4:
		out, err = readLimited(c.Codec(), body, limit)
	default:
		return nil, fmt.Errorf("unknown compression codec %d", c)
	}
	if err != nil && !errors.Is(err, errInflateLimit) {
		err = fmt.Errorf("%s: %w", c, err)
	}
	return out, err
}

// close releases the zstd decoder.
func (d *decompressor) close() {
	if d.zstd != nil {
		d.zstd.Close()
		d.zstd = nil
	}
}

// readLimited streams body through codec into a buffer of at most limit
// bytes; the reader is pooled by kafka-go and holds one block at a time.
func readLimited(codec compress.Codec, body []byte, limit int) ([]byte, error) {
	zr := codec.NewReader(bytes.NewReader(body))
	defer zr.Close()
	// Sized for a typical ratio, so that the buffer rarely grows.
	out := make([]byte, 0, min(limit+1, 4*len(body)+512))
	for {
		if len(out) == cap(out) {
			out = append(out, 0)[:len(out)]
		}
		n, err := zr.Read(out[len(out):min(cap(out), limit+1)])
		out = out[:len(out)+n]
		if len(out) > limit {
			return nil, errInflateLimit
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// xerialMagic starts a snappy body in the framing of Java's xerial
// library, which Kafka's Java producer writes: the magic, two int32
// versions, then chunks of an int32 length and a snappy block. Other
// producers (librdkafka) write one raw snappy block.
const xerialMagic = "\x82SNAPPY\x00"

// unsnappy decodes a xerial-framed or raw snappy body. Every block's
// decoded length is read from its header and summed before anything is
// allocated.
func unsnappy(body []byte, limit int) ([]byte, error) {
	blocks := body
	framed := len(body) >= 16 && string(body[:8]) == xerialMagic
	if framed {
		blocks = body[16:]
	}
	total := 0
	for rest := blocks; len(rest) > 0; {
		block, tail, err := nextSnappyBlock(rest, framed)
		if err != nil {
			return nil, err
		}
		n, err := snappy.DecodedLen(block)
		if err != nil {
			return nil, err
		}
		if total += n; total > limit {
			return nil, errInflateLimit
		}
		rest = tail
	}
	out := make([]byte, 0, total)
	for rest := blocks; len(rest) > 0; {
		block, tail, _ := nextSnappyBlock(rest, framed)
		n, _ := snappy.DecodedLen(block)
		dec, err := snappy.Decode(out[len(out):len(out)+n], block)
		if err != nil {
			return nil, err
		}
		out = out[:len(out)+len(dec)]
		rest = tail
	}
	return out, nil
}

func nextSnappyBlock(b []byte, framed bool) (block, rest []byte, err error) {
	if !framed {
		return b, nil, nil
	}
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("xerial chunk: %w", errTruncated)
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, fmt.Errorf("xerial chunk of %d bytes: %w", n, errTruncated)
	}
	return b[4 : 4+n], b[4+n:], nil
}

// unzstd decodes a zstd body whole, with the decoder's memory and window
// bounded by the largest limit it was asked for (a fetcher always asks
// for its response cap or less).
func (d *decompressor) unzstd(body []byte, limit int) ([]byte, error) {
	if d.zstd == nil || limit > d.zstdMax {
		d.close()
		n := uint64(max(limit, zstd.MinWindowSize))
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(n), zstd.WithDecoderMaxWindow(n))
		if err != nil {
			return nil, err
		}
		d.zstd, d.zstdMax = dec, limit
	}
	out, err := d.zstd.DecodeAll(body, nil)
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return nil, errInflateLimit
	case err != nil:
		return nil, err
	case len(out) > limit:
		return nil, errInflateLimit
	}
	return out, nil
}
