package kafkaio

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// Headers a dead-lettered message carries besides its original ones.
const (
	HeaderError           = "metricpipe-error"
	HeaderSourceTopic     = "metricpipe-source-topic"
	HeaderSourcePartition = "metricpipe-source-partition"
	HeaderSourceOffset    = "metricpipe-source-offset"
	HeaderService         = "metricpipe-service"
)

// DeadLetters publishes messages that cannot be processed to the dead-letter
// topic, unchanged, with headers naming the reason and the source position.
// It is safe for concurrent use.
type DeadLetters struct {
	w       *kafka.Writer
	service string
}

// NewDeadLetters returns a publisher to topic; service names the publisher in
// a header. The caller must Close it.
func NewDeadLetters(cfg Config, topic, service string) (*DeadLetters, error) {
	w, err := NewWriter(cfg, topic, WriterOptions{Linger: time.Millisecond})
	if err != nil {
		return nil, err
	}
	return &DeadLetters{w: w, service: service}, nil
}

// Publish writes src to the dead-letter topic with reason and blocks until the
// brokers acknowledged it, so the caller may then commit src's offset. It
// returns an error, and the caller must not commit, when the write failed or
// ctx was cancelled. src's bytes are copied: a write given up on when ctx
// ends is still sent by the writer later, when src's fetch buffer may hold
// other messages.
func (d *DeadLetters) Publish(ctx context.Context, src kafka.Message, reason error) error {
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
	msg := kafka.Message{Key: bytes.Clone(src.Key), Value: bytes.Clone(src.Value), Headers: headers, Time: src.Time}
	if err := d.w.WriteMessages(ctx, msg); err != nil {
		return fmt.Errorf("dead-letter %s/%d@%d to %q: %w", src.Topic, src.Partition, src.Offset, d.w.Topic, err)
	}
	return nil
}

// Close flushes and closes the underlying writer.
func (d *DeadLetters) Close() error { return d.w.Close() }
