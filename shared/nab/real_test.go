package nab

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// loadReal loads the corpus in $METRICPIPE_NAB_DIR (data/ and
// labels/combined_windows.json, as in NAB's repository), or skips.
func loadReal(t *testing.T) *Corpus {
	t.Helper()
	dir := os.Getenv("METRICPIPE_NAB_DIR")
	if dir == "" {
		t.Skip("METRICPIPE_NAB_DIR not set")
	}
	c, err := LoadCorpus(filepath.Join(dir, "data"), filepath.Join(dir, "labels", "combined_windows.json"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRealCorpus(t *testing.T) {
	c := loadReal(t)
	rows, windows := 0, 0
	for _, s := range c.Series {
		rows += len(s.Times)
		windows += len(c.Windows[s.Name])
	}
	if len(c.Series) != 25 || rows != 129577 || windows != 39 {
		t.Fatalf("%d series, %d rows, %d windows; want 25, 129577, 39", len(c.Series), rows, windows)
	}
	perfect := map[string][]float64{}
	for _, s := range c.Series {
		perfect[s.Name] = make([]float64, len(s.Times))
		for _, w := range c.Windows[s.Name] {
			perfect[s.Name][w.Start] = 1
		}
	}
	for _, p := range Profiles() {
		for th, want := range map[float64]float64{1: 100, 2: 0} {
			if r, err := Score(c, perfect, p, th); err != nil || r.Normalized != want || r.TP+r.FN != 39 {
				t.Fatalf("%s threshold %v: %+v, %v; want score %v", p.Name, th, r, err, want)
			}
		}
	}
}

// zscore is a sanity-check detector: the distance of each value from the
// mean of the previous (up to) size values, in standard deviations.
type zscore struct {
	ring     []float64
	pos, n   int
	sum, sq  float64
	maxCount int
}

func newZScore(size int) *zscore { return &zscore{ring: make([]float64, size), maxCount: size} }

func (z *zscore) Score(_ time.Time, v float64) float64 {
	s := 0.0
	if z.n >= 2 {
		mean := z.sum / float64(z.n)
		std := math.Sqrt(max(z.sq/float64(z.n)-mean*mean, 0))
		s = math.Abs(v-mean) / max(std, 1e-9)
	}
	if z.n == z.maxCount {
		old := z.ring[z.pos]
		z.sum -= old
		z.sq -= old * old
	} else {
		z.n++
	}
	z.ring[z.pos] = v
	z.sum += v
	z.sq += v * v
	if z.pos++; z.pos == len(z.ring) {
		z.pos = 0
		// Recompute the sums once per lap so rounding cannot accumulate.
		z.sum, z.sq = 0, 0
		for _, x := range z.ring {
			z.sum += x
			z.sq += x * x
		}
	}
	return s
}

// TestRealZScore runs the rolling z-score over the real corpus and logs its
// NAB report (go test -v -run RealZScore with METRICPIPE_NAB_DIR set). It
// checks what holds for any detector: optimizing a threshold never scores
// below never firing (0) nor reaches perfect, and every window is either
// detected or missed; and that a rolling z-score, crude as it is, beats
// never firing on the standard profile.
func TestRealZScore(t *testing.T) {
	c := loadReal(t)
	for _, size := range []int{6400, 1000, 100} {
		out := t.TempDir()
		scores, err := Run(t.Context(), c, func(string) Detector { return newZScore(size) }, out)
		if err != nil {
			t.Fatal(err)
		}
		back, err := LoadResults(out, c)
		if err != nil || !reflect.DeepEqual(back, scores) {
			t.Fatalf("LoadResults: %v", err)
		}
		var results []Result
		for _, p := range Profiles() {
			_, r, err := Optimize(c, scores, p)
			if err != nil {
				t.Fatal(err)
			}
			if r.Normalized < 0 || r.Normalized >= 100 || r.TP+r.FN != 39 {
				t.Errorf("window %d, %s: score %.2f, %d TP + %d FN; want 0 ≤ score < 100 and 39 windows", size, p.Name, r.Normalized, r.TP, r.FN)
			}
			if p.Name == "standard" && r.Normalized <= 0 {
				t.Errorf("window %d: standard score %.2f; a rolling z-score beats never firing", size, r.Normalized)
			}
			results = append(results, r)
		}
		var b strings.Builder
		if err := WriteReport(&b, results); err != nil {
			t.Fatal(err)
		}
		t.Logf("rolling z-score over %d values:\n%s", size, b.String())
	}
}
