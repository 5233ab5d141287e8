package kafkaio

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/metricpipe/metricpipe/internal/testbed"
)

// waitUntil polls cond until it holds, failing t after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noMessages fails t when out delivers a message within d.
func noMessages(t *testing.T, f *fetcher, out <-chan chunk, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case c := <-out:
			if len(c.msgs) > 0 {
				t.Fatalf("message at offset %d delivered, want none", c.msgs[0].Offset)
			}
			f.recycle(c)
		case <-timeout:
			return
		}
	}
}

// countLines returns how many lines of log contain every one of subs.
func countLines(log *testbed.SyncBuffer, subs ...string) int {
	n := 0
	for _, line := range strings.Split(log.String(), "\n") {
		all := line != ""
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

// An offset beyond the log end (committed before the topic was recreated,
// or before an unclean leader election truncated it) goes on from the log
// start or its end per --reset-offset: counted, and logged once.
func TestFetcherResetsAnOffsetBeyondTheEnd(t *testing.T) {
	for _, tc := range []struct {
		policy  string
		from    int64   // first offset delivered
		skipped float64 // the messages the reset jumps over
	}{
		{ResetEarliest, 0, 0},
		{ResetLatest, 300, 300},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			const topic, n = "metrics", 300
			_, cfg := fakeCluster(t, topic, 1)
			produceOffsets(t, cfg, topic, 0, n)
			var logged testbed.SyncBuffer
			f, reg := testFetcherMetrics(t, cfg, topic, zerolog.New(&logged))
			f.policy.ResetOffset = tc.policy
			out, errc, _ := startFetcher(t, f, 1000)
			resets := func() float64 {
				return counterValue(t, reg, "metricpipe_kafka_offset_resets_total", map[string]string{"partition": "0", "reason": "beyond_end"})
			}
			waitUntil(t, "the offset reset", func() bool { return resets() > 0 })
			produceOffsets(t, cfg, topic, n, n+10)
			wantOffsets(t, collectOffsets(t, f, out, int(n+10-tc.from)), tc.from, n+10)
			if got := resets(); got != 1 {
				t.Errorf("%v resets counted, want 1", got)
			}
			if got := counterValue(t, reg, "metricpipe_kafka_messages_skipped_total", map[string]string{"partition": "0", "reason": "reset_" + tc.policy}); got != tc.skipped {
				t.Errorf("%v messages counted skipped, want %v", got, tc.skipped)
			}
			if got := countLines(&logged, `"level":"error"`, `"from":1000`, `"to":`+itoa(tc.from)); got != 1 {
				t.Errorf("%d error lines name the reset from 1000 to %d, want 1; logged:\n%s", got, tc.from, logged.String())
			}
			select {
			case err := <-errc:
				t.Fatalf("error reported: %v", err)
			default:
			}
		})
	}
}

// corruptions damage the middle batch of three, offsets 10..19, each in a
// way the decoder must refuse.
func corruptions(t *testing.T) map[string]func() []byte {
	resign := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
		return b
	}
	return map[string]func() []byte{
		"CRC mismatch": func() []byte {
			b := appendBatch(t, nil, batchSpec{base: 10, values: offsetValues(10, 20)})
			b[len(b)-3] ^= 0x40
			return b
		},
		"unknown compression codec": func() []byte {
			b := appendBatch(t, nil, batchSpec{base: 10, values: offsetValues(10, 20)})
			b[22] |= 6
			return resign(b)
		},
		"gzip": func() []byte { // a gzip batch whose body is not gzip
			b := appendBatch(t, nil, batchSpec{base: 10, values: offsetValues(10, 20)})
			b[22] |= byte(compress.Gzip)
			return resign(b)
		},
		"decompresses to more than": func() []byte { // 2 MiB of zeros, over the 1 MiB cap
			values := make([]string, 10)
			for i := range values {
				values[i] = string(make([]byte, 200<<10))
			}
			return appendBatch(t, nil, batchSpec{base: 10, values: values, codec: compress.Gzip})
		},
		"larger than": func() []byte { // 20 KiB: beyond the largest fetch, 16 KiB
			values := offsetValues(10, 20)
			for i := range values {
				values[i] += strings.Repeat(" ", 2<<10)
			}
			return appendBatch(t, nil, batchSpec{base: 10, values: values})
		},
	}
}

