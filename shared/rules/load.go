package rules

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// MaxFileBytes bounds the size of a rule file read by Load and the Watcher,
// so that a wrong path (a log file, a device) cannot exhaust memory.
const MaxFileBytes = 4 << 20

// Error is one problem of a rule file. Parse and Load return every problem
// of a file joined with errors.Join; errors.As finds the first, and the
// joined error's Unwrap() []error lists them all, in line order.
type Error struct {
	File string
	// Line is 1-based; 0 when unknown.
	Line int
	// Rule is the rule's index in the rules list, -1 for a problem outside
	// any rule; Name is the rule's name when it has a valid one.
	Rule int
	Name string
	// Field is the dotted path of the key at fault within the rule (such as
	// "threshold.above" or "match.tags.host") or, outside rules, from the
	// top of the file; empty for the rule or file as a whole.
	Field   string
	Problem string
}

// Error formats the problem as
// "file:line: rules[i] (name): field: problem".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Rule >= 0 {
		fmt.Fprintf(&b, "rules[%d]", e.Rule)
		if e.Name != "" {
			fmt.Fprintf(&b, " (%s)", e.Name)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// Load reads and parses the rule file at path (see Parse). Besides the
// *Error problems of Parse it returns the file's read error, wrapped.
func Load(path string) (*Set, error) { return LoadWith(path, Options{}) }

// LoadWith is Load with host settings: see Options.
func LoadWith(path string, opts Options) (*Set, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	return ParseWith(path, data, opts)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, MaxFileBytes)
	}
	return data, nil
}
