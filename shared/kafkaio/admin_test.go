package kafkaio

import (
	"testing"

	"github.com/metricpipe/metricpipe/internal/testbed"
)

// TestEnsureTopicsOnRealKafka: missing topics are created with the requested
// partitions; existing ones keep theirs.
func TestEnsureTopicsOnRealKafka(t *testing.T) {
	cfg := Config{Brokers: []string{testbed.KafkaBrokers(t)}, ClientID: "test"}
	t.Logf("Apache Kafka %s", testbed.KafkaVersion(t))
	admin, err := NewAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := admin.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	existing, fresh := testbed.UniqueName("existing-"), testbed.UniqueName("fresh-")
	if err := admin.EnsureTopics(ctx, TopicSpec{Name: existing, Partitions: 3, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	if err := admin.EnsureTopics(ctx, TopicSpec{Name: existing, Partitions: 8, ReplicationFactor: 1},
		TopicSpec{Name: fresh, Partitions: 5, ReplicationFactor: 1}); err != nil {
		t.Fatalf("second EnsureTopics: %v", err)
	}
	for topic, want := range map[string]int{existing: 3, fresh: 5} {
		ends, err := admin.PartitionEnds(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if len(ends) != want {
			t.Errorf("%s has %d partitions, want %d", topic, len(ends), want)
		}
	}
	// Impossible replication on a one-broker cluster: a clear error naming the topic.
	bad := testbed.UniqueName("bad-")
	if err := admin.EnsureTopics(ctx, TopicSpec{Name: bad, Partitions: 1, ReplicationFactor: 3}); err == nil {
		t.Fatal("replication factor 3 on one broker succeeded")
	} else {
		t.Logf("expected error: %v", err)
	}
}
