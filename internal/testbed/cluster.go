package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// Environment variables set by `scripts/testbed.sh cluster`, for the fault
// suite's 3-node Apache Kafka cluster.
const (
	EnvClusterBrokers       = "METRICPIPE_TEST_CLUSTER_BROKERS"      // plaintext listeners
	EnvClusterTLSBrokers    = "METRICPIPE_TEST_CLUSTER_TLS_BROKERS"  // TLS listeners
	EnvClusterSASLBrokers   = "METRICPIPE_TEST_CLUSTER_SASL_BROKERS" // SASL_SSL listeners (TLS and SCRAM)
	EnvClusterCAFile        = "METRICPIPE_TEST_CLUSTER_CA_FILE"      // PEM CA that signed the brokers' certificate
	EnvClusterSASLMechanism = "METRICPIPE_TEST_CLUSTER_SASL_MECHANISM"
	EnvClusterSASLUsername  = "METRICPIPE_TEST_CLUSTER_SASL_USERNAME"
	EnvClusterSASLPassword  = "METRICPIPE_TEST_CLUSTER_SASL_PASSWORD"
	EnvClusterKafkaVersion  = "METRICPIPE_TEST_CLUSTER_KAFKA_VERSION"
	EnvClusterJars          = "METRICPIPE_TEST_CLUSTER_JARS" // Kafka's jars, tools included

	envTestbedDir = "METRICPIPE_TESTBED_DIR" // where the script keeps the nodes' pids
)

// Cluster is the 3-node KRaft cluster `scripts/testbed.sh cluster` runs: each
// node is a broker and a controller, node N has id N. Its methods that
// disturb a node run the script and fail the test when it fails; they are
// not safe for concurrent use with each other.
type Cluster struct {
	Brokers, TLSBrokers, SASLBrokers []string
	CAFile                           string
	SASLMechanism                    string // as --kafka-sasl-mechanism takes it
	SASLUsername, SASLPassword       string
	Version                          string
	Jars                             string // directory of Kafka's jars

	script string
	state  string // the test bed's state directory
	client *kafka.Client
}

// NeedCluster returns the running cluster. Without its environment the test
// skips, or fails under METRICPIPE_TEST_REQUIRE_INTEGRATION=1: `make
// test-faults` starts the cluster and sets it; `make test`, which starts a
// single broker only, leaves the tests that need the cluster out.
func NeedCluster(t testing.TB) *Cluster {
	t.Helper()
	need := func(name string) string {
		t.Helper()
		v := os.Getenv(name)
		if v == "" {
			msg := fmt.Sprintf("fault test needs %s: run `make test-faults` (scripts/testbed.sh cluster run starts a 3-node Kafka cluster and InfluxDB)", name)
			if os.Getenv(EnvRequire) == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		return v
	}
	list := func(name string) []string { return strings.Split(need(name), ",") }
	c := &Cluster{
		Brokers:       list(EnvClusterBrokers),
		TLSBrokers:    list(EnvClusterTLSBrokers),
		SASLBrokers:   list(EnvClusterSASLBrokers),
		CAFile:        need(EnvClusterCAFile),
		SASLMechanism: need(EnvClusterSASLMechanism),
		SASLUsername:  need(EnvClusterSASLUsername),
		SASLPassword:  need(EnvClusterSASLPassword),
		Version:       need(EnvClusterKafkaVersion),
		Jars:          need(EnvClusterJars),
		script:        need(EnvTestbed),
		state:         need(envTestbedDir),
	}
	c.client = &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: 10 * time.Second}
	return c
}

// Nodes are the node ids of the cluster.
var Nodes = [...]int{1, 2, 3}

