package rules

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Watcher keeps the rules of one file current: it reloads the file when
// asked (the analyzer wires SIGHUP to Run's reload channel) and when the
// file's content changes, and hands every new valid set to its onLoad
// function. An invalid file is logged with all its problems and the
// previous rules stay in force.
type Watcher struct {
	path     string
	interval time.Duration
	log      zerolog.Logger
	onLoad   func(*Set)
	opts     Options
	cur      atomic.Pointer[Set]

	// Owned by Run.
	mod     time.Time // modification time and size at the last read
	size    int64
	sum     uint64 // hash of the content last read, valid or not
	lastErr string // the last read error logged, not to repeat it every poll
}

// NewWatcher loads the rule file at path and returns a Watcher holding it,
// or an error when the file cannot be read or is invalid (a service must not
// start without its rules). interval is how often Run polls the file for
// changes; 0 turns polling off, leaving the reload channel. onLoad, which may
// be nil, is called by Run with each new set; NewWatcher does not call it:
// the initial set is Current().
func NewWatcher(path string, interval time.Duration, log zerolog.Logger, onLoad func(*Set)) (*Watcher, error) {
	return NewWatcherWith(path, interval, Options{}, log, onLoad)
}

// NewWatcherWith is NewWatcher parsing every version with opts.
func NewWatcherWith(path string, interval time.Duration, opts Options, log zerolog.Logger, onLoad func(*Set)) (*Watcher, error) {
	var errs []error
	if path == "" {
		errs = append(errs, errors.New("rules file: empty path"))
	}
	if interval < 0 {
		errs = append(errs, fmt.Errorf("rules poll interval: must not be negative, got %s", interval))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	w := &Watcher{
		path:     path,
		interval: interval,
		log:      log.With().Str("rules_file", path).Logger(),
		onLoad:   onLoad,
		opts:     opts,
	}
	// Stat before reading: a change between the two then shows as a new
	// stamp at the next poll rather than going unnoticed.
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	set, err := ParseWith(path, data, opts)
	if err != nil {
		return nil, err
	}
	w.mod, w.size, w.sum = st.ModTime(), st.Size(), contentHash(data)
	w.cur.Store(set)
	w.log.Info().Int("rules", len(set.Rules)).Msg("rules loaded")
	return w, nil
}

// Current returns the rules in force: the set last passed to onLoad, or the
// initial one. It is safe for concurrent use and does not block.
func (w *Watcher) Current() *Set { return w.cur.Load() }

// Run watches the file until ctx is done, then returns nil. A value on
// reload makes it read and parse the file at once, logging the outcome
// whatever it is; every interval it compares the file's modification time
// and size with the last read and, when either moved, reads the file and
// parses it if its content hash changed. A valid set whose rules differ
// (by name and Hash, in order) from the current ones becomes current and is
// passed to onLoad, on Run's goroutine; a set with the same rules (say,
// only comments changed) is not. An invalid file is logged once per
// distinct content, and the current rules stay. A closed reload channel is
// ignored. Run must not be called twice at the same time.
func (w *Watcher) Run(ctx context.Context, reload <-chan struct{}) error {
	var tick <-chan time.Time
	if w.interval > 0 {
		t := time.NewTicker(w.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-reload:
			if !ok {
				reload = nil
				continue
			}
			w.check(true)
		case <-tick:
			w.check(false)
		}
	}
}

// check reloads the file if forced or if it changed.
func (w *Watcher) check(forced bool) {
	st, err := os.Stat(w.path)
	if err != nil {
		w.readFailed(forced, err)
		return
	}
	if !forced && st.ModTime().Equal(w.mod) && st.Size() == w.size {
		return
	}
	data, err := readFile(w.path)
	if err != nil {
		w.readFailed(forced, err)
		return
	}
	w.lastErr = ""
	sum := contentHash(data)
	w.mod, w.size = st.ModTime(), st.Size()
	if !forced && sum == w.sum {
		return // touched or rewritten with the same content
	}
	w.sum = sum
	set, err := ParseWith(w.path, data, w.opts)
	if err != nil {
		w.log.Error().Err(err).Msg("rules file invalid, keeping the current rules")
		return
	}
	old := w.cur.Load()
	if sameRules(old, set) {
		w.log.Info().Int("rules", len(set.Rules)).Msg("rules file reread, rules unchanged")
		return
	}
	added, changed, removed := diff(old, set)
	w.cur.Store(set)
	w.log.Info().Int("rules", len(set.Rules)).Int("added", added).Int("changed", changed).Int("removed", removed).
		Msg("rules reloaded")
	if w.onLoad != nil {
		w.onLoad(set)
	}
}

func (w *Watcher) readFailed(forced bool, err error) {
	if !forced && err.Error() == w.lastErr {
		return
	}
	w.lastErr = err.Error()
	w.log.Error().Err(err).Msg("rules file unreadable, keeping the current rules")
}

// diff counts the rules of b that a lacks, those whose Hash differs and
// the rules of a that b lacks, by name.
func diff(a, b *Set) (added, changed, removed int) {
	old := make(map[string]uint64, len(a.Rules))
	for _, r := range a.Rules {
		old[r.Name] = r.Hash
	}
	for _, r := range b.Rules {
		h, ok := old[r.Name]
		switch {
		case !ok:
			added++
		case h != r.Hash:
			changed++
		}
		delete(old, r.Name)
	}
	return added, changed, len(old)
}

func contentHash(data []byte) uint64 {
	h := fnv.New64a()
	h.Write(data)
	return h.Sum64()
}
