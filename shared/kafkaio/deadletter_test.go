package kafkaio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestDeadLettersReferenceWhatCannotBeCopied: a message whose copy with the
// dead-letter headers exceeds a produce request would fail the same way on
// every retry and block its partition. It is dead-lettered at once as a
// reference naming its position and reason; small messages are still copied.
func TestDeadLettersReferenceWhatCannotBeCopied(t *testing.T) {
	const dlq = "metrics-dlq"
	_, cfg := fakeCluster(t, dlq, 1)
	d, err := NewDeadLetters(cfg, dlq, "consumer")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	value := bytes.Repeat([]byte("cpu v=1\n"), (1<<20)/8-4) // just under 1 MiB, as the source topic allowed
	big := kafka.Message{Topic: "metrics", Partition: 2, Offset: 7, Key: []byte("k"), Value: value,
		Headers: []kafka.Header{{Key: HeaderContentType, Value: []byte("text/plain")}}}
	small := kafka.Message{Topic: "metrics", Partition: 2, Offset: 8, Value: []byte("cpu v=oops")}
	reason := errors.New("line 3, byte 4: " + strings.Repeat("x", 200))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := d.Publish(ctx, big, reason); err != nil {
		t.Fatalf("Publish of a message near 1 MiB: %v", err)
	}
	if err := d.Publish(ctx, small, reason); err != nil {
		t.Fatal(err)
	}
	if got := d.References(); got != 1 {
		t.Fatalf("References() = %d, want 1", got)
	}
	letters := readMessages(t, cfg, dlq, 2)
	ref, copied := letters[0], letters[1]
	var got DeadLetterReference
	if err := json.Unmarshal(ref.Value, &got); err != nil {
		t.Fatalf("reference value %q: %v", ref.Value, err)
	}
	if HeaderValue(&ref, HeaderDeadLetter) != "reference" || got.Topic != "metrics" || got.Partition != 2 || got.Offset != 7 ||
		got.Reason != reason.Error() || got.Size < len(value) || !bytes.HasPrefix(value, got.FirstBytes) || len(got.FirstBytes) == 0 {
		t.Fatalf("reference = %+v (header %q), want metrics/2@7 with its reason, size and first bytes", got, HeaderValue(&ref, HeaderDeadLetter))
	}
	if string(copied.Value) != "cpu v=oops" || HeaderValue(&copied, HeaderDeadLetter) != "" {
		t.Fatalf("small message dead-lettered as %q, want a copy", copied.Value)
	}
}

// TestDeadLettersPublishLines: derived points that belong to no message are
// dead-lettered as line protocol with their reason.
func TestDeadLettersPublishLines(t *testing.T) {
	const dlq = "metrics-dlq"
	_, cfg := fakeCluster(t, dlq, 1)
	d, err := NewDeadLetters(cfg, dlq, "analyzer")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	lines := []byte("cpu v_forecast=1 1\n")
	if err := d.PublishLines(t.Context(), lines, errors.New("field type conflict")); err != nil {
		t.Fatal(err)
	}
	m := readMessages(t, cfg, dlq, 1)[0]
	if string(m.Value) != string(lines) || HeaderValue(&m, HeaderError) != "field type conflict" ||
		HeaderValue(&m, HeaderService) != "analyzer" || HeaderValue(&m, HeaderContentType) != "application/vnd.influx.line-protocol" {
		t.Fatalf("dead letter %q with headers %v", m.Value, m.Headers)
	}
}

// readMessages reads the first n messages of partition 0 of topic, failing
// t after 10 s.
func readMessages(t *testing.T, cfg Config, topic string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		var err error
		if msgs[i], err = r.ReadMessage(ctx); err != nil {
			t.Fatalf("message %d of %s: %v", i, topic, err)
		}
	}
	return msgs
}