func (c *Cluster) run(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command(c.script, append([]string{"cluster"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testbed.sh cluster %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Kill sends SIGKILL to node n and returns once it is gone.
func (c *Cluster) Kill(t testing.TB, n int) { t.Helper(); c.run(t, "kill", strconv.Itoa(n)) }

// Pause freezes node n with SIGSTOP: its connections stay open, unanswered.
func (c *Cluster) Pause(t testing.TB, n int) { t.Helper(); c.run(t, "pause", strconv.Itoa(n)) }

// Resume thaws node n with SIGCONT.
func (c *Cluster) Resume(t testing.TB, n int) { t.Helper(); c.run(t, "resume", strconv.Itoa(n)) }

// Restart stops node n gracefully if it runs (SIGTERM: a controlled
// shutdown that moves its leaderships first), starts it again and returns
// once it serves.
func (c *Cluster) Restart(t testing.TB, n int) { t.Helper(); c.run(t, "restart", strconv.Itoa(n)) }

// Running reports whether node n's process is alive (paused counts).
func (c *Cluster) Running(n int) bool {
	b, err := os.ReadFile(filepath.Join(c.state, "cluster", fmt.Sprintf("node%d", n), "pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return false
	}
	p, err := os.FindProcess(pid)
	return err == nil && p.Signal(syscall.Signal(0)) == nil
}

// Heal resumes and restarts whatever node a test left paused or down, then
// waits until every partition of every topic has all its replicas in sync,
// so the next test starts on a whole cluster.
func (c *Cluster) Heal(t testing.TB, timeout time.Duration) {
	t.Helper()
	for _, n := range Nodes {
		if c.Running(n) {
			c.run(t, "resume", strconv.Itoa(n)) // a no-op unless paused
			continue
		}
		c.Restart(t, n)
	}
	c.AwaitInSync(t, timeout)
}

// Leaders returns the leader's node id of every partition of topic.
func (c *Cluster) Leaders(ctx context.Context, topic string) (map[int]int, error) {
	meta, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %q: %w", topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return nil, fmt.Errorf("metadata of %q: topic not found", topic)
	}
	out := map[int]int{}
	for _, p := range meta.Topics[0].Partitions {
		out[p.ID] = p.Leader.ID
	}
	return out, nil
}

// BusiestLeader returns the node leading most partitions of topic (the
// lowest id on a tie) and the partitions it leads.
func (c *Cluster) BusiestLeader(ctx context.Context, topic string) (node int, partitions []int, err error) {
	leaders, err := c.Leaders(ctx, topic)
	if err != nil {
		return 0, nil, err
	}
	led := map[int][]int{}
	for p, n := range leaders {
		led[n] = append(led[n], p)
	}
	for _, n := range Nodes {
		if len(led[n]) > len(partitions) {
			node, partitions = n, led[n]
		}
	}
	slices.Sort(partitions)
	return node, partitions, nil
}

// Coordinator returns the node coordinating group: the one its commits and
// heartbeats go to.
func (c *Cluster) Coordinator(ctx context.Context, group string) (int, error) {
	res, err := c.client.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{Key: group, KeyType: kafka.CoordinatorKeyTypeConsumer})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		return 0, fmt.Errorf("coordinator of group %q: %w", group, err)
	}
	return res.Coordinator.NodeID, nil
}

// OutOfSync lists the partitions, of every topic, whose in-sync replicas
// are fewer than their replicas or that have no leader.
func (c *Cluster) OutOfSync(ctx context.Context) ([]string, error) {
	meta, err := c.client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var out []string
	for _, tp := range meta.Topics {
		for _, p := range tp.Partitions {
			if len(p.Isr) < len(p.Replicas) || p.Leader.ID < 0 || p.Error != nil {
				out = append(out, fmt.Sprintf("%s/%d (isr %d of %d)", tp.Name, p.ID, len(p.Isr), len(p.Replicas)))
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// AwaitInSync waits until every replica of every partition is in sync: what
// an operator waits for between two brokers of a rolling restart.
func (c *Cluster) AwaitInSync(t testing.TB, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, "every replica in sync", func() (bool, string) {
		out, err := c.OutOfSync(t.Context())
		if err != nil {
			return false, err.Error()
		}
		return len(out) == 0, fmt.Sprintf("%d partitions out of sync: %s", len(out), strings.Join(first(out, 5), ", "))
	})
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// CreateTopic creates topic with partitions, replicated on all three nodes,
// with the given topic configs, and waits until every partition's leader
// answers for it.
func (c *Cluster) CreateTopic(ctx context.Context, topic string, partitions int, configs map[string]string) error {
	tc := kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: len(Nodes)}
	for k, v := range configs {
		tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
	}
	res, err := c.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{tc}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		return fmt.Errorf("create topic %q: %w", topic, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := c.Offsets(ctx, topic, kafka.LastOffset)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %q created but not ready: %w", topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SetTopicConfig sets configs of topic, leaving its others as they are.
func (c *Cluster) SetTopicConfig(ctx context.Context, topic string, configs map[string]string) error {
	rc := kafka.IncrementalAlterConfigsRequestResource{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic}
	for k, v := range configs {
		rc.Configs = append(rc.Configs, kafka.IncrementalAlterConfigsRequestConfig{Name: k, Value: v, ConfigOperation: kafka.ConfigOperationSet})
	}
	res, err := c.client.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{rc}})
	if err == nil {
		for _, r := range res.Resources {
			err = errors.Join(err, r.Error)
		}
	}
	if err != nil {
		return fmt.Errorf("set configs %v of topic %q: %w", configs, topic, err)
	}
	return nil
}

// Offsets returns, for every partition of topic, its first offset (at is
// kafka.FirstOffset: the oldest retention kept) or its end (kafka.LastOffset:
// the high watermark, the next offset to be written).
func (c *Cluster) Offsets(ctx context.Context, topic string, at int64) (map[int]int64, error) {
	meta, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %q: %w", topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return nil, fmt.Errorf("metadata of %q: topic not found", topic)
	}
	reqs := make([]kafka.OffsetRequest, 0, len(meta.Topics[0].Partitions))
	for _, p := range meta.Topics[0].Partitions {
		reqs = append(reqs, kafka.OffsetRequest{Partition: p.ID, Timestamp: at})
	}
	res, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %q: %w", topic, err)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("list offsets of %q partition %d: %w", topic, p.Partition, p.Error)
		}
		if at == kafka.FirstOffset {
			out[p.Partition] = p.FirstOffset
		} else {
			out[p.Partition] = p.LastOffset
		}
	}
	if len(out) != len(reqs) {
		return nil, fmt.Errorf("list offsets of %q: %d of %d partitions answered", topic, len(out), len(reqs))
	}
	return out, nil
}

// Committed returns group's committed offset of every partition of topic,
// -1 where it committed none.
func (c *Cluster) Committed(ctx context.Context, group, topic string, partitions int) (map[int]int64, error) {
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	res, err := c.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %q: %w", group, err)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("committed offsets of group %q partition %d: %w", group, p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// Java returns a command running class from Kafka's jars with args, such as
// org.apache.kafka.tools.ConsoleProducer.
func (c *Cluster) Java(class string, args ...string) *exec.Cmd {
	return exec.Command("java", append([]string{"-Xmx256m", "-cp", filepath.Join(c.Jars, "*"), class}, args...)...)
}
