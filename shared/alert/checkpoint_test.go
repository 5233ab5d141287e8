package alert

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/stream"
)

// TestLifecycleCheckpointRestore: a lifecycle restored from a checkpoint
// taken after any step of a scenario walks the rest of it as the one that
// ran through: same events, same times.
func TestLifecycleCheckpointRestore(t *testing.T) {
	m := int64(time.Minute)
	f := func(name string, tm Timing, conds string) {
		t.Helper()
		step := func(l *Lifecycle, i int) string {
			st := l.Step(conds[i] == '1', int64(i+1)*m, tm)
			return fmt.Sprintf("%s %s %d %d", st, l.State(), l.StartsAt(), l.EndsAt())
		}
		var ref Lifecycle
		want := make([]string, len(conds))
		for i := range conds {
			want[i] = step(&ref, i)
		}
		for k := range len(conds) + 1 {
			var l Lifecycle
			for i := range k {
				step(&l, i)
			}
			var e stream.Encoder
			l.Checkpoint(&e)
			var r Lifecycle
			d := stream.NewDecoder(e.B)
			r.Restore(d)
			if d.Err() != nil || d.Len() != 0 || r != l {
				t.Fatalf("%s: split %d: restored %+v (%v, %d bytes left), want %+v", name, k, r, d.Err(), d.Len(), l)
			}
			for i := k; i < len(conds); i++ {
				if got := step(&r, i); got != want[i] {
					t.Fatalf("%s: split %d, step %d: %s, want %s", name, k, i, got, want[i])
				}
			}
		}
	}
	f("for", Timing{For: 2 * time.Minute}, "01101110111100")
	f("keep firing", Timing{KeepFiringFor: 2 * time.Minute}, "11001000001")
	f("repeat", Timing{Repeat: 3 * time.Minute}, "11111110")
	f("all", Timing{For: time.Minute, KeepFiringFor: 2 * time.Minute, Repeat: 2 * time.Minute}, "0111110010001111100001")
}

// TestLifecycleShift: an absence lifecycle restored after a downtime
// counts the downtime neither toward for nor toward keep_firing_for, and
// keeps StartsAt.
func TestLifecycleShift(t *testing.T) {
	m := int64(time.Minute)
	tm := Timing{For: 5 * time.Minute, KeepFiringFor: 5 * time.Minute}
	var pend Lifecycle
	pend.Step(true, 10*m, tm)
	pend.Shift(60 * m) // down an hour
	if st := pend.Step(true, 74*m, tm); st != Inactive || pend.State() != Pending {
		t.Fatalf("pending since 10m, an hour down: at 74m %s %s, want still pending", st, pend.State())
	}
	if st := pend.Step(true, 75*m, tm); st != Firing || pend.StartsAt() != 75*m {
		t.Fatalf("at 75m %s, starts %d; want firing at 75m", st, pend.StartsAt())
	}
	var fire Lifecycle
	fire.Step(true, 0, Timing{})
	fire.Step(false, 10*m, tm) // clears at 10m, keeps firing until 15m
	fire.Shift(60 * m)
	if st := fire.Step(false, 74*m, tm); st != Inactive || fire.State() != Firing {
		t.Fatalf("cleared at 10m, an hour down: at 74m %s %s, want still firing", st, fire.State())
	}
	if st := fire.Step(false, 75*m, tm); st != Resolved || fire.StartsAt() != 0 || fire.EndsAt() != 75*m {
		t.Fatalf("at 75m %s, starts %d ends %d; want resolved at 75m, started at 0", st, fire.StartsAt(), fire.EndsAt())
	}
	var rep Lifecycle
	rt := Timing{Repeat: 10 * time.Minute}
	rep.Step(true, 0, rt) // announced at 0, again at 10m of uptime
	rep.Shift(60 * m)
	if st := rep.Step(true, 65*m, rt); st != Inactive {
		t.Fatalf("announced at 0, an hour down: at 65m %s, want no announcement until 70m", st)
	}
	if st := rep.Step(true, 70*m, rt); st != Firing {
		t.Fatalf("at 70m %s, want announced again", st)
	}
	var idle Lifecycle
	idle.Shift(m)
	if idle != (Lifecycle{}) {
		t.Fatalf("an inactive lifecycle shifted: %+v", idle)
	}
}

// FuzzLifecycleRestore: no input makes Restore panic; a failure wraps
// stream.ErrCorrupt and leaves the lifecycle inactive.
func FuzzLifecycleRestore(f *testing.F) {
	var l Lifecycle
	l.Step(true, 5, Timing{})
	var e stream.Encoder
	l.Checkpoint(&e)
	f.Add(e.B)
	f.Add([]byte{9, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l Lifecycle
		d := stream.NewDecoder(b)
		l.Restore(d)
		if err := d.Err(); err != nil {
			if !errors.Is(err, stream.ErrCorrupt) || l != (Lifecycle{}) {
				t.Fatalf("failed restore: %v, lifecycle %+v", err, l)
			}
			return
		}
		l.Step(true, 1, Timing{For: 1})
		l.Step(false, 3, Timing{Repeat: 1})
	})
}
