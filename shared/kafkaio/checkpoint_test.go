package kafkaio

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/stream"
)

// foldState is a partition's state in these tests: a hash folded over every
// message value in offset order, so that it is right only if each message
// was folded exactly once and in order, and padding that makes it span
// several chunks.
type foldState struct {
	sum uint64
	n   int64
	pad int // bytes of padding in a checkpoint
}

func (s *foldState) fold(batch []kafka.Message) {
	for _, m := range batch {
		h := fnv.New64a()
		binary.Write(h, binary.LittleEndian, s.sum)
		h.Write(m.Value)
		s.sum = h.Sum64()
		s.n++
	}
}

func (s *foldState) padding() []byte {
	return bytes.Repeat(binary.LittleEndian.AppendUint64(nil, s.sum), s.pad/8)
}

// foldHandler is a Checkpointer that folds what it handles and replays.
type foldHandler struct {
	foldState
	mu       sync.Mutex
	replayed int64
	restored bool
	refuse   error // what Restore returns, when set
	failAt   int64 // Handle fails once its state reached that many messages (0: never)
	target   int64 // messages in the partition: onDone is called when the state has them all
	onDone   func()
	onFail   func()      // the member crashes: every partition stops
	saved    func() bool // a checkpoint of every partition was saved
	handled  func(n int)
}

func (h *foldHandler) Handle(_ context.Context, batch []kafka.Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failAt > 0 && h.n+int64(len(batch)) > h.failAt && h.saved() {
		h.fold(batch[:1]) // the state moved on; its output was not written
		h.onFail()
		return errors.New("sink down")
	}
	h.fold(batch)
	h.handled(len(batch))
	h.checkDone()
	return nil
}

// checkDone tells the run once the state holds every message: a partition
// restored at its end handles nothing.
func (h *foldHandler) checkDone() {
	if h.n >= h.target {
		h.onDone()
	}
}

func (h *foldHandler) Checkpoint(dst []byte) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	dst = binary.LittleEndian.AppendUint64(dst, h.sum)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(h.n))
	return append(dst, h.padding()...)
}

func (h *foldHandler) Restore(state []byte, taken time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refuse != nil {
		return h.refuse
	}
	if len(state) < 16 || time.Since(taken) > time.Minute {
		return fmt.Errorf("%w: %d bytes taken %s", stream.ErrCorrupt, len(state), taken)
	}
	h.sum, h.n = binary.LittleEndian.Uint64(state), int64(binary.LittleEndian.Uint64(state[8:]))
	if !bytes.Equal(state[16:], h.padding()) {
		return fmt.Errorf("%w: padding differs", stream.ErrCorrupt)
	}
	h.restored = true
	h.checkDone()
	return nil
}

func (h *foldHandler) Replay(batch []kafka.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fold(batch)
	h.replayed += int64(len(batch))
	h.checkDone()
}

// heldHandler holds its partition's commits at offset 1, as a consumer with
// a rollup window open since then does.
type heldHandler struct{ *foldHandler }

func (heldHandler) HeldFrom() (int64, bool) { return 1, true }

// checkpointRun runs group members over a topic with checkpoints on.
type checkpointRun struct {
	cfg      Config
	topic    string
	group    string
	interval time.Duration
	want     map[int]foldState // each partition's state once it folded everything
	pad      int
	holder   bool
	refuse   error // what every handler's Restore returns
}

