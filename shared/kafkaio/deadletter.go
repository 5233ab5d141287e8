package kafkaio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/service"
)

// Headers a dead-lettered message carries besides its original ones.
const (
	HeaderError           = "metricpipe-error"
	HeaderSourceTopic     = "metricpipe-source-topic"
	HeaderSourcePartition = "metricpipe-source-partition"
	HeaderSourceOffset    = "metricpipe-source-offset"
	HeaderService         = "metricpipe-service"
	// HeaderDeadLetter is "reference" on a dead letter that stands for a
	// message too large to copy whole (see DeadLetterReference).
	HeaderDeadLetter = "metricpipe-dead-letter"
)

// DeadLetterReference is the JSON value of a dead letter that names its
// message instead of copying it, when the copy and its headers would not
// fit in a produce request: the message stays readable at its position
// until retention removes it.
type DeadLetterReference struct {
	Topic      string `json:"topic"`
	Partition  int    `json:"partition"`
	Offset     int64  `json:"offset"`
	Reason     string `json:"reason"`
	Size       int    `json:"size"`        // of the message's key, value and headers
	FirstBytes []byte `json:"first_bytes"` // the value's first bytes (base64 in JSON)
}

// referenceBytes is how much of a referenced message's value its dead
// letter carries: enough to recognise it.
const referenceBytes = 1 << 10

// DeadLetterFlag is the --dlq-topic flag of the services that dead-letter.
func DeadLetterFlag() cli.Flag {
	return &cli.StringFlag{Name: "dlq-topic", Value: DefaultDLQTopic, Usage: "dead-letter topic for messages that cannot be decoded and points InfluxDB refuses",
		EnvVars: service.EnvVars("dlq-topic"), Category: "Kafka"}
}

// DeadLetters publishes messages that cannot be processed to the dead-letter
// topic, unchanged, with headers naming the reason and the source position.
// It is safe for concurrent use.
type DeadLetters struct {
	w          *kafka.Writer
	service    string
	backoff    retry.Backoff
	references atomic.Int64
	// OnRetry, when set, is called before a failed publish is retried
	// (for logs and metrics); set it before the first publish.
	OnRetry func(attempt int, delay time.Duration, err error)
}

// NewDeadLetters returns a publisher to topic; service names the publisher in
// a header. The caller must Close it.
func NewDeadLetters(cfg Config, topic, service string) (*DeadLetters, error) {
	w, err := NewWriter(cfg, topic, WriterOptions{Linger: time.Millisecond})
	if err != nil {
		return nil, err
	}
	return &DeadLetters{w: w, service: service, backoff: retry.DefaultBackoff()}, nil
}

// Publish writes src to the dead-letter topic with reason and blocks until the
// brokers acknowledged it, retrying failures with backoff, so the caller may
// then commit src's offset. It returns an error, and the caller must not
// commit, only when ctx ended first. src's bytes are copied: a write given up on when ctx
// ends is still sent by the writer later, when src's fetch buffer may hold
// other messages.
//
// A message too large to copy with its headers is dead-lettered as a
// DeadLetterReference instead, so one large message cannot block its
// partition: the write would fail the same way forever.
func (d *DeadLetters) Publish(ctx context.Context, src kafka.Message, reason error) error {
	if int64(messageBytes(&src))+deadLetterHeaderBytes(&src, reason) > d.w.BatchBytes {
		return d.publishReference(ctx, src, reason)
	}
	err := d.write(ctx, d.copyOf(src, reason))
	if isTooLarge(err) { // the broker's limit is below ours
		return d.publishReference(ctx, src, reason)
	}
	if err != nil {
		return fmt.Errorf("dead-letter %s/%d@%d to %q: %w", src.Topic, src.Partition, src.Offset, d.w.Topic, err)
	}
	return nil
}

// References returns how many dead letters were references.
func (d *DeadLetters) References() int64 { return d.references.Load() }

