package anomaly

import (
	"slices"
	"testing"
)

// onsetZ is the default OnsetZ, for tests.
var onsetZ = DefaultConfig().OnsetZ

func TestOnsetGate(t *testing.T) {
	p, err := NewParams(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// zs lists the z of each point as (value, how many points); want the
	// points, counted from 0, whose z gets through the gate at onsetZ or
	// more.
	f := func(name string, want []int, zs ...[2]float64) {
		t.Helper()
		var o onset
		var got []int
		i := 0
		for _, run := range zs {
			for range int(run[1]) {
				if o.gate(run[0], run[0], p) {
					got = append(got, i)
				}
				i++
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: onsets at %v, want %v", name, got, want)
		}
	}
	f("quiet", nil, [2]float64{1, 1000})
	f("one spike", []int{10}, [2]float64{1, 10}, [2]float64{9, 1}, [2]float64{1, 500})
	// A run of surprises is one episode.
	f("level shift", []int{10}, [2]float64{1, 10}, [2]float64{8, 30}, [2]float64{1, 500})
	// After more than minEpisode points, calmLen of them calm, the next
	// spike is a new onset.
	f("two spikes", []int{0, 102}, [2]float64{6, 1}, [2]float64{1, 101}, [2]float64{6, 1}, [2]float64{1, 10})
	f("too soon", []int{0}, [2]float64{6, 1}, [2]float64{1, 100}, [2]float64{6, 1}, [2]float64{1, 10})
	// A point with z ≥ calmZ restarts the calm count: the episode lasts
	// until calmLen calm points follow its last unquiet one.
	f("calm again", []int{0, 112}, [2]float64{6, 1}, [2]float64{1, 60}, [2]float64{4, 1}, [2]float64{1, 50}, [2]float64{6, 1})
	f("not calm yet", []int{0}, [2]float64{6, 1}, [2]float64{1, 60}, [2]float64{4, 1}, [2]float64{1, 49}, [2]float64{6, 1}, [2]float64{1, 10})
	// A series never calm has an onset every maxEpisode+1 points at most.
	f("turbulent", []int{0, 601, 1202}, [2]float64{6, 1300})
	// Points below onsetZ outside an episode pass through without opening
	// one.
	var o onset
	if o.gate(4.9, 4.9, p) || o.in {
		t.Errorf("gate(4.9) outside an episode opened one")
	}
}
