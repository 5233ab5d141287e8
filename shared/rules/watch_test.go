package rules

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
)

// logBuffer collects the watcher's log lines; Run writes from its goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// writeRules writes the file and stamps it with a modification time of its
// own, so that the polls see every write whatever the file system's clock
// granularity (or sees none, for the reload test).
func writeRules(t *testing.T, path, content string, mtime int64) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, time.Unix(mtime, 0), time.Unix(mtime, 0)); err != nil {
		t.Fatal(err)
	}
}

const (
	rulesV1      = "rules:\n  - name: a\n    threshold: {above: 90}\n"
	rulesV1Moved = "# a comment only\nrules:\n  - name: a\n    threshold: {above: 90}\n"
	rulesV2      = "rules:\n  - name: a\n    threshold: {above: 91}\n"
	rulesV3      = "rules:\n  - name: a\n    threshold: {above: 92}\n" // as long as V2
	rulesBad     = "rules:\n  - name: a\n    threshold: {above: ninety}\n    for: 1d\n"
)

func TestWatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		path := filepath.Join(t.TempDir(), "rules.yaml")
		writeRules(t, path, rulesV1, 1)
		logs := &logBuffer{}
		loaded := make(chan *Set, 10)
		w, err := NewWatcher(path, interval, zerolog.New(logs), func(s *Set) { loaded <- s })
		if err != nil {
			t.Fatal(err)
		}
		first := w.Current()
		if len(first.Rules) != 1 || first.Rules[0].Threshold.Bound != 90 {
			t.Fatalf("initial set %+v", first)
		}
		ctx, cancel := context.WithCancel(t.Context())
		reload := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx, reload) }()

		// poll lets a poll happen and Run finish with it.
		poll := func() {
			time.Sleep(interval)
			synctest.Wait()
		}
		// next returns the set passed to onLoad since the last call, or nil.
		next := func() *Set {
			select {
			case s := <-loaded:
				return s
			default:
				return nil
			}
		}
		bound := func(s *Set) float64 { return s.Rules[0].Threshold.Bound }

		poll()
		if s := next(); s != nil {
			t.Fatalf("onLoad without a change: %+v", s)
		}

		// A valid change is loaded.
		writeRules(t, path, rulesV2, 2)
		poll()
		if s := next(); s == nil || bound(s) != 91 || w.Current() != s || s.Rules[0].Hash == first.Rules[0].Hash {
			t.Fatalf("after a change: onLoad %+v, current %+v", s, w.Current())
		}

		// A change the poll cannot see (same size, same time) is picked up by
		// a reload.
		writeRules(t, path, rulesV3, 2)
		poll()
		if s := next(); s != nil {
			t.Fatalf("invisible change loaded by a poll: %+v", s)
		}
		reload <- struct{}{}
		synctest.Wait()
		v3 := next()
		if v3 == nil || bound(v3) != 92 || w.Current() != v3 {
			t.Fatalf("after reload: onLoad %+v", v3)
		}
		// A reload of the same rules is logged, not passed on.
		reload <- struct{}{}
		synctest.Wait()
		if s := next(); s != nil || logs.count("rules file reread, rules unchanged") == 0 {
			t.Fatalf("unchanged reload: onLoad %+v", s)
		}

		// An invalid change is logged, with every problem, once; the rules stay.
		writeRules(t, path, rulesBad, 3)
		poll()
		poll()
		if s := next(); s != nil || w.Current() != v3 {
			t.Fatalf("invalid file loaded: %+v", s)
		}
		if n := logs.count(`"message":"rules file invalid, keeping the current rules"`); n != 1 {
			t.Errorf("invalid file logged %d times, want once:\n%s", n, logs.String())
		}
		for _, want := range []string{`"rules_file":"` + path + `"`, `rules.yaml:3: rules[0] (a): threshold.above: want a number, got \"ninety\"`, `rules.yaml:4: rules[0] (a): for: want a Go duration`} {
			if logs.count(want) == 0 {
				t.Errorf("log lacks %s:\n%s", want, logs.String())
			}
		}

		// Back to the rules in force, with a comment: no onLoad.
		writeRules(t, path, strings.Replace(rulesV3, "rules:", "# hi\nrules:", 1), 4)
		poll()
		if s := next(); s != nil || w.Current() != v3 {
			t.Fatalf("comment-only change loaded: %+v", s)
		}

		// A vanished file is logged once; the rules stay.
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		poll()
		poll()
		if n := logs.count("rules file unreadable"); n != 1 || w.Current().Rules[0].Threshold.Bound != 92 {
			t.Errorf("missing file logged %d times, want once", n)
		}
		// And comes back.
		writeRules(t, path, rulesV1Moved, 5)
		poll()
		if s := next(); s == nil || bound(s) != 90 {
			t.Fatalf("after the file came back: onLoad %+v", s)
		}

		// A closed reload channel is ignored; cancelling ctx ends Run.
		close(reload)
		poll()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
}

func TestNewWatcherErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeRules(t, bad, rulesBad, 1)
	f := func(path string, interval time.Duration, want string) {
		t.Helper()
		_, err := NewWatcher(path, interval, zerolog.Nop(), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewWatcher(%q, %v) = %v, want %q", path, interval, err, want)
		}
	}
	f(bad, time.Second, `bad.yaml:3: rules[0] (a): threshold.above: want a number, got "ninety"`)
	f(filepath.Join(dir, "missing.yaml"), time.Second, "load rules: stat ")
	f("", -time.Second, "rules file: empty path\nrules poll interval: must not be negative, got -1s")
}
