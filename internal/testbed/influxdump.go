package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// FieldKey names one stored value of an InfluxDB 1.x database: its series
// in line-protocol key form ("cpu,host=a,region=eu", tags sorted), its
// field key and its time (Unix ns).
type FieldKey struct {
	Series string
	Field  string
	Time   int64
}

// Measurements lists the measurements of database db on the InfluxDB 1.x
// at base.
func Measurements(ctx context.Context, base, db string) ([]string, error) {
	var names []string
	err := influxQL(ctx, base, db, "SHOW MEASUREMENTS", func(s influxSeries) error {
		for _, row := range s.Values {
			if len(row) > 0 {
				name, _ := row[0].(string)
				names = append(names, name)
			}
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

// DumpMeasurement reads every value of measurement in database db on the
// InfluxDB 1.x at base: float64 (integers too: the JSON InfluxDB answers
// with does not tell them apart), string or bool, bit-exact (InfluxDB
// writes the shortest decimal that reads back as the same float64). It
// streams the answer in chunks, so a measurement of millions of values does
// not have to fit in one response; the map is the caller's.
func DumpMeasurement(ctx context.Context, base, db, measurement string) (map[FieldKey]any, error) {
	out := map[FieldKey]any{}
	// Series and field names repeat in every row: one copy of each.
	interned := map[string]string{}
	intern := func(s string) string {
		if v, ok := interned[s]; ok {
			return v
		}
		interned[s] = s
		return s
	}
	q := fmt.Sprintf("SELECT * FROM %s GROUP BY *", quoteIdent(measurement))
	err := influxQL(ctx, base, db, q, func(s influxSeries) error {
		series := intern(seriesKey(s.Name, s.Tags))
		timeCol := slices.Index(s.Columns, "time")
		if timeCol < 0 {
			return fmt.Errorf("measurement %s: no time column in %v", measurement, s.Columns)
		}
		for _, row := range s.Values {
			if len(row) != len(s.Columns) {
				return fmt.Errorf("measurement %s: row of %d values for %d columns", measurement, len(row), len(s.Columns))
			}
			at, err := jsonInt(row[timeCol])
			if err != nil {
				return fmt.Errorf("measurement %s: time: %w", measurement, err)
			}
			for i, v := range row {
				if i == timeCol || v == nil {
					continue
				}
				if n, ok := v.(json.Number); ok {
					f, err := strconv.ParseFloat(string(n), 64)
					if err != nil {
						return fmt.Errorf("measurement %s field %s: %w", measurement, s.Columns[i], err)
					}
					v = f
				}
				out[FieldKey{Series: series, Field: intern(s.Columns[i]), Time: at}] = v
			}
		}
		return nil
	})
	return out, err
}

// seriesKey is a series in line-protocol key form, tags sorted by key;
// GROUP BY * names every tag key of the measurement, "" where the series
// has none.
func seriesKey(measurement string, tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		if v != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(measurement)
	for _, k := range keys {
		b.WriteString("," + k + "=" + tags[k])
	}
	return b.String()
}

func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func jsonInt(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%v (%T): want a number", v, v)
	}
	return strconv.ParseInt(string(n), 10, 64)
}

// influxSeries is one series of an InfluxQL answer.
type influxSeries struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// influxQL runs one InfluxQL statement with times in ns, chunked, and
// hands each series of each chunk to each.
func influxQL(ctx context.Context, base, db, q string, each func(influxSeries) error) error {
	form := url.Values{"db": {db}, "q": {q}, "epoch": {"ns"}, "chunked": {"true"}, "chunk_size": {"10000"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("influxql %q: %w", q, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("influxql %q: HTTP %d: %s", q, resp.StatusCode, b)
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	for {
		var chunk struct {
			Results []struct {
				Series []influxSeries `json:"series"`
				Error  string         `json:"error"`
			} `json:"results"`
			Error string `json:"error"`
		}
		if err := dec.Decode(&chunk); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("influxql %q: decode the answer: %w", q, err)
		}
		if chunk.Error != "" {
			return fmt.Errorf("influxql %q: %s", q, chunk.Error)
		}
		for _, r := range chunk.Results {
			if r.Error != "" {
				return fmt.Errorf("influxql %q: %s", q, r.Error)
			}
			for _, s := range r.Series {
				if err := each(s); err != nil {
					return err
				}
			}
		}
	}
}
