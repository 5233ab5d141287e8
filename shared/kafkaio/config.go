package kafkaio

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/metricpipe/metricpipe/shared/service"
)

// Default topic and group names.
const (
	DefaultTopic         = "metrics"
	DefaultAlertTopic    = "metrics-alerts"
	DefaultDLQTopic      = "metrics-dlq"
	DefaultConsumerGroup = "metricpipe-consumer"
	DefaultAnalyzerGroup = "metricpipe-analyzer"
)

// SASL mechanisms accepted by --kafka-sasl-mechanism.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// Config is how to reach the Kafka cluster. It holds settings only; clients
// are built from it on demand.
type Config struct {
	Brokers  []string
	ClientID string

	TLS                   bool
	TLSCAFile             string
	TLSCertFile           string
	TLSKeyFile            string
	TLSInsecureSkipVerify bool // development only: accepts any server certificate

	SASLMechanism string // "", or one of the SASL* constants
	SASLUsername  string
	SASLPassword  service.Secret
}

// Validate reports every invalid setting, each naming its flag.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("--kafka-brokers: at least one broker address is required"))
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("--kafka-brokers %q: want host:port: %w", b, err))
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("--kafka-tls-cert-file and --kafka-tls-key-file go together: set both or neither"))
	}
	if !c.TLS && (c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSInsecureSkipVerify) {
		errs = append(errs, errors.New("--kafka-tls-* options are set but --kafka-tls is off"))
	}
	switch c.SASLMechanism {
	case "":
		if c.SASLUsername != "" || c.SASLPassword != "" {
			errs = append(errs, errors.New("--kafka-sasl-username/password are set but --kafka-sasl-mechanism is empty"))
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if c.SASLUsername == "" {
			errs = append(errs, fmt.Errorf("--kafka-sasl-username: required with --kafka-sasl-mechanism %s", c.SASLMechanism))
		}
	default:
		errs = append(errs, fmt.Errorf("--kafka-sasl-mechanism %q: want plain, scram-sha-256 or scram-sha-512", c.SASLMechanism))
	}
	return errors.Join(errs...)
}

func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSInsecureSkipVerify} //nolint:gosec // opt-in for development, documented
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("read --kafka-tls-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--kafka-tls-ca-file %s: no PEM certificate found", c.TLSCAFile)
		}
		cfg.RootCAs = pool
	}
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("load --kafka-tls-cert-file/--kafka-tls-key-file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func (c Config) saslMechanism() (sasl.Mechanism, error) {
	switch c.SASLMechanism {
	case "":
		return nil, nil
	case SASLPlain:
		return plain.Mechanism{Username: c.SASLUsername, Password: c.SASLPassword.Reveal()}, nil
	case SASLScramSHA256, SASLScramSHA512:
		algo := scram.SHA256
		if c.SASLMechanism == SASLScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, c.SASLUsername, c.SASLPassword.Reveal())
		if err != nil {
			return nil, fmt.Errorf("--kafka-sasl-mechanism %s: %w", c.SASLMechanism, err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("--kafka-sasl-mechanism %q: unsupported", c.SASLMechanism)
}

// dialTimeout bounds connection set-up (TCP, TLS, SASL) to one broker.
const dialTimeout = 10 * time.Second

// security returns the TLS configuration and SASL mechanism, nil when off.
func (c Config) security() (*tls.Config, sasl.Mechanism, error) {
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	mech, err := c.saslMechanism()
	return tlsCfg, mech, err
}

// wireSecurity returns how the fetchers' own connections authenticate.
func (c Config) wireSecurity() (wireSecurity, error) {
	tlsCfg, mech, err := c.security()
	return wireSecurity{tls: tlsCfg, sasl: mech, clientID: c.ClientID}, err
}

// Transport builds the transport used by writers and admin requests.
func (c Config) Transport() (*kafka.Transport, error) {
	tlsCfg, mech, err := c.security()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{ClientID: c.ClientID, TLS: tlsCfg, SASL: mech, DialTimeout: dialTimeout}, nil
}

// Dialer builds the dialer used by readers (kafka-go's Reader does not take a
// Transport).
func (c Config) Dialer() (*kafka.Dialer, error) {
	tlsCfg, mech, err := c.security()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{ClientID: c.ClientID, TLS: tlsCfg, SASLMechanism: mech, Timeout: dialTimeout, DualStack: true}, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s []string) []string {
	var out []string
	for _, item := range s {
		for _, part := range strings.Split(item, ",") {
			if p := strings.TrimSpace(part); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
