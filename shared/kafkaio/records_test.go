package kafkaio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"slices"
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

// txnLog is a partition's log with transactions: producer 7's first
// transaction (offsets 3..5, compressed) is aborted by the marker at 8,
// producer 8's (6..7) committed at 9, and producer 7's second (12..13)
// committed at 14; the rest is not transactional.
func txnLog(t testing.TB) ([]byte, []abortedTxn) {
	var b []byte
	b = appendBatch(t, b, batchSpec{base: 0, values: offsetValues(0, 3)})
	b = appendBatch(t, b, batchSpec{base: 3, values: offsetValues(3, 6), producerID: 7, txn: true, codec: compress.Gzip})
	b = appendBatch(t, b, batchSpec{base: 6, values: offsetValues(6, 8), producerID: 8, txn: true})
	b = appendBatch(t, b, batchSpec{base: 8, values: []string{""}, producerID: 7, control: 1})
	b = appendBatch(t, b, batchSpec{base: 9, values: []string{""}, producerID: 8, control: 2})
	b = appendBatch(t, b, batchSpec{base: 10, values: offsetValues(10, 12)})
	b = appendBatch(t, b, batchSpec{base: 12, values: offsetValues(12, 14), producerID: 7, txn: true})
	b = appendBatch(t, b, batchSpec{base: 14, values: []string{""}, producerID: 7, control: 2})
	return b, []abortedTxn{{producerID: 7, firstOffset: 3}}
}

// Under read_committed the records of aborted transactions are dropped,
// whatever fetch offset the response starts from, and under either level
// transaction markers are; the next offset is past them all.
func TestRecordSetDropsAbortedTransactions(t *testing.T) {
	records, aborted := txnLog(t)
	f := func(readCommitted bool, from int64, want []int64) {
		t.Helper()
		dec := &decompressor{}
		rs := recordSet{from: from, readCommitted: readCommitted, aborted: slices.Clone(aborted), inflateMax: 1 << 20, dec: dec}
		next, err := rs.decode(records)
		var got []int64
		for _, m := range rs.msgs {
			if string(m.Value) != strconv.FormatInt(m.Offset, 10) {
				t.Errorf("offset %d holds %q", m.Offset, m.Value)
			}
			got = append(got, m.Offset)
		}
		if err != nil || next != 15 || !slices.Equal(got, want) {
			t.Errorf("read committed %v from %d: offsets %v, next %d, error %v; want %v, 15, nil", readCommitted, from, got, next, err, want)
		}
	}
	f(true, 0, []int64{0, 1, 2, 6, 7, 10, 11, 12, 13})
	f(true, 4, []int64{6, 7, 10, 11, 12, 13})
	f(true, 9, []int64{10, 11, 12, 13})
	f(false, 0, []int64{0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13})
}

// bigBatches returns two gzip batches, offsets 0..9 and 10..19, each of
// which decompresses to about 60 KB.
func bigBatches(t testing.TB) []byte {
	var b []byte
	for base := int64(0); base < 20; base += 10 {
		values := offsetValues(base, base+10)
		for i := range values {
			values[i] += strings.Repeat(" ", 6000)
		}
		b = appendBatch(t, b, batchSpec{base: base, values: values, codec: compress.Gzip})
	}
	return b
}

// The decompressed bytes of a response are capped, not just of each batch:
// a batch that would go over is left for the next fetch, which starts with
// it; only a batch over the cap on its own is refused.
func TestRecordSetCapsDecompressionPerResponse(t *testing.T) {
	records := bigBatches(t)
	ends := batchEnds(records)
	rs := recordSet{inflateMax: 100_000, dec: &decompressor{}}
	next, err := rs.decode(records)
	if len(rs.msgs) != 10 || next != 10 || err != nil {
		t.Fatalf("got %d messages, next %d, error %v; want the first batch's 10, next 10, no error", len(rs.msgs), next, err)
	}
	rs = recordSet{from: 10, inflateMax: 100_000, dec: &decompressor{}}
	if next, err := rs.decode(records[ends[0]:]); len(rs.msgs) != 10 || next != 20 || err != nil {
		t.Fatalf("from 10: got %d messages, next %d, error %v; want 10, 20, nil", len(rs.msgs), next, err)
	}
	rs = recordSet{inflateMax: 50_000, dec: &decompressor{}}
	next, err = rs.decode(records)
	var corrupt *corruptBatchError
	if len(rs.msgs) != 0 || next != 0 || !errors.As(err, &corrupt) || corrupt.offset != 0 || corrupt.next != 10 {
		t.Fatalf("cap below one batch: got %d messages, next %d, error %v; want a corrupt batch at 0 to skip to 10", len(rs.msgs), next, err)
	}
}

