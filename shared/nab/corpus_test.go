package nab

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	testData   = "testdata/corpus/data"
	testLabels = "testdata/corpus/labels/windows.json"
)

func TestLoadCorpus(t *testing.T) {
	c, err := LoadCorpus(testData, testLabels)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Series) != 2 || c.Series[0].Name != "cat/flat.csv" || c.Series[1].Name != "cat/rep.csv" {
		t.Fatalf("series %v", c.Series)
	}
	rep := c.Series[1]
	if len(rep.Times) != 20 || rep.Values[1] != 0.06453452400000001 || rep.Values[3] != -3.5 {
		t.Fatalf("rep.csv: %d rows, values %v", len(rep.Times), rep.Values)
	}
	// The start timestamp is on rows 7 and 8, the end one on rows 10 and 12
	// (after a step back): the first of each.
	if w := c.Windows["cat/rep.csv"]; len(w) != 1 || w[0] != (Window{7, 10}) {
		t.Fatalf("rep.csv windows %v, want [{7 10}]", w)
	}
	if w, ok := c.Windows["cat/flat.csv"]; !ok || len(w) != 0 {
		t.Fatalf("flat.csv windows %v %v", w, ok)
	}
}

// writeTree writes files (path → content) under a new temporary directory
// and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadCorpusErrors(t *testing.T) {
	const good = "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,2\n2014-04-01 00:10:00,3\n"
	const labels = `{"a/x.csv": []}`
	f := func(files map[string]string, mismatch bool, want ...string) {
		t.Helper()
		if _, ok := files["labels.json"]; !ok {
			files["labels.json"] = labels
		}
		dir := writeTree(t, files)
		_, err := LoadCorpus(filepath.Join(dir, "data"), filepath.Join(dir, "labels.json"))
		if err == nil {
			t.Fatalf("want error %q", want)
		}
		msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("error %q does not mention %q", msg, w)
			}
		}
		if errors.Is(err, ErrMismatch) != mismatch {
			t.Errorf("error %q: errors.Is(ErrMismatch) = %v", msg, !mismatch)
		}
	}
	f(map[string]string{"data/a/x.csv": strings.Replace(good, "00:05:00", "00:05", 1)}, false,
		`data/a/x.csv:3: timestamp "2014-04-01 00:05": want YYYY-MM-DD HH:MM:SS`)
	f(map[string]string{"data/a/x.csv": strings.Replace(good, "00:05:00", "00:05:00.5", 1)}, false,
		`data/a/x.csv:3: timestamp "2014-04-01 00:05:00.5"`)
	f(map[string]string{"data/a/x.csv": strings.Replace(good, ",2\n", ",two\n", 1)}, false,
		`data/a/x.csv:3: value "two": want a finite number`)
	f(map[string]string{"data/a/x.csv": strings.Replace(good, ",3\n", ",NaN\n", 1)}, false, `data/a/x.csv:4: value "NaN"`)
	f(map[string]string{"data/a/x.csv": good + "2014-04-01 00:15:00,4,5\n"}, false, "data/a/x.csv:5: wrong number of fields")
	f(map[string]string{"data/a/x.csv": "time,value\n2014-04-01 00:00:00,1\n"}, false, `data/a/x.csv:1: header "time,value"`)
	f(map[string]string{"data/a/x.csv": "timestamp,value\n"}, false, "data/a/x.csv: no data rows")
	// Labels and data list different files: every difference is reported.
	f(map[string]string{"data/a/x.csv": good, "data/b/extra.csv": good, "labels.json": `{"a/x.csv": [], "b/gone.csv": [], "c/gone.csv": []}`}, true,
		"data file b/extra.csv has no entry in labels.json",
		"labels.json lists b/gone.csv, but data has no such file",
		"labels.json lists c/gone.csv, but data has no such file")
	f(map[string]string{"data/a/x.csv": good, "labels.json": `{"a/x.csv": [["2014-04-01 00:07:00.000000", "2014-04-01 00:10:00.000000"]]}`}, true,
		"labels.json: a/x.csv window 0: inputs do not match: start 2014-04-01 00:07:00.000000 is not a timestamp of the data file")
	f(map[string]string{"data/a/x.csv": good, "labels.json": `{"a/x.csv": [["2014-04-01 00:10:00.000000", "2014-04-01 00:05:00.000000"]]}`}, true,
		"end 2014-04-01 00:05:00.000000 is not a timestamp of the data file at or after the start (row 2)")
	f(map[string]string{"data/a/x.csv": good, "labels.json": `{"a/x.csv": [["2014-04-01 00:00:00.000000"]]}`}, false,
		"a/x.csv window 0: want [start, end], got 1 timestamps")
	f(map[string]string{"data/a/x.csv": good, "labels.json": "{\n\"a/x.csv\": [\n[\"2014-04-01 00:00:00\", \"2014-04-01 00:05:00\"],\n[\"2014-04-01 00:05:00\", \"2014-04-01 00:10:00\"]]}"}, false,
		"a/x.csv window 1 [1, 2]: starts at or before the end of window 0 (row 1)")
	f(map[string]string{"data/a/x.csv": good, "labels.json": "{\n\"a/x.csv\": [],\n}"}, false, "labels.json:3: invalid character '}'")
	f(map[string]string{"data/a/x.csv": good, "labels.json": "{\n\"a/x.csv\": [\n[1, 2]]}"}, false, "labels.json:3: json: cannot unmarshal number")
	f(map[string]string{"data/a/x.csv": good, "labels.json": "null"}, false, "labels.json: want a JSON object")
}