// A batch that cannot be decoded is skipped under --on-corrupt-batch skip:
// the messages around it are delivered, its own counted lost and logged
// once.
func TestFetcherSkipsCorruptBatches(t *testing.T) {
	for name, bad := range corruptions(t) {
		t.Run(name, func(t *testing.T) {
			c, cfg := fakeCluster(t, "metrics", 1)
			l := &fakeLog{truncate: true}
			l.set(appendBatch(t, nil, batchSpec{base: 0, values: offsetValues(0, 10)}), bad(),
				appendBatch(t, nil, batchSpec{base: 20, values: offsetValues(20, 30)}))
			serveLogs(c, l)
			var logged testbed.SyncBuffer
			f, reg := testFetcherMetrics(t, cfg, "metrics", zerolog.New(&logged))
			f.policy.OnCorruptBatch = CorruptSkip
			out, _, _ := startFetcher(t, f, kafka.FirstOffset)
			got := collectOffsets(t, f, out, 20)
			wantOffsets(t, got[:10], 0, 10)
			wantOffsets(t, got[10:], 20, 30)
			if n := counterValue(t, reg, "metricpipe_kafka_messages_skipped_total", map[string]string{"partition": "0", "reason": "corrupt"}); n != 10 {
				t.Errorf("%v messages counted skipped, want 10", n)
			}
			if n := countLines(&logged, `"level":"error"`, `"from":10`, `"to":20`, name); n != 1 {
				t.Errorf("%d error lines name the skip of 10..19 for %q, want 1; logged:\n%s", n, name, logged.String())
			}
		})
	}
}

// Under --on-corrupt-batch stop (the default) the partition stays at a
// batch that cannot be decoded, visibly: reported stuck, with the cause,
// and without stopping the fetcher, which goes on once the batch reads
// well (a damaged response rather than a damaged log).
func TestFetcherStopsAtCorruptBatchesVisibly(t *testing.T) {
	for name, bad := range corruptions(t) {
		t.Run(name, func(t *testing.T) {
			c, cfg := fakeCluster(t, "metrics", 1)
			l := &fakeLog{truncate: true}
			first, last := appendBatch(t, nil, batchSpec{base: 0, values: offsetValues(0, 10)}), appendBatch(t, nil, batchSpec{base: 20, values: offsetValues(20, 30)})
			l.set(first, bad(), last)
			serveLogs(c, l)
			var logged testbed.SyncBuffer
			f, reg := testFetcherMetrics(t, cfg, "metrics", zerolog.New(&logged))
			out, errc, _ := startFetcher(t, f, kafka.FirstOffset)
			wantOffsets(t, collectOffsets(t, f, out, 10), 0, 10)
			waitUntil(t, "the partition reported stuck", func() bool { return f.health.stuck() != nil })
			if err := f.health.stuck(); !strings.Contains(err.Error(), "partition 0 stuck at offset 10") || !strings.Contains(err.Error(), name) {
				t.Errorf("stuck: %v; want partition 0 at offset 10, and %q", err, name)
			}
			stuck := map[string]string{"partition": "0"}
			if since := counterValue(t, reg, "metricpipe_kafka_partition_stuck_since_seconds", stuck); since < float64(time.Now().Add(-time.Minute).Unix()) {
				t.Errorf("stuck since %v, want about now", since)
			}
			if n := countLines(&logged, `"level":"error"`, name); n < 1 {
				t.Errorf("no error logged naming %q; logged:\n%s", name, logged.String())
			}
			noMessages(t, f, out, 200*time.Millisecond)
			select {
			case err := <-errc:
				t.Fatalf("fetcher stopped: %v", err)
			default:
			}
			l.set(first, appendBatch(t, nil, batchSpec{base: 10, values: offsetValues(10, 20)}), last)
			wantOffsets(t, collectOffsets(t, f, out, 20), 10, 30)
			if err := f.health.stuck(); err != nil {
				t.Errorf("still stuck after the batch read well: %v", err)
			}
			if since := counterValue(t, reg, "metricpipe_kafka_partition_stuck_since_seconds", stuck); since != 0 {
				t.Errorf("stuck since %v after recovering, want 0", since)
			}
		})
	}
}

// A batch larger than the fetch size, from a broker that cuts responses
// at that size, is fetched again with a larger size; the fetches after it
// are the usual size again.
func TestFetcherGrowsTheFetchForALargeBatch(t *testing.T) {
	c, cfg := fakeCluster(t, "metrics", 1)
	l := &fakeLog{truncate: true}
	values := offsetValues(10, 20)
	for i := range values {
		values[i] += strings.Repeat(" ", 300) // 3 KiB: a 4 KiB fetch holds it
	}
	l.set(appendBatch(t, nil, batchSpec{base: 0, values: offsetValues(0, 10)}), appendBatch(t, nil, batchSpec{base: 10, values: values}),
		appendBatch(t, nil, batchSpec{base: 20, values: offsetValues(20, 30)}))
	serveLogs(c, l)
	f := testFetcher(t, cfg, "metrics", zerolog.Nop())
	out, _, _ := startFetcher(t, f, kafka.FirstOffset)
	got := 0
	timeout := time.After(10 * time.Second)
	for got < 30 {
		select {
		case ch := <-out:
			for _, m := range ch.msgs {
				if m.Offset != int64(got) || !strings.HasPrefix(string(m.Value), itoa(m.Offset)) {
					t.Fatalf("message %d at offset %d holds %.10q", got, m.Offset, m.Value)
				}
				got++
			}
			f.recycle(ch)
		case <-timeout:
			t.Fatalf("got %d of 30 messages", got)
		}
	}
	l.mu.Lock()
	sizes := slices.Clone(l.maxBytes)
	l.mu.Unlock()
	if !slices.Contains(sizes, 4<<10) || slices.Max(sizes) != 4<<10 {
		t.Errorf("fetch sizes %v: want the batch fetched with 4 KiB, and no more", sizes)
	}
	waitUntil(t, "a fetch of the usual size", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.maxBytes[len(l.maxBytes)-1] == 1<<10
	})
}

