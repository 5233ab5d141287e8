package kafkaio

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestSASLAgainstBroker authenticates with each mechanism against a broker
// that requires SASL, and fails with a wrong password.
func TestSASLAgainstBroker(t *testing.T) {
	for _, tc := range []struct{ mech, kfakeMech string }{
		{SASLPlain, "PLAIN"}, {SASLScramSHA256, "SCRAM-SHA-256"}, {SASLScramSHA512, "SCRAM-SHA-512"},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, pingTopic), kfake.EnableSASL(), kfake.Superuser(tc.kfakeMech, "metricpipe", "right"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cfg := Config{Brokers: c.ListenAddrs(), SASLMechanism: tc.mech, SASLUsername: "metricpipe", SASLPassword: "right"}
			if err := ping(t, cfg); err != nil {
				t.Fatalf("right password: %v", err)
			}
			cfg.SASLPassword = "wrong"
			if err := ping(t, cfg); err == nil {
				t.Fatal("wrong password accepted")
			}
		})
	}
}

// TestTLSAgainstBroker connects over TLS, verifying the broker with the CA
// file; without the CA the certificate is refused.
func TestTLSAgainstBroker(t *testing.T) {
	serverCert, caFile := selfSigned(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, pingTopic), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := Config{Brokers: c.ListenAddrs(), TLS: true, TLSCAFile: caFile}
	if err := ping(t, cfg); err != nil {
		t.Fatalf("TLS with CA: %v", err)
	}
	cfg.TLSCAFile = ""
	if err := ping(t, cfg); err == nil {
		t.Fatal("unknown certificate accepted without --kafka-tls-insecure-skip-verify")
	}
	cfg.TLSInsecureSkipVerify = true
	if err := ping(t, cfg); err != nil {
		t.Fatalf("TLS skip-verify: %v", err)
	}
}

const pingTopic = "ping"

// ping connects as the admin client and as a partition fetcher (which
// authenticates on its own connection) and fails unless both agree: both
// connect, or both are refused.
func ping(t *testing.T, cfg Config) error {
	t.Helper()
	admin, err := NewAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	adminErr := admin.Ping(t.Context())
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, _, fetchErr := testFetcher(t, cfg, pingTopic, zerolog.Nop()).connect(ctx, kafka.FirstOffset)
	if fetchErr == nil {
		conn.Close()
	}
	if (adminErr == nil) != (fetchErr == nil) {
		t.Fatalf("admin and fetcher disagree: admin %v, fetcher %v", adminErr, fetchErr)
	}
	return adminErr
}

// selfSigned returns a certificate for 127.0.0.1 and the path of a PEM file
// holding it as a CA.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kafka"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}