// fuzzSeeds are record sets of every codec, and with transactions.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, codec := range []compress.Compression{compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd} {
		b := appendBatch(t, nil, batchSpec{base: 0, values: offsetValues(0, 4), codec: codec})
		b = appendBatch(t, b, batchSpec{base: 4, values: offsetValues(4, 8), codec: codec, producerID: 3, txn: true})
		seeds = append(seeds, b)
	}
	records, _ := txnLog(t)
	return append(seeds, records)
}

// FuzzRecordSet feeds damaged fetch responses to the decoder, compressed
// with every codec, with each batch's CRC recomputed so that the damage
// reaches the decompression and the record parsing, and an aborted
// transactions list. It must not panic or allocate beyond the response's
// decompression cap, and must return only messages at or after the fetch
// offset, in order, with the next offset past them, or a corrupt batch to
// skip forward, or an incomplete response.
func FuzzRecordSet(f *testing.F) {
	f.Add(recordsFixture(f), int64(0), []byte(nil))
	f.Add(recordsFixture(f), int64(6), []byte(nil))
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed, int64(0), binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 7), 3))
		f.Add(seed, int64(5), []byte(nil))
	}
	dec := &decompressor{}
	f.Fuzz(func(t *testing.T, records []byte, from int64, aborted []byte) {
		for at := 0; at+batchHeaderSize <= len(records); {
			end := at + 12 + int(int32(binary.BigEndian.Uint32(records[at+8:])))
			if end < at+batchHeaderSize || end > len(records) {
				break
			}
			binary.BigEndian.PutUint32(records[at+17:], crc32.Checksum(records[at+21:end], castagnoli))
			at = end
		}
		rs := recordSet{from: from, readCommitted: len(aborted) > 0, inflateMax: 1 << 20, dec: dec}
		for ; len(aborted) >= 16; aborted = aborted[16:] {
			rs.aborted = append(rs.aborted, abortedTxn{int64(binary.BigEndian.Uint64(aborted)), int64(binary.BigEndian.Uint64(aborted[8:]))})
		}
		next, err := rs.decode(records)
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
		var corrupt *corruptBatchError
		switch {
		case err == nil, errors.Is(err, errIncomplete):
		case errors.As(err, &corrupt):
			if corrupt.next <= next {
				t.Fatalf("corrupt batch at %d: skipping to %d does not move past %d", corrupt.offset, corrupt.next, next)
			}
		default:
			t.Fatalf("error %v: want a corrupt batch or an incomplete response", err)
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

// Decoding allocates nothing once the slices are warm, transactions and
// the aborted list included (a compressed batch allocates its
// decompressed body, once per batch).
func TestRecordSetAllocatesNothing(t *testing.T) {
	var txns []byte
	for _, b := range []batchSpec{
		{base: 0, values: offsetValues(0, 3)},
		{base: 3, values: offsetValues(3, 6), producerID: 7, txn: true},
		{base: 6, values: []string{""}, producerID: 7, control: 1},
		{base: 7, values: offsetValues(7, 9), producerID: 7, txn: true},
		{base: 9, values: []string{""}, producerID: 7, control: 2},
	} {
		txns = appendBatch(t, txns, b)
	}
	for _, tc := range []struct {
		name    string
		records []byte
		aborted []abortedTxn
		want    int
	}{
		{"fixture", recordsFixture(t), nil, 12},
		{"read committed", txns, []abortedTxn{{producerID: 7, firstOffset: 3}}, 5},
	} {
		rs := recordSet{topic: "t", readCommitted: true}
		aborted := make([]abortedTxn, 0, 4) // the fetcher's buffer: the decoder consumes its slice of it
		decode := func() {
			rs.msgs, rs.headers, rs.active = rs.msgs[:0], rs.headers[:0], rs.active[:0]
			rs.aborted = append(aborted[:0], tc.aborted...)
			if _, err := rs.decode(tc.records); err != nil || len(rs.msgs) != tc.want {
				t.Fatalf("%s: %d messages, error %v; want %d", tc.name, len(rs.msgs), err, tc.want)
			}
		}
		decode()
		if n := testing.AllocsPerRun(100, decode); n != 0 {
			t.Errorf("%s: %v allocations per decode, want 0", tc.name, n)
		}
	}
}
