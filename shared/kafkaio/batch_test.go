package kafkaio

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go/compress"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchSpec describes a record batch to encode: values[i] is the value of
// offset base+i.
type batchSpec struct {
	base       int64
	values     []string
	codec      compress.Compression
	producerID int64 // -1: none
	txn        bool  // part of a transaction
	control    int   // 0: data; 1: an abort marker; 2: a commit marker
}

// offsetValues returns the values "from".."to-1": each message holds its
// offset.
func offsetValues(from, to int64) []string {
	var v []string
	for o := from; o < to; o++ {
		v = append(v, strconv.FormatInt(o, 10))
	}
	return v
}

// appendBatch appends b encoded as a v2 record batch, CRC included.
func appendBatch(t testing.TB, dst []byte, b batchSpec) []byte {
	t.Helper()
	var body []byte
	for i, v := range b.values {
		var rec []byte
		rec = append(rec, 0)                     // attributes
		rec = binary.AppendVarint(rec, int64(i)) // timestamp delta
		rec = binary.AppendVarint(rec, int64(i)) // offset delta
		if b.control != 0 {
			key := []byte{0, 0, 0, byte(b.control - 1)} // version 0, type 0 abort / 1 commit
			rec = binary.AppendVarint(rec, int64(len(key)))
			rec = append(rec, key...)
			val := []byte{0, 0, 0, 0, 0, 1} // version 0, coordinator epoch 1
			rec = binary.AppendVarint(rec, int64(len(val)))
			rec = append(rec, val...)
		} else {
			rec = binary.AppendVarint(rec, -1) // null key
			rec = binary.AppendVarint(rec, int64(len(v)))
			rec = append(rec, v...)
		}
		rec = binary.AppendVarint(rec, 0) // headers
		body = binary.AppendVarint(body, int64(len(rec)))
		body = append(body, rec...)
	}
	attrs := uint16(b.codec)
	if b.codec != compress.None {
		var buf bytes.Buffer
		w := b.codec.Codec().NewWriter(&buf)
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		body = buf.Bytes()
	}
	if b.txn {
		attrs |= attrTransactional
	}
	if b.control != 0 {
		attrs |= attrControl | attrTransactional
	}
	pid := b.producerID
	if pid == 0 {
		pid = -1
	}
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(b.base))
	dst = binary.BigEndian.AppendUint32(dst, 0) // length, set below
	dst = binary.BigEndian.AppendUint32(dst, 0) // partition leader epoch
	dst = append(dst, 2)                        // magic
	dst = binary.BigEndian.AppendUint32(dst, 0) // CRC, set below
	dst = binary.BigEndian.AppendUint16(dst, attrs)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b.values)-1))
	dst = binary.BigEndian.AppendUint64(dst, 1_700_000_000_000)
	dst = binary.BigEndian.AppendUint64(dst, 1_700_000_000_000+uint64(len(b.values)-1))
	dst = binary.BigEndian.AppendUint64(dst, uint64(pid))
	dst = binary.BigEndian.AppendUint16(dst, 0)          // producer epoch
	dst = binary.BigEndian.AppendUint32(dst, ^uint32(0)) // base sequence
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b.values)))
	dst = append(dst, body...)
	binary.BigEndian.PutUint32(dst[start+8:], uint32(len(dst)-start-12))
	binary.BigEndian.PutUint32(dst[start+17:], crc32.Checksum(dst[start+21:], castagnoli))
	return dst
}

// fakeLog is a partition's log of crafted record batches, served by a
// kfake cluster in place of its own (see serve).
type fakeLog struct {
	mu       sync.Mutex
	batches  [][]byte
	hwm, lso int64 // lso 0: same as hwm
	aborted  []abortedTxn
	// truncate cuts a response at the fetch's partition max bytes, as
	// brokers before KIP-74 did, rather than returning a first batch
	// larger than that whole.
	truncate bool
	fetches  []int64 // the offset of every fetch served
	maxBytes []int32 // and its partition max bytes
}

func (l *fakeLog) set(batches ...[]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches = batches
	l.hwm = 0
	for _, b := range batches {
		l.hwm = max(l.hwm, int64(binary.BigEndian.Uint64(b))+int64(binary.BigEndian.Uint32(b[23:]))+1)
	}
}

// serveLogs answers every fetch request from logs: partition i from
// logs[i].
func serveLogs(c *kfake.Cluster, logs ...*fakeLog) {
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.FetchRequest)
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition = rp.Partition
				if int(rp.Partition) < len(logs) {
					logs[rp.Partition].answer(&sp, rp, r.IsolationLevel)
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

func (l *fakeLog) answer(sp *kmsg.FetchResponseTopicPartition, rp kmsg.FetchRequestTopicPartition, isolation int8) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sp.HighWatermark, sp.LastStableOffset = l.hwm, l.hwm
	if l.lso > 0 && l.lso < l.hwm && isolation == 1 {
		sp.LastStableOffset = l.lso
	}
	l.fetches = append(l.fetches, rp.FetchOffset)
	l.maxBytes = append(l.maxBytes, rp.PartitionMaxBytes)
	for _, b := range l.batches {
		last := int64(binary.BigEndian.Uint64(b)) + int64(binary.BigEndian.Uint32(b[23:]))
		if last < rp.FetchOffset {
			continue
		}
		if len(sp.RecordBatches) > 0 && len(sp.RecordBatches)+len(b) > int(rp.PartitionMaxBytes) {
			break
		}
		sp.RecordBatches = append(sp.RecordBatches, b...)
	}
	if l.truncate && len(sp.RecordBatches) > int(rp.PartitionMaxBytes) {
		sp.RecordBatches = sp.RecordBatches[:rp.PartitionMaxBytes]
	}
	for _, a := range l.aborted {
		at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		at.ProducerID, at.FirstOffset = a.producerID, a.firstOffset
		sp.AbortedTransactions = append(sp.AbortedTransactions, at)
	}
}

// served returns the offsets fetched so far.
func (l *fakeLog) served() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.fetches)
}

// counterValue returns the value of the metric name with labels in reg;
// 0 when it has not been set.
func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}
