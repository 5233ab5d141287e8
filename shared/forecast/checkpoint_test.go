package forecast

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/metricpipe/metricpipe/shared/stream"
)

// checkpointInput is a series that exercises every path of every model:
// season, trend and noise, missing values (during warm-up too), spikes, a
// level shift, and a value that overflows the state.
func checkpointInput(n int) []float64 {
	rng := rand.New(rand.NewPCG(14, 1))
	ys := make([]float64, n)
	for i := range ys {
		ys[i] = seasonal(i) + 0.05*float64(i) + rng.NormFloat64()
		switch {
		case i == 3 || i == 30 || i%97 == 0:
			ys[i] = math.NaN()
		case i%61 == 7:
			ys[i] += 50
		case i > 400:
			ys[i] += 1e4
		}
	}
	ys[n/2] = math.MaxFloat64 // overflows: every model starts over
	return ys
}

// observe renders what a forecaster says before its next value, bit for
// bit.
func observe(f *Forecaster) string {
	y, ok := f.Predict()
	s, sok := f.Sigma()
	lo, hi, iok := f.Interval(3, 1.96)
	var many [3]float64
	mok := f.AheadMany([]int{1, 4, 30}, many[:])
	return fmt.Sprintf("%s %x %v %x %v %x %x %v %x %v", f.Model(), math.Float64bits(y), ok, math.Float64bits(s), sok,
		math.Float64bits(lo), math.Float64bits(hi), iok, many, mok)
}

func checkpointConfigs() map[string]Config {
	hw := DefaultConfig()
	hw.Kind, hw.Season = HoltWinters, 24
	holt := DefaultConfig()
	holt.Kind = Holt
	ar := DefaultConfig()
	ar.Kind = AR
	ar8 := ar
	ar8.Order = MaxOrder
	return map[string]Config{"holt": holt, "holt-winters": hw, "ar": ar, "ar8": ar8, "auto": autoConfig(0), "auto-season": autoConfig(24)}
}

// TestCheckpointRestore: a Forecaster restored from a checkpoint taken
// after k values and fed the rest says, before every value, bit for bit
// what the Forecaster that ran through says, for every kind and for splits
// during warm-up, around it, and late.
func TestCheckpointRestore(t *testing.T) {
	ys := checkpointInput(1000)
	for name, c := range checkpointConfigs() {
		t.Run(name, func(t *testing.T) {
			ref := mustNew(t, c)
			want := make([]string, len(ys))
			for i, y := range ys {
				want[i] = observe(ref)
				ref.Update(y)
			}
			for _, k := range []int{0, 1, 2, 3, 5, 24, 47, 48, 49, 100, 499, 500, 501, 999} {
				f := mustNew(t, c)
				for _, y := range ys[:k] {
					f.Update(y)
				}
				e := stream.Encoder{}
				f.Checkpoint(&e)
				g := mustNew(t, c)
				d := stream.NewDecoder(e.B)
				g.Restore(d)
				if err := d.Err(); err != nil || d.Len() != 0 {
					t.Fatalf("split %d: restore: %v, %d bytes left", k, err, d.Len())
				}
				if !reflect.DeepEqual(f, g) && f.finiteState() {
					t.Fatalf("split %d: restored state\n%+v\nwant\n%+v", k, g, f)
				}
				for i := k; i < len(ys); i++ {
					if got := observe(g); got != want[i] {
						t.Fatalf("split %d, value %d: restored says %s, uninterrupted %s", k, i, got, want[i])
					}
					g.Update(ys[i])
				}
			}
		})
	}
}

// TestRestoreRefusesOtherShapes: a checkpoint restores only into a
// Forecaster of the same kind, season length and order.
func TestRestoreRefusesOtherShapes(t *testing.T) {
	cs := checkpointConfigs()
	ys := checkpointInput(100)
	for from, fc := range cs {
		f := mustNew(t, fc)
		for _, y := range ys {
			f.Update(y)
		}
		e := stream.Encoder{}
		f.Checkpoint(&e)
		for to, tc := range cs {
			d := stream.NewDecoder(e.B)
			mustNew(t, tc).Restore(d)
			if err := d.Err(); (from == to) != (err == nil) || err != nil && !errors.Is(err, stream.ErrCorrupt) {
				t.Errorf("%s restored into %s: %v", from, to, err)
			}
		}
	}
}

// FuzzRestore: no input makes Restore panic, and a restored Forecaster
// can be used.
func FuzzRestore(f *testing.F) {
	ys := checkpointInput(200)
	for _, k := range []int{0, 10, 60, 200} {
		fc, _ := New(autoConfig(24))
		for _, y := range ys[:k] {
			fc.Update(y)
		}
		e := stream.Encoder{}
		fc.Checkpoint(&e)
		f.Add(e.B)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fc, _ := New(autoConfig(24))
		d := stream.NewDecoder(b)
		fc.Restore(d)
		if d.Err() != nil {
			if !errors.Is(d.Err(), stream.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", d.Err())
			}
			return
		}
		for _, y := range ys[:50] {
			observe(fc)
			fc.Update(y)
		}
	})
}
