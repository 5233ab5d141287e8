package nab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Detector scores one series as it streams. Score is called once per row,
// in input order, from one goroutine, with the row's timestamp and value;
// it returns the row's anomaly score, higher meaning more anomalous. NaN
// means no opinion and is never a detection.
type Detector interface {
	Score(t time.Time, v float64) float64
}

// DetectorFunc adapts a function to Detector.
type DetectorFunc func(t time.Time, v float64) float64

// Score returns f(t, v).
func (f DetectorFunc) Score(t time.Time, v float64) float64 { return f(t, v) }

// resultHeader is the header of a result file.
const resultHeader = "timestamp,value,anomaly_score\n"

// ctxCheckRows is how many rows a series runs between checks of ctx: often
// enough to stop within a millisecond or so, rarely enough to cost nothing.
const ctxCheckRows = 4096

// Run feeds every series of c to its own detector, newDetector(name), and
// writes the scores (unless outDir is empty) to outDir/<name> ("category/name.csv") as
// "timestamp,value,anomaly_score" rows, one per input row in input order,
// timestamps written as in the input and numbers in the shortest form that
// parses back to the same float64. It returns the scores by series name;
// the caller owns them.
//
// Series run in parallel, at most GOMAXPROCS at a time; newDetector is
// called from several goroutines at once, and each Detector it returns is
// used by one goroutine only. A result file appears only once complete
// (written to a temporary file, then renamed). Cancelling ctx stops the
// run; Run then returns ctx's error. On the first failure (a write error,
// or a detector panicking) Run stops the other series and returns that
// error. Files of series that completed stay in outDir either way.
func Run(ctx context.Context, c *Corpus, newDetector func(name string) Detector, outDir string) (map[string][]float64, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("run detector: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	out := make([][]float64, len(c.Series)) // out[i] is written by one worker only
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(c.Series)) {
		wg.Go(func() {
			for i := range jobs {
				s := &c.Series[i]
				sc, err := runSeries(ctx, s, newDetector(s.Name), outDir)
				if err != nil {
					cancel(err)
					continue // drain jobs; the feeder stops at once
				}
				out[i] = sc
			}
		})
	}
feed:
	for i := range c.Series {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	res := make(map[string][]float64, len(c.Series))
	for i, s := range c.Series {
		res[s.Name] = out[i]
	}
	return res, nil
}

// runSeries runs d over s and writes its result file, unless outDir is
// empty.
func runSeries(ctx context.Context, s *Series, d Detector, outDir string) (scores []float64, err error) {
	if outDir == "" {
		return scoreSeries(ctx, s, d)
	}
	path := filepath.Join(outDir, filepath.FromSlash(s.Name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("write results of %s: %w", s.Name, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("write results of %s: %w", s.Name, err)
	}
	defer func() {
		if r := recover(); r != nil {
			scores, err = nil, fmt.Errorf("detector for %s panicked: %v", s.Name, r)
		}
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	scores = make([]float64, len(s.Times))
	w := bufio.NewWriterSize(f, 64<<10)
	w.WriteString(resultHeader)
	var line []byte
	for i, t := range s.Times {
		if i%ctxCheckRows == 0 && ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		scores[i] = d.Score(t, s.Values[i])
		line = t.AppendFormat(line[:0], TimeLayout)
		line = append(line, ',')
		line = strconv.AppendFloat(line, s.Values[i], 'g', -1, 64)
		line = append(line, ',')
		line = strconv.AppendFloat(line, scores[i], 'g', -1, 64)
		line = append(line, '\n')
		w.Write(line) // a write error sticks; Flush reports it
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		return nil, fmt.Errorf("write results of %s: %w", s.Name, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return nil, fmt.Errorf("write results of %s: %w", s.Name, err)
	}
	return scores, nil
}

// scoreSeries runs d over s.
func scoreSeries(ctx context.Context, s *Series, d Detector) (scores []float64, err error) {
	defer func() {
		if r := recover(); r != nil {
			scores, err = nil, fmt.Errorf("detector for %s panicked: %v", s.Name, r)
		}
	}()
	scores = make([]float64, len(s.Times))
	for i, t := range s.Times {
		if i%ctxCheckRows == 0 && ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		scores[i] = d.Score(t, s.Values[i])
	}
	return scores, nil
}

// LoadResults reads the result file outDir/<name> of every series of c and
// returns the anomaly scores by series name. Any tool's NAB result files
// will do: the score is the column headed "anomaly_score" or, in a file of
// exactly three columns, the third (a 0/1 alert column, say); other
// columns are ignored, as are files in outDir that c does not name. Each
// file must have a "timestamp" column and one row per data row with the
// same timestamp; a file that does not is reported wrapping ErrMismatch.
// Problems of every file are returned together, as *ParseError values
// naming file and line where there is one.
func LoadResults(outDir string, c *Corpus) (map[string][]float64, error) {
	res := make(map[string][]float64, len(c.Series))
	var errs []error
	for i := range c.Series {
		s := &c.Series[i]
		sc, err := readResults(filepath.Join(outDir, filepath.FromSlash(s.Name)), s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res[s.Name] = sc
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return res, nil
}

// readResults reads the result file of s at path.
func readResults(path string, s *Series) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	defer f.Close()
	scores := make([]float64, 0, len(s.Times))
	tcol, scol := -1, -1
	err = readCSV(f, path, func(line int, rec []string) error {
		if tcol < 0 {
			tcol = slices.Index(rec, "timestamp")
			scol = slices.Index(rec, "anomaly_score")
			if scol < 0 && len(rec) == 3 {
				scol = 2
			}
			if tcol < 0 || scol < 0 || tcol == scol {
				return fmt.Errorf("header %q: want a timestamp column and an anomaly_score column", rec)
			}
			return nil
		}
		row := len(scores)
		if row >= len(s.Times) {
			return fmt.Errorf("%w: more rows than the %d of %s", ErrMismatch, len(s.Times), s.Name)
		}
		t, err := time.Parse(TimeLayout, rec[tcol])
		if err != nil {
			return fmt.Errorf("timestamp %q: %w", rec[tcol], err)
		}
		if !t.Equal(s.Times[row]) {
			return fmt.Errorf("%w: timestamp %s, but row %d of %s is at %s", ErrMismatch, rec[tcol], row+1, s.Name, s.Times[row].Format(TimeLayout))
		}
		v, err := strconv.ParseFloat(rec[scol], 64)
		if err != nil {
			return fmt.Errorf("anomaly score %q: want a number", rec[scol])
		}
		scores = append(scores, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(scores) != len(s.Times) {
		return nil, &ParseError{File: path, Err: fmt.Errorf("%w: %d rows, but %s has %d", ErrMismatch, len(scores), s.Name, len(s.Times))}
	}
	return scores, nil
}