// run runs one member until every partition's state holds all its
// messages, or stopAfter messages were handled, or a handler failed (at
// failAt). It returns the handlers by partition, Run's error and the
// member's metrics.
func (r checkpointRun) run(t *testing.T, stopAfter, failAt int64) (map[int]*foldHandler, error, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	gcfg := GroupConfig{Topic: r.topic, Group: r.group, BatchSize: 37, BatchWait: 20 * time.Millisecond,
		DrainTimeout: 5 * time.Second, Checkpoints: CheckpointConfig{Topic: r.topic + "-state", Interval: r.interval}}
	admin, err := NewAdmin(r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.EnsureTopics(t.Context(), gcfg.Checkpoints.Topics(TopicSpec{Name: r.topic, Partitions: len(r.want), ReplicationFactor: 1})...); err != nil {
		t.Fatal(err)
	}
	gc, err := NewGroupConsumer(r.cfg, gcfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	var handled int64
	hs := map[int]*foldHandler{}
	complete := map[int]bool{}
	err = gc.Run(ctx, func(p int) (Handler, error) {
		h := &foldHandler{foldState: foldState{pad: r.pad}, failAt: failAt, target: r.want[p].n, onFail: cancel, refuse: r.refuse,
			saved: func() bool {
				m := &dto.Metric{}
				return gc.state.metrics.saved.Write(m) == nil && m.GetCounter().GetValue() >= float64(len(r.want))
			}}
		h.handled = func(n int) {
			mu.Lock()
			defer mu.Unlock()
			if handled += int64(n); handled >= stopAfter {
				cancel()
			}
		}
		h.onDone = func() {
			mu.Lock()
			defer mu.Unlock()
			if complete[p] = true; len(complete) == len(r.want) {
				cancel()
			}
		}
		mu.Lock()
		hs[p] = h
		mu.Unlock()
		if r.holder {
			return heldHandler{h}, nil
		}
		return h, nil
	})
	if t.Context().Err() == nil && ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("not done in a minute: %d handled", handled)
	}
	return hs, err, reg
}

// readFolds folds each partition's messages, as an uninterrupted run would.
func readFolds(t *testing.T, cfg Config, topic string, partitions int) map[int]foldState {
	t.Helper()
	want := map[int]foldState{}
	for p := range partitions {
		conn, err := kafka.DialLeader(t.Context(), "tcp", cfg.Brokers[0], topic, p)
		if err != nil {
			t.Fatal(err)
		}
		end, err := conn.ReadLastOffset()
		if err != nil {
			t.Fatal(err)
		}
		var s foldState
		for s.n < end {
			if _, err := conn.Seek(s.n, kafka.SeekAbsolute); err != nil {
				t.Fatal(err)
			}
			b := conn.ReadBatch(1, 1<<20)
			for {
				m, err := b.ReadMessage()
				if err != nil {
					break
				}
				s.fold([]kafka.Message{m})
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
		}
		conn.Close()
		want[p] = s
	}
	return want
}

// checkRestored checks the second member's handlers hs: each partition the
// first member handled was restored, and each partition's fold is that of
// all its messages, each once, in order.
func (r checkpointRun) checkRestored(t *testing.T, first, hs map[int]*foldHandler) {
	t.Helper()
	for p, w := range r.want {
		h := hs[p]
		if f := first[p]; f != nil && f.n > 0 && !h.restored {
			t.Errorf("partition %d: not restored", p)
		}
		if h.n != w.n || h.sum != w.sum {
			t.Errorf("partition %d: folded %d messages to %x, want %d to %x", p, h.n, h.sum, w.n, w.sum)
		}
	}
}

// TestCheckpointsRestoreExactly: a member stopped, crashed or holding its
// commits back leaves checkpoints from which the next member restores each
// partition's state and replays exactly the messages after it: each
// partition's fold is that of all its messages, each once, in order.
func TestCheckpointsRestoreExactly(t *testing.T) {
	const n, partitions = 3000, 3
	for _, tc := range []struct {
		name string
		// The first member stops after stopAfter messages; with failAt its
		// handlers fail there (a crash: no final checkpoint). With an
		// interval of an hour, the only checkpoint is the one taken after
		// the first batch, behind the committed offset. holder holds the
		// commits at offset 1, so the checkpoints are ahead of them.
		stopAfter, failAt int64
		interval          time.Duration
		holder            bool
		pad               int
		real              bool // on the test bed's Kafka, not kfake
	}{
		{name: "stop", stopAfter: n / 2, pad: 2*checkpointChunk + 1000}, // a state of three chunks
		{name: "crash", stopAfter: n, failAt: 400, interval: time.Hour},
		{name: "commits held back", stopAfter: n / 2, holder: true},
		{name: "real Kafka", stopAfter: n / 2, pad: 2*checkpointChunk + 1000, real: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := testbed.UniqueName("ckpt")
			var cfg Config
			if tc.real {
				cfg = Config{Brokers: []string{testbed.KafkaBrokers(t)}, ClientID: "test"}
				admin, err := NewAdmin(cfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := admin.EnsureTopics(t.Context(), TopicSpec{Name: topic, Partitions: partitions, ReplicationFactor: 1}); err != nil {
					t.Fatal(err)
				}
			} else {
				_, cfg = fakeCluster(t, topic, partitions)
			}
			produceN(t, cfg, topic, n)
			r := checkpointRun{cfg: cfg, topic: topic, group: topic + "-g", interval: cmp.Or(tc.interval, time.Nanosecond), // Nanosecond: after every batch, once the last one was saved
				want: readFolds(t, cfg, topic, partitions), pad: tc.pad, holder: tc.holder}
			first, err, _ := r.run(t, tc.stopAfter, tc.failAt)
			if (err != nil) != (tc.failAt > 0) {
				t.Fatalf("first member: %v", err)
			}
			hs, err, reg := r.run(t, n, 0)
			if err != nil {
				t.Fatal(err)
			}
			r.checkRestored(t, first, hs)
			var replayed int64
			for _, h := range hs {
				replayed += h.replayed
			}
			t.Logf("restored %v partitions, replayed %d messages", testbed.CounterSum(reg, "metricpipe_checkpoints_restored_total"), replayed)
			if tc.holder && replayed != 0 {
				t.Errorf("replayed %d messages: the checkpoints were ahead of the commits", replayed)
			}
			if tc.failAt > 0 && replayed < int64(len(r.want))*(tc.failAt-2*37) {
				t.Errorf("replayed %d messages after the crash, want about %d per partition", replayed, tc.failAt-37)
			}
		})
	}
}

// TestCheckpointsRideOutALeaderMove: a partition assigned while its
// leader moves (the broker answers "not leader" for a while) waits for
// the partition's bounds and restores its checkpoint, instead of
// discarding it and starting cold.
func TestCheckpointsRideOutALeaderMove(t *testing.T) {
	const n, partitions, refusals = 3000, 3, 6
	topic := testbed.UniqueName("ckpt")
	c, cfg := fakeCluster(t, topic, partitions)
	produceN(t, cfg, topic, n)
	r := checkpointRun{cfg: cfg, topic: topic, group: topic + "-g", interval: time.Nanosecond, want: readFolds(t, cfg, topic, partitions)}
	first, err, _ := r.run(t, n/2, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The next latest-offset lookups of the input topic fail as while a
	// leader moves.
	var refused atomic.Int32
	c.ControlKey(kmsg.ListOffsets.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		lo := req.(*kmsg.ListOffsetsRequest)
		if len(lo.Topics) == 0 || lo.Topics[0].Topic != topic || len(lo.Topics[0].Partitions) == 0 ||
			lo.Topics[0].Partitions[0].Timestamp != -1 || refused.Load() >= refusals {
			return nil, nil, false
		}
		c.KeepControl()
		refused.Add(1)
		resp := lo.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range lo.Topics {
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.NotLeaderForPartition.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	hs, err, reg := r.run(t, n, 0)
	if err != nil {
		t.Fatal(err)
	}
	if refused.Load() == 0 {
		t.Fatal("no latest-offset lookup was refused: the test tests nothing")
	}
	r.checkRestored(t, first, hs)
	if d := testbed.CounterSum(reg, "metricpipe_checkpoints_discarded_total"); d != 0 {
		t.Errorf("discarded %v checkpoints, want none", d)
	}
}

// TestIncompatibleCheckpointsAreDiscarded: a checkpoint the handler cannot
// use (another version or configuration) is counted and logged, and the
// partition goes on cold from its committed offset, replaying nothing.
func TestIncompatibleCheckpointsAreDiscarded(t *testing.T) {
	const n, partitions = 3000, 3
	topic := testbed.UniqueName("ckpt")
	_, cfg := fakeCluster(t, topic, partitions)
	produceN(t, cfg, topic, n)
	r := checkpointRun{cfg: cfg, topic: topic, group: topic + "-g", interval: time.Nanosecond, want: readFolds(t, cfg, topic, partitions)}
	first, err, _ := r.run(t, n/2, 0)
	if err != nil {
		t.Fatal(err)
	}
	var handled int64
	for _, h := range first {
		handled += h.n
	}
	r.refuse = fmt.Errorf("%w: written under another configuration", stream.ErrIncompatible)
	hs, err, reg := r.run(t, n-handled, 0)
	if err != nil {
		t.Fatal(err)
	}
	var again, resumed int64
	for p, h := range hs {
		if h.restored || h.replayed != 0 {
			t.Errorf("partition %d: restored %v, replayed %d", p, h.restored, h.replayed)
		}
		again += h.n
		if first[p] != nil && first[p].n > 0 {
			resumed++
		}
	}
	if again != n-handled {
		t.Errorf("second member folded %d messages, want the %d not committed", again, n-handled)
	}
	if d := testbed.CounterSum(reg, "metricpipe_checkpoints_discarded_total"); d != float64(resumed) {
		t.Errorf("discarded %v checkpoints, want %d", d, resumed)
	}
}

// BenchmarkCheckpointStore writes a partition's checkpoint to the test
// bed's Kafka and reads it back as a restore does, for the sizes of 100,000
// series: the consumer's (about 440 bytes each) and the analyzer's (about
// 1,150). Restoring 100,000 series costs this read plus the stage's own
// Restore (see the movavg and analyzer benchmarks).
func BenchmarkCheckpointStore(b *testing.B) {
	cfg := Config{Brokers: []string{testbed.KafkaBrokers(b)}, ClientID: "bench"}
	for _, size := range []int{44 << 20, 114 << 20} {
		b.Run(fmt.Sprintf("MB=%d", size>>20), func(b *testing.B) {
			topic := testbed.UniqueName("bench-ckpt")
			testbed.DeleteTopicsAtCleanup(b, topic+"-state")
			admin, err := NewAdmin(cfg)
			if err != nil {
				b.Fatal(err)
			}
			gcfg := GroupConfig{Topic: topic, Group: topic, BatchSize: 1, BatchWait: time.Second, DrainTimeout: time.Second,
				Checkpoints: CheckpointConfig{Topic: topic + "-state", Interval: time.Second}}
			if err := admin.EnsureTopics(b.Context(), gcfg.Checkpoints.Topics(TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1})...); err != nil {
				b.Fatal(err)
			}
			gc, err := NewGroupConsumer(cfg, gcfg, zerolog.Nop(), prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			defer gc.Close()
			state := bytes.Repeat([]byte("metricpipe"), size/10)
			var save, load time.Duration
			for i := range b.N {
				start := time.Now()
				if _, err := gc.state.save(b.Context(), snapshot{seq: uint64(i + 1), next: int64(i + 1), taken: time.Now(), state: state}, 0); err != nil {
					b.Fatal(err)
				}
				save += time.Since(start)
				start = time.Now()
				s, found, _, err := gc.state.load(b.Context(), 0, zerolog.Nop())
				load += time.Since(start)
				if err != nil || !found || !bytes.Equal(s.state, state) {
					b.Fatalf("read back %d bytes (found %v): %v", len(s.state), found, err)
				}
			}
			b.ReportMetric(float64(save.Milliseconds())/float64(b.N), "save-ms")
			b.ReportMetric(float64(load.Milliseconds())/float64(b.N), "load-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// FuzzParseChunk: no message value on a state topic makes parseChunk panic,
// and what it accepts has an index below its count.
func FuzzParseChunk(f *testing.F) {
	h := chunkHeader{partition: 3, seq: 7, next: 1234, taken: time.Now().UnixNano(), index: 1, count: 2, total: 10, crc: 99}
	f.Add(append(h.append(nil), "state"...))
	f.Add([]byte(checkpointMagic + "\x02"))
	f.Fuzz(func(t *testing.T, v []byte) {
		h, b, err := parseChunk(v)
		if err != nil {
			return
		}
		if h.index >= h.count || len(b) > len(v) {
			t.Fatalf("accepted chunk %d of %d, %d bytes from %d", h.index, h.count, len(b), len(v))
		}
	})
}
