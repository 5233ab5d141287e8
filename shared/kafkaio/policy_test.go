package kafkaio

import (
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestBrokerActions: every error code a fetch can return is retried, save
// those retrying cannot cure, which stop the consumer with their name.
func TestBrokerActions(t *testing.T) {
	f := func(code kafka.Error, want fetchAction) {
		t.Helper()
		if got := brokerAction(code); got != want {
			t.Errorf("code %d (%s): %s, want %s", int(code), code.Title(), got, want)
		}
	}
	f(kafka.Unknown, actionRetry) // UNKNOWN_SERVER_ERROR: kafka-go's Temporary says no
	f(kafka.OffsetOutOfRange, actionOutOfRange)
	f(kafka.InvalidMessage, actionCorrupt) // CORRUPT_MESSAGE
	f(kafka.UnknownTopicOrPartition, actionRetry)
	f(kafka.LeaderNotAvailable, actionRetry)
	f(kafka.NotLeaderForPartition, actionRetry)
	f(kafka.RequestTimedOut, actionRefetch)
	f(kafka.BrokerNotAvailable, actionRetry)
	f(kafka.ReplicaNotAvailable, actionRetry)
	f(kafka.NetworkException, actionRetry)
	f(kafka.NotEnoughReplicas, actionRetry)
	f(kafka.KafkaStorageError, actionRetry)
	f(kafka.FetchSessionIDNotFound, actionRetry)
	f(kafka.InvalidFetchSessionEpoch, actionRetry)
	f(kafka.FencedLeaderEpoch, actionRetry)
	f(kafka.UnknownLeaderEpoch, actionRetry)
	f(kafka.OffsetNotAvailable, actionRetry)
	f(kafka.PreferredLeaderNotAvailable, actionRetry)
	f(kafka.ThrottlingQuotaExceeded, actionRetry)
	f(kafka.UnknownTopicID, actionRetry)
	f(kafka.InconsistentTopicID, actionRetry)
	f(kafka.Error(9999), actionRetry) // from a newer broker

	f(kafka.TopicAuthorizationFailed, actionFatal)
	f(kafka.GroupAuthorizationFailed, actionFatal)
	f(kafka.ClusterAuthorizationFailed, actionFatal)
	f(kafka.SASLAuthenticationFailed, actionFatal)
	f(kafka.UnsupportedSASLMechanism, actionFatal)
	f(kafka.UnsupportedVersion, actionFatal)
	f(kafka.UnsupportedForMessageFormat, actionFatal)
	f(kafka.UnsupportedCompressionType, actionFatal)
	f(kafka.InvalidRequest, actionFatal)
	f(kafka.InvalidTopic, actionFatal)

	// Every code kafka-go calls temporary is retried (or refetched).
	for code := kafka.Error(-1); code < 200; code++ {
		if code.Temporary() && code != kafka.InvalidMessage {
			if a := brokerAction(code); a != actionRetry && a != actionRefetch {
				t.Errorf("code %d (%s), temporary: %s", int(code), code.Title(), a)
			}
		}
	}
}

func TestFetchPolicyValidate(t *testing.T) {
	if errs := (FetchPolicy{}).validate(); len(errs) != 0 {
		t.Errorf("zero policy: %v", errs)
	}
	ok := FetchPolicy{ResetOffset: ResetLatest, OnCorruptBatch: CorruptSkip, IsolationLevel: ReadUncommitted}
	if errs := ok.validate(); len(errs) != 0 {
		t.Errorf("%+v: %v", ok, errs)
	}
	errs := FetchPolicy{ResetOffset: "none", OnCorruptBatch: "ignore", IsolationLevel: "dirty"}.validate()
	var text []string
	for _, err := range errs {
		text = append(text, err.Error())
	}
	all := strings.Join(text, "\n")
	for _, want := range []string{`--reset-offset "none"`, `--on-corrupt-batch "ignore"`, `--isolation-level "dirty"`} {
		if !strings.Contains(all, want) {
			t.Errorf("errors %q do not name %s", all, want)
		}
	}
}
