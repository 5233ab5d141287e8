package nab

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestThresholdsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "thresholds.json")
	want := map[string]float64{"standard": 0.1, "reward_low_FP_rate": math.Nextafter(0.9, 2), "reward_low_FN_rate": -1e-300}
	if err := SaveThresholds(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := LoadThresholds(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadThresholds = %v, %v; want %v", got, err, want)
	}
	err = SaveThresholds(path, map[string]float64{"a": math.Inf(1), "b": math.NaN(), "c": 1})
	if err == nil || !strings.Contains(err.Error(), `threshold of profile "a" is +Inf`) || !strings.Contains(err.Error(), `"b" is NaN`) {
		t.Fatalf("non-finite: %v", err)
	}
	if got, _ := LoadThresholds(path); !reflect.DeepEqual(got, want) {
		t.Fatalf("failed save changed the file: %v", got)
	}
	for content, wantErr := range map[string]string{
		`{"standard": "high"}`: "bad.json: json: cannot unmarshal string",
		`null`:                 "bad.json: want a JSON object",
	} {
		bad := filepath.Join(t.TempDir(), "bad.json")
		if err := os.WriteFile(bad, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadThresholds(bad); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: error %v, want %q", content, err, wantErr)
		}
	}
}

func TestWriteReport(t *testing.T) {
	var b strings.Builder
	err := WriteReport(&b, []Result{
		{Profile: "standard", Threshold: 0.5, Normalized: 42.126, Raw: -1.5, TP: 3, FP: 12, FN: 2},
		{Profile: "reward_low_FN_rate", Threshold: math.Nextafter(0.9, 2), Normalized: math.NaN()},
	})
	want := "" +
		"profile             threshold  score  raw     TP  FP  FN\n" +
		"standard            0.5        42.13  -1.500  3   12  2\n" +
		"reward_low_FN_rate  0.9        NaN    0.000   0   0   0\n"
	if err != nil || b.String() != want {
		t.Fatalf("got %v\n%s\nwant\n%s", err, b.String(), want)
	}
}
