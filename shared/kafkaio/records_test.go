package kafkaio

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// codecMessages are messages with null, empty and set keys, with and
// without headers (one with a null value), and with distinct timestamps.
func codecMessages(n int) []kafka.Message {
	base := time.UnixMilli(1_700_000_000_000)
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		m := kafka.Message{Value: []byte("value " + strconv.Itoa(i)), Time: base.Add(time.Duration(i) * time.Millisecond)}
		switch i % 3 {
		case 1:
			m.Key = []byte{}
		case 2:
			m.Key = []byte("key-" + strconv.Itoa(i))
		}
		if i%2 == 0 {
			m.Headers = []kafka.Header{{Key: HeaderContentType, Value: []byte("text/plain")}, {Key: "n", Value: []byte(strconv.Itoa(i))}, {Key: "null"}}
		}
		msgs[i] = m
	}
	return msgs
}

// writeWithCodec writes msgs in record batches of perBatch.
func writeWithCodec(t testing.TB, cfg Config, topic string, codec compress.Compression, perBatch int, msgs []kafka.Message) {
	t.Helper()
	transport, err := cfg.Transport()
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(cfg.Brokers...), Topic: topic, Transport: transport, Compression: codec,
		BatchSize: perBatch, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	for len(msgs) > 0 {
		n := min(perBatch, len(msgs))
		if err := w.WriteMessages(t.Context(), msgs[:n]...); err != nil {
			t.Fatal(err)
		}
		msgs = msgs[n:]
	}
}

// TestFetcherDecodesEveryCodec checks that messages come back exactly as
// produced, keys (null or empty), headers and timestamps included, under
// every compression codec.
func TestFetcherDecodesEveryCodec(t *testing.T) {
	for _, codec := range []compress.Compression{compress.None, compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			const topic = "codec"
			_, cfg := fakeCluster(t, topic, 1)
			want := codecMessages(200)
			writeWithCodec(t, cfg, topic, codec, 40, want)
			f := testFetcher(t, cfg, topic, zerolog.Nop())
			out, _, _ := startFetcher(t, f, 37) // inside the first batch
			want = want[37:]
			var got []kafka.Message
			for len(got) < len(want) {
				select {
				case c := <-out:
					got = append(got, c.msgs...)
				case <-time.After(10 * time.Second):
					t.Fatalf("got %d of %d messages", len(got), len(want))
				}
			}
			for i, g := range got {
				w := want[i]
				if g.Offset != int64(37+i) || g.Topic != topic || g.Partition != 0 || g.HighWaterMark != 200 {
					t.Fatalf("message %d: topic %q partition %d offset %d high water mark %d", i, g.Topic, g.Partition, g.Offset, g.HighWaterMark)
				}
				if (g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) || !g.Time.Equal(w.Time) {
					t.Fatalf("offset %d: got key %q value %q time %v, want %q %q %v", g.Offset, g.Key, g.Value, g.Time, w.Key, w.Value, w.Time)
				}
				if len(g.Headers) != len(w.Headers) {
					t.Fatalf("offset %d: headers %v, want %v", g.Offset, g.Headers, w.Headers)
				}
				for j, h := range g.Headers {
					if h.Key != w.Headers[j].Key || !bytes.Equal(h.Value, w.Headers[j].Value) || (h.Value == nil) != (w.Headers[j].Value == nil) {
						t.Fatalf("offset %d: headers %v, want %v", g.Offset, g.Headers, w.Headers)
					}
				}
			}
		})
	}
}

// recordsFixture returns the records part of a fetch response from a
// kfake broker: codecMessages(12), uncompressed, in 3 record batches of 4.
// Small, so that the fuzzer's minimisation of an input takes seconds.
func recordsFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/records-v2.bin")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// batchEnds returns where each record batch of records ends.
func batchEnds(records []byte) []int {
	var ends []int
	for at := 0; at+12 <= len(records); {
		at += 12 + int(binary.BigEndian.Uint32(records[at+8:]))
		ends = append(ends, at)
	}
	return ends
}

func TestRecordSetRejectsDamage(t *testing.T) {
	records := recordsFixture(t)
	ends := batchEnds(records)
	if len(ends) != 3 || ends[2] != len(records) {
		t.Fatalf("batches end at %v of %d bytes, want 3 batches", ends, len(records))
	}
	tests := []struct {
		name     string
		damage   func(b []byte) []byte
		wantMsgs int
		wantNext int64
		wantErr  string
	}{
		{"intact", func(b []byte) []byte { return b }, 12, 12, ""},
		{"last batch cut off", func(b []byte) []byte { return b[:len(b)-7] }, 8, 8, ""},
		{"first batch cut off", func(b []byte) []byte { return b[:ends[0]-1] }, 0, 0, "no complete record batch"},
		{"record byte flipped", func(b []byte) []byte { b[ends[0]+batchHeaderSize+10] ^= 1; return b }, 4, 4, "CRC mismatch"},
		{"old format", func(b []byte) []byte { b[16] = 1; return b }, 0, 0, "only v2"},
		{"length too short", func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 10); return b }, 0, 0, "too short"},
		{"record count too high", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 5)
			binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:ends[0]], castagnoli))
			return b
		}, 0, 0, "record 4 of 5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := recordSet{topic: "raw", highWaterMark: 12}
			next, err := rs.decode(tc.damage(bytes.Clone(records)))
			if len(rs.msgs) != tc.wantMsgs || next != tc.wantNext {
				t.Errorf("got %d messages, next %d; want %d, %d", len(rs.msgs), next, tc.wantMsgs, tc.wantNext)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// FuzzRecordSet feeds damaged fetch responses to the decoder, with each
// batch's CRC recomputed so that the damage reaches the record parsing, and
// compression off: the codecs are kafka-go's, and snappy's allocates what
// a block header claims, up to 4 GiB, before it finds the block bad. It
// must not panic, and must return only messages at or after the fetch
// offset, in order, with the next offset past them.
func FuzzRecordSet(f *testing.F) {
	f.Add(recordsFixture(f), int64(0))
	f.Add(recordsFixture(f), int64(6))
	f.Fuzz(func(t *testing.T, records []byte, from int64) {
		for at := 0; at+batchHeaderSize <= len(records); {
			end := at + 12 + int(int32(binary.BigEndian.Uint32(records[at+8:])))
			if end < at+batchHeaderSize || end > len(records) {
				break
			}
			records[at+22] &^= attrCompression
			binary.BigEndian.PutUint32(records[at+17:], crc32.Checksum(records[at+21:end], castagnoli))
			at = end
		}
		rs := recordSet{from: from}
		next, _ := rs.decode(records)
		last := from - 1
		for _, m := range rs.msgs {
			if m.Offset <= last || m.Offset < from || m.Offset >= next {
				t.Fatalf("offset %d after %d (from %d, next %d)", m.Offset, last, from, next)
			}
			last = m.Offset
		}
		if next < from {
			t.Fatalf("next %d before the fetch offset %d", next, from)
		}
	})
}

// BenchmarkRecordSet decodes the fixture's three batches of four records
// into reused message and header slices, as the fetcher does.
func BenchmarkRecordSet(b *testing.B) {
	records := recordsFixture(b)
	rs := recordSet{topic: "t"}
	b.ReportAllocs()
	b.SetBytes(int64(len(records)))
	for b.Loop() {
		rs.msgs, rs.headers = rs.msgs[:0], rs.headers[:0]
		if _, err := rs.decode(records); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rs.msgs)), "ns/record")
}
