package kafkaio

import (
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// WriterOptions tunes a producer. The zero value takes the defaults below.
type WriterOptions struct {
	BatchSize  int           // messages per produce request; default 1000
	BatchBytes int64         // bytes per produce request; default 1 MiB
	Linger     time.Duration // wait for a batch to fill; default 10ms
	Async      bool          // fire-and-forget (errors go to Completion); default: WriteMessages blocks until acked
	Completion func(messages []kafka.Message, err error)
	// Patient retries a batch for about two minutes (see writeAttempts)
	// rather than kafka-go's eight seconds: for producers that have no
	// retry of their own. A writer whose callers retry (dead letters,
	// alert events) stays quick to report, and to close.
	Patient bool
}

// Validate reports invalid settings.
func (o WriterOptions) Validate() error {
	var errs []error
	if o.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("batch size %d: want ≥ 0", o.BatchSize))
	}
	if o.BatchBytes < 0 {
		errs = append(errs, fmt.Errorf("batch bytes %d: want ≥ 0", o.BatchBytes))
	}
	if o.Linger < 0 {
		errs = append(errs, fmt.Errorf("linger %s: want ≥ 0", o.Linger))
	}
	return errors.Join(errs...)
}

// Delivery retries of a Patient writer: kafka-go's defaults (10 attempts,
// backoff up to 1 s) give up after about 8 s, before a cluster has moved
// leadership off a killed broker (about 9 s seen on the test bed's
// cluster). These retry a batch for about two minutes, as the Java
// producer's delivery.timeout.ms, in order: a partition's batch is retried
// whole before the next is sent.
const (
	writeAttempts   = 60
	writeBackoffMin = 100 * time.Millisecond
	writeBackoffMax = 2 * time.Second
)

// NewWriter returns a producer to topic that waits for all in-sync replicas
// (acks=all) and partitions by message key with murmur2, the Java client's
// default, so a series lands in the same partition whichever client wrote
// it. The caller must Close it.
func NewWriter(cfg Config, topic string, o WriterOptions) (*kafka.Writer, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	tr, err := cfg.Transport()
	if err != nil {
		return nil, err
	}
	if o.BatchSize == 0 {
		o.BatchSize = 1000
	}
	if o.BatchBytes == 0 {
		o.BatchBytes = 1 << 20
	}
	if o.Linger == 0 {
		o.Linger = 10 * time.Millisecond
	}
	w := &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Topic:                  topic,
		Balancer:               &kafka.Murmur2Balancer{Consistent: true},
		RequiredAcks:           kafka.RequireAll,
		BatchSize:              o.BatchSize,
		BatchBytes:             o.BatchBytes,
		BatchTimeout:           o.Linger,
		Async:                  o.Async,
		Completion:             o.Completion,
		Transport:              tr,
		AllowAutoTopicCreation: false,
	}
	if o.Patient {
		w.MaxAttempts, w.WriteBackoffMin, w.WriteBackoffMax = writeAttempts, writeBackoffMin, writeBackoffMax
	}
	return w, nil
}
