package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// TopicSpec describes a topic to create when missing.
type TopicSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int
	Configs           map[string]string // topic settings at creation (cleanup.policy, ...)
}

// Validate reports invalid settings, naming the flags.
func (s TopicSpec) Validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("topic name is empty"))
	}
	if s.Partitions < 1 {
		errs = append(errs, fmt.Errorf("--partitions %d: want ≥ 1", s.Partitions))
	}
	if s.ReplicationFactor < 1 {
		errs = append(errs, fmt.Errorf("--replication-factor %d: want ≥ 1", s.ReplicationFactor))
	}
	return errors.Join(errs...)
}

// Admin issues cluster-level requests: topic creation and reachability
// probes. It is safe for concurrent use.
type Admin struct {
	client  *kafka.Client
	brokers []string
	dialer  *kafka.Dialer
}

// NewAdmin returns an Admin for the cluster described by cfg.
func NewAdmin(cfg Config) (*Admin, error) {
	tr, err := cfg.Transport()
	if err != nil {
		return nil, err
	}
	dialer, err := cfg.Dialer()
	if err != nil {
		return nil, err
	}
	return &Admin{client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: tr}, brokers: cfg.Brokers, dialer: dialer}, nil
}

// explain replaces what kafka-go says when no bootstrap broker could be
// reached ("[8] Broker Not Available", or the first broker's dial error)
// with each broker's own failure: connection refused, unknown host,
// timeout, TLS or SASL. A Kafka error from a broker that answered is
// returned as it is.
func (a *Admin) explain(ctx context.Context, err error) error {
	if kerr, ok := errors.AsType[kafka.Error](err); ok && kerr != kafka.BrokerNotAvailable {
		return err
	}
	var errs []error
	for _, b := range a.brokers {
		conn, derr := a.dialer.DialContext(ctx, "tcp", b)
		if derr != nil {
			errs = append(errs, fmt.Errorf("broker %s: %w", b, derr))
			continue
		}
		conn.Close()
	}
	if len(errs) < len(a.brokers) {
		return err // some broker answers: the error is the cluster's
	}
	return fmt.Errorf("no Kafka broker of --kafka-brokers answers: %w", errors.Join(errs...))
}

// EnsureTopics creates the topics that do not exist yet. Existing topics are
// left exactly as they are, whatever their partition count or settings.
func (a *Admin) EnsureTopics(ctx context.Context, specs ...TopicSpec) error {
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: s.ReplicationFactor}
		for k, v := range s.Configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		req.Topics = append(req.Topics, tc)
	}
	res, err := a.client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", a.explain(ctx, err))
	}
	var errs []error
	var created []string
	for _, s := range specs {
		switch err := res.Errors[s.Name]; {
		case err == nil:
			created = append(created, s.Name)
		case !errors.Is(err, kafka.TopicAlreadyExists):
			errs = append(errs, fmt.Errorf("create topic %q (%d partitions, replication %d): %w", s.Name, s.Partitions, s.ReplicationFactor, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return a.awaitLeaders(ctx, created)
}

// awaitLeaders waits until every partition of topics has a working leader,
// so a service that just created its topics can use them at once.
func (a *Admin) awaitLeaders(ctx context.Context, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := a.leadersElected(ctx, topics)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics %q created but not ready: %w", topics, err)
		case <-tick.C:
		}
	}
}

// leadersElected succeeds once every partition's leader answers for it: the
// controller's metadata can name a leader a moment before the broker acts
// as one.
func (a *Admin) leadersElected(ctx context.Context, topics []string) error {
	for _, t := range topics {
		if _, err := a.PartitionEnds(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// Ping succeeds when a broker answers a metadata request: the readiness
// check for Kafka.
func (a *Admin) Ping(ctx context.Context) error {
	res, err := a.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		return fmt.Errorf("kafka metadata: %w", a.explain(ctx, err))
	}
	if len(res.Brokers) == 0 {
		return errors.New("kafka metadata: no brokers in the cluster")
	}
	return nil
}

// PartitionEnds returns the next offset to be written (the high watermark) of
// every partition of topic.
func (a *Admin) PartitionEnds(ctx context.Context, topic string) (map[int]int64, error) {
	meta, err := a.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %q: %w", topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return nil, fmt.Errorf("metadata of %q: topic not found", topic)
	}
	reqs := make([]kafka.OffsetRequest, 0, len(meta.Topics[0].Partitions))
	for _, p := range meta.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	res, err := a.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %q: %w", topic, err)
	}
	ends := make(map[int]int64)
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("list offsets of %q partition %d: %w", topic, p.Partition, p.Error)
		}
		ends[p.Partition] = p.LastOffset
	}
	return ends, nil
}

// CommittedOffsets returns group's committed offset (the next offset it will
// read) for every partition of topic; -1 where nothing was committed.
func (a *Admin) CommittedOffsets(ctx context.Context, group, topic string) (map[int]int64, error) {
	ends, err := a.PartitionEnds(ctx, topic)
	if err != nil {
		return nil, err
	}
	parts := make([]int, 0, len(ends))
	for p := range ends {
		parts = append(parts, p)
	}
	res, err := a.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %q: %w", group, err)
	}
	if res.Error != nil {
		return nil, fmt.Errorf("fetch offsets of group %q: %w", group, res.Error)
	}
	out := make(map[int]int64)
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("fetch offsets of group %q partition %d: %w", group, p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}