// PublishLines dead-letters points that belong to no single message (a
// moving average, a forecast, an alert) as lines of line protocol, with
// reason; as Publish, it returns once the brokers acknowledged them.
func (d *DeadLetters) PublishLines(ctx context.Context, lines []byte, reason error) error {
	msg := kafka.Message{Value: bytes.Clone(lines), Time: time.Now(), Headers: []kafka.Header{
		{Key: HeaderContentType, Value: []byte(point.FormatLine.ContentType())},
		{Key: HeaderError, Value: []byte(reason.Error())},
		{Key: HeaderService, Value: []byte(d.service)},
	}}
	if err := d.write(ctx, msg); err != nil {
		return fmt.Errorf("dead-letter %d bytes of derived points to %q: %w", len(lines), d.w.Topic, err)
	}
	return nil
}

func (d *DeadLetters) publishReference(ctx context.Context, src kafka.Message, reason error) error {
	ref, err := json.Marshal(DeadLetterReference{Topic: src.Topic, Partition: src.Partition, Offset: src.Offset,
		Reason: reason.Error(), Size: messageBytes(&src), FirstBytes: src.Value[:min(len(src.Value), referenceBytes)]})
	if err != nil {
		return fmt.Errorf("encode dead-letter reference: %w", err)
	}
	msg := kafka.Message{Key: bytes.Clone(src.Key[:min(len(src.Key), referenceBytes)]), Value: ref, Time: src.Time, Headers: []kafka.Header{
		{Key: HeaderDeadLetter, Value: []byte("reference")},
		{Key: HeaderContentType, Value: []byte("application/json")},
		{Key: HeaderError, Value: []byte(reason.Error())},
		{Key: HeaderSourceTopic, Value: []byte(src.Topic)},
		{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(src.Partition), 10)},
		{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, src.Offset, 10)},
		{Key: HeaderService, Value: []byte(d.service)},
	}}
	if err := d.write(ctx, msg); err != nil {
		return fmt.Errorf("dead-letter a reference to %s/%d@%d to %q: %w", src.Topic, src.Partition, src.Offset, d.w.Topic, err)
	}
	d.references.Add(1)
	return nil
}

// write publishes msg, retrying until the brokers took it, ctx ends, or
// it is too large to ever fit.
func (d *DeadLetters) write(ctx context.Context, msg kafka.Message) error {
	return retry.Do(ctx, d.backoff, func(ctx context.Context) error {
		err := d.w.WriteMessages(ctx, msg)
		if isTooLarge(err) {
			return retry.Permanent(err)
		}
		return err
	}, d.OnRetry)
}

// messageBytes is the size of m's key, value and headers.
func messageBytes(m *kafka.Message) int {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// deadLetterHeaderBytes bounds what a dead letter adds to its message: the
// five headers, and the record framing the producer counts (a few dozen
// bytes; 128 leaves room).
func deadLetterHeaderBytes(src *kafka.Message, reason error) int64 {
	return int64(len(reason.Error()) + len(src.Topic) + 2*20 + 5*24 + 128)
}

func isTooLarge(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[kafka.MessageTooLargeError](err); ok {
		return true
	}
	if errs, ok := errors.AsType[kafka.WriteErrors](err); ok {
		for _, e := range errs {
			if errors.Is(e, kafka.MessageSizeTooLarge) {
				return true
			}
		}
	}
	return errors.Is(err, kafka.MessageSizeTooLarge)
}

// copyOf is src with its bytes copied and the dead-letter headers added.
func (d *DeadLetters) copyOf(src kafka.Message, reason error) kafka.Message {
	headers := make([]kafka.Header, 0, len(src.Headers)+5)
	for _, h := range src.Headers {
		headers = append(headers, kafka.Header{Key: strings.Clone(h.Key), Value: bytes.Clone(h.Value)})
	}
	headers = append(headers,
		kafka.Header{Key: HeaderError, Value: []byte(reason.Error())},
		kafka.Header{Key: HeaderSourceTopic, Value: []byte(src.Topic)},
		kafka.Header{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(src.Partition), 10)},
		kafka.Header{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, src.Offset, 10)},
		kafka.Header{Key: HeaderService, Value: []byte(d.service)},
	)
	return kafka.Message{Key: bytes.Clone(src.Key), Value: bytes.Clone(src.Value), Headers: headers, Time: src.Time}
}

// Close flushes and closes the underlying writer.
func (d *DeadLetters) Close() error { return d.w.Close() }
