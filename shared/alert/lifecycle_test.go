package alert

import (
	"strings"
	"testing"
	"time"
)

// TestLifecycle walks scenarios a minute at a time: each step is a
// condition ("1" true, "0" false) and the expected event ("F" firing,
// "R" resolved, "." nothing).
func TestLifecycle(t *testing.T) {
	f := func(name string, tm Timing, conds, want string) {
		t.Helper()
		var l Lifecycle
		var got strings.Builder
		for i, c := range conds {
			switch l.Step(c == '1', int64(i)*int64(time.Minute), tm) {
			case Firing:
				got.WriteByte('F')
			case Resolved:
				got.WriteByte('R')
			default:
				got.WriteByte('.')
			}
		}
		if got.String() != want {
			t.Errorf("%s:\nconds %s\ngot   %s\nwant  %s", name, conds, got.String(), want)
		}
	}
	f("immediate", Timing{}, "0011100110", "..F..R.F.R")
	f("for 2m", Timing{For: 2 * time.Minute}, "01101110111100", "......FR..F.R.")
	f("blip shorter than for never fires", Timing{For: 3 * time.Minute}, "0110110", ".......")
	f("keep firing bridges gaps", Timing{KeepFiringFor: 2 * time.Minute}, "11001000001", "F......R..F")
	f("repeat while firing", Timing{Repeat: 3 * time.Minute}, "11111110", "F..F..FR")
	f("resolved then fires again", Timing{}, "101", "FRF")
}

func TestLifecycleTimes(t *testing.T) {
	var l Lifecycle
	m := int64(time.Minute)
	tm := Timing{For: time.Minute}
	l.Step(true, 10*m, tm)
	if l.State() != Pending {
		t.Fatalf("state %s, want pending", l.State())
	}
	if got := l.Step(true, 11*m, tm); got != Firing || l.StartsAt() != 11*m || l.EndsAt() != 0 {
		t.Fatalf("got %s starts %d ends %d", got, l.StartsAt(), l.EndsAt())
	}
	if got := l.Step(false, 15*m, tm); got != Resolved || l.EndsAt() != 15*m || l.StartsAt() != 11*m {
		t.Fatalf("got %s starts %d ends %d", got, l.StartsAt(), l.EndsAt())
	}
}

func TestFingerprintStable(t *testing.T) {
	a := Fingerprint("cpu_high", "cpu,host=a usage")
	if a != Fingerprint("cpu_high", "cpu,host=a usage") || len(a) != 16 {
		t.Fatalf("fingerprint %q not stable", a)
	}
	for _, other := range []string{Fingerprint("cpu_high", "cpu,host=b usage"), Fingerprint("cpu_hig", "hcpu,host=a usage")} {
		if other == a {
			t.Fatalf("fingerprints collide: %s", a)
		}
	}
}

func TestDecode(t *testing.T) {
	f := func(in, wantErr string) {
		t.Helper()
		_, err := Decode([]byte(in))
		if (err == nil) != (wantErr == "") || err != nil && !strings.Contains(err.Error(), wantErr) {
			t.Errorf("Decode(%s) = %v, want error containing %q", in, err, wantErr)
		}
	}
	f(`{"fingerprint":"ab","state":"firing","starts_at":"2026-11-26T00:00:00Z"}`, "")
	f(`{"state":"firing"}`, "no fingerprint")
	f(`{"fingerprint":"ab","state":"pending"}`, `state "pending"`)
	f(`{`, "decode alert event")
}
