package kafkaio

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

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

// TestAdminNamesWhyNoBrokerAnswers: with no reachable broker kafka-go says
// only "[8] Broker Not Available"; the error must name each address and
// its cause.
func TestAdminNamesWhyNoBrokerAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, then says nothing TLS understands
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("not tls\n"))
			c.Close()
		}
	}()
	f := func(cfg Config, want ...string) {
		t.Helper()
		a, err := NewAdmin(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		for name, err := range map[string]error{"EnsureTopics": a.EnsureTopics(ctx, TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1}), "Ping": a.Ping(ctx)} {
			for _, w := range want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("%s: %v; want it to mention %q", name, err, w)
				}
			}
		}
	}
	f(Config{Brokers: []string{"127.0.0.1:1", "nosuchhost.invalid:9092"}, ClientID: "test"},
		"127.0.0.1:1", "connection refused", "nosuchhost.invalid:9092", "no such host")
	f(Config{Brokers: []string{ln.Addr().String()}, ClientID: "test", TLS: true}, ln.Addr().String(), "tls")
}