// The lag is set from every fetch response, also while the handler has not
// taken the last one: a backlog behind a stalled sink shows as it grows.
func TestFetcherReportsTheLagWhileTheHandlerIsBusy(t *testing.T) {
	const topic = "metrics"
	_, cfg := fakeCluster(t, topic, 1)
	f, reg := testFetcherMetrics(t, cfg, topic, zerolog.Nop())
	f.health.setNext(0) // nothing handled
	produceOffsets(t, cfg, topic, 0, 100)
	startFetcher(t, f, kafka.FirstOffset) // nobody takes what it fetched
	lag := func() float64 {
		return counterValue(t, reg, "metricpipe_kafka_consumer_lag", map[string]string{"partition": "0"})
	}
	waitUntil(t, "a lag of 100", func() bool { return lag() == 100 })
	produceOffsets(t, cfg, topic, 100, 600)
	waitUntil(t, "a lag of 600", func() bool { return lag() == 600 })
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A broker's CORRUPT_MESSAGE is retried a few times, then follows
// --on-corrupt-batch: stop reports the partition stuck; skip moves past
// one offset, the most the error names.
func TestFetcherCorruptMessageFromTheBroker(t *testing.T) {
	t.Run("stop", func(t *testing.T) {
		c, cfg := fakeCluster(t, "metrics", 1)
		produceOffsets(t, cfg, "metrics", 0, 10)
		fetchError(c, 2, 1_000_000)
		f := testFetcher(t, cfg, "metrics", zerolog.Nop())
		out, errc, _ := startFetcher(t, f, kafka.FirstOffset)
		waitUntil(t, "the partition reported stuck", func() bool { return f.health.stuck() != nil })
		if err := f.health.stuck(); !strings.Contains(err.Error(), "partition 0 stuck at offset 0") || !errors.Is(err, kafka.InvalidMessage) {
			t.Errorf("stuck: %v; want partition 0 at offset 0, by CORRUPT_MESSAGE", err)
		}
		noMessages(t, f, out, 100*time.Millisecond)
		select {
		case err := <-errc:
			t.Fatalf("fetcher stopped: %v", err)
		default:
		}
	})
	t.Run("skip", func(t *testing.T) {
		c, cfg := fakeCluster(t, "metrics", 1)
		produceOffsets(t, cfg, "metrics", 0, 10)
		fetchError(c, 2, corruptRetries+1)
		f, reg := testFetcherMetrics(t, cfg, "metrics", zerolog.Nop())
		f.policy.OnCorruptBatch = CorruptSkip
		out, _, _ := startFetcher(t, f, kafka.FirstOffset)
		wantOffsets(t, collectOffsets(t, f, out, 9), 1, 10)
		if n := counterValue(t, reg, "metricpipe_kafka_messages_skipped_total", map[string]string{"partition": "0", "reason": "corrupt"}); n != 1 {
			t.Errorf("%v messages counted skipped, want 1", n)
		}
	})
}

// A broker refusing the fetcher's credentials is as fatal when connecting
// as when fetching: retrying cannot cure it.
func TestFetcherReportsARefusedLogin(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "metrics"), kfake.EnableSASL(), kfake.Superuser("PLAIN", "metricpipe", "right"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := Config{Brokers: c.ListenAddrs(), SASLMechanism: SASLPlain, SASLUsername: "metricpipe", SASLPassword: "wrong"}
	f := testFetcher(t, cfg, "metrics", zerolog.Nop())
	out, errc, _ := startFetcher(t, f, kafka.FirstOffset)
	select {
	case err := <-errc:
		if !errors.Is(err, kafka.SASLAuthenticationFailed) {
			t.Fatalf("error %v, want SASL authentication failed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no error reported")
	}
	for range out { // closed once the fetcher returned
	}
}
