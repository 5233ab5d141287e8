package kafkaio

import (
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// Values of FetchPolicy's fields; the first of each pair is the default.
const (
	ResetEarliest = "earliest"
	ResetLatest   = "latest"

	CorruptStop = "stop"
	CorruptSkip = "skip"

	ReadCommitted   = "read_committed"
	ReadUncommitted = "read_uncommitted"
)

// FetchPolicy is what a partition does with data it cannot read as it is.
// Its zero value is the default of every field.
type FetchPolicy struct {
	// ResetOffset is where a partition whose offset lies beyond the log end
	// (the topic was recreated, or an unclean leader election truncated
	// it) goes on from: ResetEarliest (default: nothing is skipped, some
	// messages may be handled again) or ResetLatest. An offset before the
	// log start (retention deleted it) always goes on from the log start.
	ResetOffset string
	// OnCorruptBatch is what a partition does with a record batch it cannot
	// decode (CRC mismatch, unknown codec, failed or oversized
	// decompression, a batch larger than the largest fetch): CorruptStop
	// (default) keeps the partition at the batch, reported stuck, and
	// retries it slowly; CorruptSkip moves past it, counting the messages
	// lost.
	OnCorruptBatch string
	// IsolationLevel is ReadCommitted (default: records of aborted
	// transactions are dropped, and open transactions are not read past) or
	// ReadUncommitted.
	IsolationLevel string
}

// validate reports every invalid field, each naming its flag.
func (p FetchPolicy) validate() []error {
	var errs []error
	switch p.ResetOffset {
	case "", ResetEarliest, ResetLatest:
	default:
		errs = append(errs, fmt.Errorf("--reset-offset %q: want %s or %s", p.ResetOffset, ResetEarliest, ResetLatest))
	}
	switch p.OnCorruptBatch {
	case "", CorruptStop, CorruptSkip:
	default:
		errs = append(errs, fmt.Errorf("--on-corrupt-batch %q: want %s or %s", p.OnCorruptBatch, CorruptStop, CorruptSkip))
	}
	switch p.IsolationLevel {
	case "", ReadCommitted, ReadUncommitted:
	default:
		errs = append(errs, fmt.Errorf("--isolation-level %q: want %s or %s", p.IsolationLevel, ReadCommitted, ReadUncommitted))
	}
	return errs
}

func (p FetchPolicy) resetLatest() bool   { return p.ResetOffset == ResetLatest }
func (p FetchPolicy) skipCorrupt() bool   { return p.OnCorruptBatch == CorruptSkip }
func (p FetchPolicy) readCommitted() bool { return p.IsolationLevel != ReadUncommitted }

// fetchAction is what the fetcher does about a failed fetch.
type fetchAction int

const (
	// actionRetry backs off, reconnects (to the leader, which may have
	// moved) and fetches again.
	actionRetry fetchAction = iota
	// actionRefetch fetches again at once on the same connection.
	actionRefetch
	// actionOutOfRange finds the log's bounds and moves the offset inside
	// them per FetchPolicy.ResetOffset.
	actionOutOfRange
	// actionCorrupt retries a few times, then applies
	// FetchPolicy.OnCorruptBatch.
	actionCorrupt
	// actionFatal stops the consumer with the error: retrying cannot cure it.
	actionFatal
)

func (a fetchAction) String() string {
	switch a {
	case actionRetry:
		return "retry"
	case actionRefetch:
		return "refetch"
	case actionOutOfRange:
		return "out of range"
	case actionCorrupt:
		return "corrupt"
	case actionFatal:
		return "fatal"
	}
	return fmt.Sprintf("fetchAction(%d)", int(a))
}

// brokerAction classifies the error code of a fetch or list-offsets
// response. Only what retrying cannot cure is fatal: a denied
// authorisation, a protocol or configuration the broker refuses. Every
// other code, including ones this table does not name (kafka-go's
// Temporary leaves out UNKNOWN_SERVER_ERROR, KAFKA_STORAGE_ERROR and
// REPLICA_NOT_AVAILABLE, which a broker returns while it recovers), is
// retried with backoff, counted and logged: stopping a whole service for a
// code a broker returns while a disk fails or a leader moves would turn a
// partition's hiccup into an outage.
func brokerAction(code kafka.Error) fetchAction {
	switch code {
	case kafka.OffsetOutOfRange:
		return actionOutOfRange
	case kafka.InvalidMessage: // CORRUPT_MESSAGE
		return actionCorrupt
	case kafka.RequestTimedOut:
		return actionRefetch
	case kafka.TopicAuthorizationFailed,
		kafka.GroupAuthorizationFailed,
		kafka.ClusterAuthorizationFailed,
		kafka.TransactionalIDAuthorizationFailed,
		kafka.BrokerAuthorizationFailed,
		kafka.DelegationTokenAuthorizationFailed,
		kafka.SASLAuthenticationFailed,
		kafka.UnsupportedSASLMechanism,
		kafka.IllegalSASLState,
		kafka.SecurityDisabled,
		kafka.PrincipalDeserializationFailure,
		kafka.UnsupportedVersion,
		kafka.UnsupportedForMessageFormat,
		kafka.UnsupportedCompressionType,
		kafka.InvalidRequest,
		kafka.InvalidTopic,
		kafka.InvalidMessageSize: // INVALID_FETCH_SIZE: our request is wrong
		return actionFatal
	}
	return actionRetry
}

// corruptBatchError reports a record batch that cannot be decoded, and
// where a fetcher that skips it goes on from.
type corruptBatchError struct {
	offset int64 // the batch's base offset
	next   int64 // past the batch
	err    error
}

func (e *corruptBatchError) Error() string {
	return fmt.Sprintf("record batch at offset %d: %v", e.offset, e.err)
}

func (e *corruptBatchError) Unwrap() error { return e.err }

// errIncomplete reports a fetch response that holds records but no whole
// record batch: the first batch is larger than the fetch's size.
var errIncomplete = errors.New("no complete record batch")
