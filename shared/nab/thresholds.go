package nab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"
)

// SaveThresholds writes thresholds (by profile name) to path as a JSON
// object, replacing the file atomically (a temporary file in the same
// directory, then a rename). A threshold that is NaN or infinite cannot be
// written and is reported by name.
func SaveThresholds(path string, thresholds map[string]float64) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(thresholds)) {
		if v := thresholds[name]; math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("threshold of profile %q is %v: want a finite number", name, v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("save thresholds to %s: %w", path, err)
	}
	b, err := json.MarshalIndent(thresholds, "", "  ") // keys sorted: stable diffs
	if err != nil {
		return fmt.Errorf("save thresholds to %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save thresholds: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err = errors.Join(err, f.Close()); err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("save thresholds: %w", err)
	}
	return nil
}

// LoadThresholds reads a file written by SaveThresholds: a JSON object
// mapping profile names to numbers. Errors name the file.
func LoadThresholds(path string) (map[string]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load thresholds: %w", err)
	}
	var t map[string]float64
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, &ParseError{File: path, Err: err}
	}
	if t == nil {
		return nil, &ParseError{File: path, Err: errors.New(`want a JSON object {"profile": threshold, ...}`)}
	}
	return t, nil
}

// WriteReport writes results to w as a plain text table, one line per
// result in the given order: profile, threshold (6 significant digits;
// SaveThresholds keeps the exact value), normalised score, raw score, and
// the TP/FP/FN counts. It returns any write error.
func WriteReport(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	_, err := fmt.Fprintf(tw, "profile\tthreshold\tscore\traw\tTP\tFP\tFN\n")
	for _, r := range results {
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.3f\t%d\t%d\t%d\n",
			r.Profile, strconv.FormatFloat(r.Threshold, 'g', 6, 64), r.Normalized, r.Raw, r.TP, r.FP, r.FN)
	}
	return errors.Join(err, tw.Flush())
}
