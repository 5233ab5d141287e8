package service

import (
	"fmt"
	"os"
	"strings"
)

// Secret is a credential (a SASL password, an InfluxDB token). Its String and
// MarshalText methods redact it, so it never reaches a log line or a dump.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// MarshalText redacts the secret in JSON and zerolog output.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret itself, for handing to a client library.
func (s Secret) Reveal() string { return string(s) }

// LoadSecret returns value, or when file is set, the file's content with
// surrounding whitespace trimmed (so a mounted Kubernetes Secret works).
// Setting both is an error: the operator's intent would be ambiguous.
func LoadSecret(flag, value, file string) (Secret, error) {
	if file == "" {
		return Secret(value), nil
	}
	if value != "" {
		return "", fmt.Errorf("--%s and --%s-file are both set: use one", flag, flag)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--%s-file: %w", flag, err)
	}
	return Secret(strings.TrimSpace(string(b))), nil
}
