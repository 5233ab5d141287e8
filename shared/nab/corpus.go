package nab

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TimeLayout is the layout of data-file timestamps. Label timestamps carry
// a fractional second as well (".000000"), which parsing accepts.
const TimeLayout = "2006-01-02 15:04:05"

// ErrMismatch reports inputs that do not line up: a labels file and a data
// directory that do not list the same files, a label timestamp absent from
// its data file, or detector scores (or a result file) whose rows differ
// from the data's.
var ErrMismatch = errors.New("inputs do not match")

// ParseError locates a problem in an input file. Err holds the reason and
// may wrap ErrMismatch.
type ParseError struct {
	File string // the path as opened
	Line int    // 1-based line, 0 when the problem concerns the whole file
	Err  error
}

// Error returns "file:line: reason", or "file: reason" without a line.
func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

// Unwrap returns Err.
func (e *ParseError) Unwrap() error { return e.Err }

// Series is one data file.
type Series struct {
	// Name is the path relative to the data directory with forward
	// slashes, "category/name.csv"; it keys Corpus.Windows, score maps and
	// result files.
	Name   string
	Times  []time.Time // UTC, in file order; may repeat or step back
	Values []float64   // len(Values) == len(Times)
}

// Window is a labelled anomaly window: rows Start through End of a series,
// both inclusive, 0-based, Start <= End.
type Window struct{ Start, End int }

// Corpus is a set of series and their anomaly windows. Score, Optimize and
// Run only read it, so one Corpus may serve several of them concurrently.
type Corpus struct {
	Series []Series // LoadCorpus sorts them by Name
	// Windows maps a series name to its windows, sorted and disjoint. A
	// missing entry means no window.
	Windows map[string][]Window
}

// Validate reports every structural problem of c, joined: duplicate or
// empty names, Times and Values of different lengths, windows of unknown
// series, out of range, reversed, unsorted or overlapping. LoadCorpus only
// returns valid corpora; Validate is for corpora built by hand.
func (c *Corpus) Validate() error {
	var errs []error
	rows := make(map[string]int, len(c.Series))
	for i, s := range c.Series {
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("series %d: empty name", i))
		} else if _, dup := rows[s.Name]; dup {
			errs = append(errs, fmt.Errorf("series %q: given twice", s.Name))
		}
		rows[s.Name] = len(s.Times)
		if len(s.Times) != len(s.Values) {
			errs = append(errs, fmt.Errorf("series %q: %d times but %d values", s.Name, len(s.Times), len(s.Values)))
		}
	}
	for name, wins := range c.Windows {
		n, ok := rows[name]
		if !ok {
			errs = append(errs, fmt.Errorf("windows of %q: %w: no such series", name, ErrMismatch))
			continue
		}
		for j, w := range wins {
			switch {
			case w.Start < 0 || w.End >= n || w.Start > w.End:
				errs = append(errs, fmt.Errorf("%s window %d [%d, %d]: want 0 <= start <= end < %d", name, j, w.Start, w.End, n))
			case j > 0 && w.Start <= wins[j-1].End:
				errs = append(errs, fmt.Errorf("%s window %d [%d, %d]: starts at or before the end of window %d (row %d)", name, j, w.Start, w.End, j-1, wins[j-1].End))
			}
		}
	}
	return errors.Join(errs...)
}

