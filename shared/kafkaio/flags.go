package kafkaio

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/service"
)

// Flags returns the Kafka connection flags every service shares.
// clientID is the service's default client id.
func Flags(clientID string) []cli.Flag {
	const cat = "Kafka"
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "kafka-brokers", Value: cli.NewStringSlice("127.0.0.1:9092"), Usage: "bootstrap brokers, host:port, comma separated", EnvVars: service.EnvVars("kafka-brokers"), Category: cat},
		&cli.StringFlag{Name: "kafka-client-id", Value: clientID, Usage: "client id sent to the brokers", EnvVars: service.EnvVars("kafka-client-id"), Category: cat},
		&cli.BoolFlag{Name: "kafka-tls", Usage: "connect with TLS", EnvVars: service.EnvVars("kafka-tls"), Category: cat},
		&cli.StringFlag{Name: "kafka-tls-ca-file", Usage: "PEM CA bundle to verify the brokers (default: system roots)", EnvVars: service.EnvVars("kafka-tls-ca-file"), Category: cat},
		&cli.StringFlag{Name: "kafka-tls-cert-file", Usage: "PEM client certificate for mutual TLS", EnvVars: service.EnvVars("kafka-tls-cert-file"), Category: cat},
		&cli.StringFlag{Name: "kafka-tls-key-file", Usage: "PEM client key for mutual TLS", EnvVars: service.EnvVars("kafka-tls-key-file"), Category: cat},
		&cli.BoolFlag{Name: "kafka-tls-insecure-skip-verify", Usage: "accept any broker certificate (development only)", EnvVars: service.EnvVars("kafka-tls-insecure-skip-verify"), Category: cat},
		&cli.StringFlag{Name: "kafka-sasl-mechanism", Usage: "SASL mechanism: plain, scram-sha-256 or scram-sha-512 (empty: no SASL)", EnvVars: service.EnvVars("kafka-sasl-mechanism"), Category: cat},
		&cli.StringFlag{Name: "kafka-sasl-username", Usage: "SASL username", EnvVars: service.EnvVars("kafka-sasl-username"), Category: cat},
		&cli.StringFlag{Name: "kafka-sasl-password", Usage: "SASL password (prefer the environment variable or the file)", EnvVars: service.EnvVars("kafka-sasl-password"), Category: cat},
		&cli.StringFlag{Name: "kafka-sasl-password-file", Usage: "file holding the SASL password", EnvVars: service.EnvVars("kafka-sasl-password-file"), Category: cat},
	}
}

// ConfigFromCLI reads the flags of Flags. Its error, when the password file
// cannot be read, comes with the rest of the Config filled in, so the caller
// can report it together with Validate's.
func ConfigFromCLI(c *cli.Context) (Config, error) {
	pw, err := service.LoadSecret("kafka-sasl-password", c.String("kafka-sasl-password"), c.String("kafka-sasl-password-file"))
	return Config{
		Brokers:               splitList(c.StringSlice("kafka-brokers")),
		ClientID:              c.String("kafka-client-id"),
		TLS:                   c.Bool("kafka-tls"),
		TLSCAFile:             c.String("kafka-tls-ca-file"),
		TLSCertFile:           c.String("kafka-tls-cert-file"),
		TLSKeyFile:            c.String("kafka-tls-key-file"),
		TLSInsecureSkipVerify: c.Bool("kafka-tls-insecure-skip-verify"),
		SASLMechanism:         c.String("kafka-sasl-mechanism"),
		SASLUsername:          c.String("kafka-sasl-username"),
		SASLPassword:          pw,
	}, err
}

// TopicFlags returns --topic (the raw metrics topic), --partitions and
// --replication-factor; the last two apply only to topics created at start.
func TopicFlags() []cli.Flag {
	const cat = "Kafka"
	return []cli.Flag{
		&cli.StringFlag{Name: "topic", Value: DefaultTopic, Usage: "topic of raw metric points", EnvVars: service.EnvVars("topic"), Category: cat},
		&cli.IntFlag{Name: "partitions", Value: 8, Usage: "partitions of topics created at start when missing (existing topics are left as they are)", EnvVars: service.EnvVars("partitions"), Category: cat},
		&cli.IntFlag{Name: "replication-factor", Value: 1, Usage: "replication factor of topics created at start when missing", EnvVars: service.EnvVars("replication-factor"), Category: cat},
	}
}

// TopicSpecFromCLI returns the spec of a topic to create when missing, sized
// by the flags of TopicFlags.
func TopicSpecFromCLI(c *cli.Context, name string) TopicSpec {
	return TopicSpec{Name: name, Partitions: c.Int("partitions"), ReplicationFactor: c.Int("replication-factor")}
}

// GroupFlags returns --group, --drain-timeout and the fetch policy flags
// (read by FetchPolicyFromCLI) for a consuming service.
func GroupFlags(defaultGroup string) []cli.Flag {
	const cat = "Kafka"
	return []cli.Flag{
		&cli.StringFlag{Name: "group", Value: defaultGroup, Usage: "consumer group; instances with the same group share the partitions", EnvVars: service.EnvVars("group"), Category: cat},
		&cli.DurationFlag{Name: "drain-timeout", Value: 30 * time.Second, Usage: "on shutdown, time allowed to finish, write and commit what was fetched", EnvVars: service.EnvVars("drain-timeout"), Category: cat},
		&cli.StringFlag{Name: "reset-offset", Value: ResetEarliest, Usage: "where a partition whose offset lies beyond the log end (topic recreated or truncated) goes on from: earliest (handle the log again) or latest (skip it); an offset before the log start always goes on from the start", EnvVars: service.EnvVars("reset-offset"), Category: cat},
		&cli.StringFlag{Name: "on-corrupt-batch", Value: CorruptStop, Usage: "a record batch that cannot be decoded: stop (the partition waits at it, reported stuck and not ready) or skip (its messages are lost, counted)", EnvVars: service.EnvVars("on-corrupt-batch"), Category: cat},
		&cli.StringFlag{Name: "isolation-level", Value: ReadCommitted, Usage: "read_committed (drop the messages of aborted transactions) or read_uncommitted", EnvVars: service.EnvVars("isolation-level"), Category: cat},
		&cli.StringFlag{Name: "state-topic", Usage: "compacted topic of the partitions' checkpointed state, created when missing (empty: <group>-state)", EnvVars: service.EnvVars("state-topic"), Category: cat},
		&cli.DurationFlag{Name: "checkpoint-interval", Value: 30 * time.Second, Usage: "how often a busy partition's state is checkpointed, as well as when it is revoked or stopped; a restart or rebalance restores it and replays what followed (0: no checkpoints)", EnvVars: service.EnvVars("checkpoint-interval"), Category: cat},
	}
}

// CheckpointsFromCLI reads the checkpoint flags of GroupFlags.
func CheckpointsFromCLI(c *cli.Context) CheckpointConfig {
	interval := c.Duration("checkpoint-interval")
	if interval == 0 {
		return CheckpointConfig{}
	}
	topic := c.String("state-topic")
	if topic == "" {
		topic = c.String("group") + "-state"
	}
	return CheckpointConfig{Topic: topic, Interval: interval}
}

// FetchPolicyFromCLI reads the fetch policy flags of GroupFlags.
func FetchPolicyFromCLI(c *cli.Context) FetchPolicy {
	return FetchPolicy{ResetOffset: c.String("reset-offset"), OnCorruptBatch: c.String("on-corrupt-batch"), IsolationLevel: c.String("isolation-level")}
}
