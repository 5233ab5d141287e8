package service

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestWithDrainOutlivesItsParentByTheDrainTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, stop := context.WithCancel(t.Context())
		drain, cancel := WithDrain(parent, 5*time.Second)
		defer cancel()
		time.Sleep(time.Hour)
		if drain.Err() != nil {
			t.Fatal("drain context ended while its parent runs")
		}
		stop()
		time.Sleep(4 * time.Second)
		if drain.Err() != nil {
			t.Fatal("drain context ended before the drain time passed")
		}
		time.Sleep(2 * time.Second)
		if drain.Err() == nil {
			t.Fatal("drain context still alive after the drain time")
		}
	})
}