// LoadCorpus reads every *.csv file under dataDir (at any depth) and the
// windows of labelsFile, a JSON object mapping "category/name.csv" to a
// list of [start, end] timestamp pairs.
//
// A data file must have the header "timestamp,value", timestamps written
// exactly as TimeLayout (so Run can write them back unchanged) and finite
// values. A window's start is the first row whose timestamp equals the
// start timestamp and its end is the first row at or after the start whose
// timestamp equals the end timestamp; this is NAB's convention (it scans
// for the first match), and it only matters for repeated timestamps, which
// no NAB window boundary has.
//
// Problems in data files are *ParseError values naming file and line. The
// labels file and the data directory must list the same files; every file
// listed on one side only is reported, wrapping ErrMismatch. All problems
// found are returned together.
func LoadCorpus(dataDir, labelsFile string) (*Corpus, error) {
	var paths []string
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".csv") {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list data directory: %w", err)
	}
	labels, err := readLabels(labelsFile)
	if err != nil {
		return nil, err
	}

	c := &Corpus{Windows: make(map[string][]Window, len(labels))}
	var errs []error
	found := make(map[string]bool, len(paths))
	for _, path := range paths {
		rel, err := filepath.Rel(dataDir, path)
		if err != nil {
			return nil, fmt.Errorf("name data file %s: %w", path, err)
		}
		name := filepath.ToSlash(rel)
		found[name] = true
		if _, ok := labels[name]; !ok {
			errs = append(errs, fmt.Errorf("%w: data file %s has no entry in %s", ErrMismatch, name, labelsFile))
			continue
		}
		s, err := readSeries(path, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.Series = append(c.Series, s)
	}
	for _, name := range slices.Sorted(maps.Keys(labels)) {
		if !found[name] {
			errs = append(errs, fmt.Errorf("%w: %s lists %s, but %s has no such file", ErrMismatch, labelsFile, name, dataDir))
		}
	}
	slices.SortFunc(c.Series, func(a, b Series) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range c.Series {
		wins, err := locate(&s, labels[s.Name])
		if err != nil {
			errs = append(errs, &ParseError{File: labelsFile, Err: err})
			continue
		}
		c.Windows[s.Name] = wins
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("windows of %s: %w", labelsFile, err)
	}
	return c, nil
}

// readLabels reads a windows file into name → [][start, end].
func readLabels(path string) (map[string][][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	var labels map[string][][]string
	if err := json.Unmarshal(b, &labels); err != nil {
		pe := &ParseError{File: path, Err: err}
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			pe.Line = 1 + bytes.Count(b[:se.Offset], []byte("\n"))
		case errors.As(err, &te):
			pe.Line = 1 + bytes.Count(b[:te.Offset], []byte("\n"))
		}
		return nil, pe
	}
	if labels == nil {
		return nil, &ParseError{File: path, Err: errors.New(`want a JSON object {"category/name.csv": [[start, end], ...], ...}`)}
	}
	return labels, nil
}

// locate turns the timestamp pairs of s's windows into row ranges.
func locate(s *Series, pairs [][]string) ([]Window, error) {
	wins := make([]Window, 0, len(pairs))
	for j, pair := range pairs {
		if len(pair) != 2 {
			return nil, fmt.Errorf("%s window %d: want [start, end], got %d timestamps", s.Name, j, len(pair))
		}
		var ts [2]time.Time
		for k, raw := range pair {
			t, err := time.Parse(TimeLayout, raw)
			if err != nil {
				return nil, fmt.Errorf("%s window %d: %w", s.Name, j, err)
			}
			ts[k] = t
		}
		start := slices.IndexFunc(s.Times, ts[0].Equal)
		if start < 0 {
			return nil, fmt.Errorf("%s window %d: %w: start %s is not a timestamp of the data file", s.Name, j, ErrMismatch, pair[0])
		}
		end := slices.IndexFunc(s.Times[start:], ts[1].Equal)
		if end < 0 {
			return nil, fmt.Errorf("%s window %d: %w: end %s is not a timestamp of the data file at or after the start (row %d)", s.Name, j, ErrMismatch, pair[1], start)
		}
		wins = append(wins, Window{Start: start, End: start + end})
	}
	return wins, nil
}

// readSeries reads one data file.
func readSeries(path, name string) (Series, error) {
	f, err := os.Open(path)
	if err != nil {
		return Series{}, fmt.Errorf("read data: %w", err)
	}
	defer f.Close()
	s := Series{Name: name}
	header := true
	err = readCSV(f, path, func(line int, rec []string) error {
		if header {
			header = false
			if len(rec) != 2 || rec[0] != "timestamp" || rec[1] != "value" {
				return fmt.Errorf("header %q: want \"timestamp,value\"", strings.Join(rec, ","))
			}
			return nil
		}
		t, err := parseTime(rec[0])
		if err != nil {
			return err
		}
		v, err := strconv.ParseFloat(rec[1], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("value %q: want a finite number", rec[1])
		}
		s.Times = append(s.Times, t)
		s.Values = append(s.Values, v)
		return nil
	})
	if err != nil {
		return Series{}, err
	}
	if len(s.Times) == 0 {
		return Series{}, &ParseError{File: path, Err: errors.New("no data rows")}
	}
	return s, nil
}

// parseTime parses a data-file timestamp, which must be written exactly as
// TimeLayout.
func parseTime(raw string) (time.Time, error) {
	t, err := time.Parse(TimeLayout, raw)
	if err != nil || t.Format(TimeLayout) != raw {
		return time.Time{}, fmt.Errorf("timestamp %q: want YYYY-MM-DD HH:MM:SS", raw)
	}
	return t, nil
}

// readCSV calls fn for every record of r, the header first, with its 1-based
// line number. Every record must have as many fields as the first.
// Errors, from the reader or fn, come back as a *ParseError for file.
func readCSV(r io.Reader, file string, fn func(line int, rec []string) error) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var ce *csv.ParseError
			if errors.As(err, &ce) {
				return &ParseError{File: file, Line: ce.Line, Err: ce.Err}
			}
			return &ParseError{File: file, Err: err}
		}
		line, _ := cr.FieldPos(0)
		if err := fn(line, rec); err != nil {
			return &ParseError{File: file, Line: line, Err: err}
		}
	}
}
