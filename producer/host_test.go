package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/shared/point"
)

// fakeProc writes a proc tree with the given /proc/stat cpu line.
func fakeProc(t *testing.T, dir, cpuLine, netLo string) {
	t.Helper()
	files := map[string]string{
		"stat":    cpuLine + "\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2 3\n",
		"meminfo": "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\nBuffers: 1 kB\n",
		"loadavg": "0.84 0.96 1.07 1/202 27748\n",
		"net/dev": "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n" +
			netLo + "\n  eth0: 1000 10 1 2 0 0 0 0 2000 20 3 4 0 0 0 0\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func fields(t *testing.T, pts []point.Point, measurement string, tag string) map[string]float64 {
	t.Helper()
	for _, p := range pts {
		if p.Measurement != measurement {
			continue
		}
		if tag != "" && !strings.Contains(string(point.AppendSeriesKey(nil, &p)), tag) {
			continue
		}
		m := map[string]float64{}
		for _, f := range p.Fields {
			m[f.Key] = f.Value
		}
		return m
	}
	return nil
}

func TestHostSampler(t *testing.T) {
	proc := t.TempDir()
	lo := "    lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0"
	fakeProc(t, proc, "cpu  100 0 50 800 50 0 0 0 0 0", lo)
	s := &hostSampler{cfg: hostConfig{Proc: proc, Hostname: "h1", DiskPaths: []string{t.TempDir()}}}
	now := time.Unix(1700000000, 0)
	pts, err := s.sample(now)
	if err != nil {
		t.Fatal(err)
	}
	if fields(t, pts, "cpu", "") != nil {
		t.Fatal("cpu usage reported from a single sample")
	}
	// 1000 jiffies later: user +300, system +100, idle +500, iowait +100.
	fakeProc(t, proc, "cpu  400 0 150 1300 150 0 0 0 0 0", lo)
	pts, err = s.sample(now.Add(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pts {
		if err := p.Validate(); err != nil {
			t.Fatalf("invalid point %+v: %v", p, err)
		}
		if p.Time != now.Add(10*time.Second).UnixNano() {
			t.Fatalf("point %s at %d", p.Measurement, p.Time)
		}
	}
	want := map[string]map[string]float64{
		"cpu":    {"usage_user": 30, "usage_system": 10, "usage_idle": 50, "usage_iowait": 10, "usage_nice": 0},
		"mem":    {"total": 1024000, "available": 256000, "used": 768000, "used_percent": 75},
		"system": {"load1": 0.84, "load5": 0.96, "load15": 1.07},
	}
	for m, fs := range want {
		got := fields(t, pts, m, "")
		for k, v := range fs {
			if math.Abs(got[k]-v) > 1e-9 {
				t.Errorf("%s %s = %v, want %v", m, k, got[k], v)
			}
		}
	}
	eth := fields(t, pts, "net", "interface=eth0")
	if eth["bytes_recv"] != 1000 || eth["bytes_sent"] != 2000 || eth["err_in"] != 1 || eth["drop_out"] != 4 {
		t.Errorf("eth0 = %v", eth)
	}
	disk := fields(t, pts, "disk", "path=")
	if disk["total"] <= 0 || disk["used_percent"] < 0 || disk["used_percent"] > 100 {
		t.Errorf("disk = %v", disk)
	}
}

func TestHostSamplerKeepsWhatItCanRead(t *testing.T) {
	proc := t.TempDir()
	fakeProc(t, proc, "cpu  1 0 1 1 0 0 0 0 0 0", "    lo: 500 5 zero")
	s := &hostSampler{cfg: hostConfig{Proc: proc, Hostname: "h1"}}
	pts, err := s.sample(time.Now())
	if err == nil || !strings.Contains(err.Error(), "net/dev:3") {
		t.Fatalf("err = %v, want it to name net/dev line 3", err)
	}
	if fields(t, pts, "mem", "") == nil || fields(t, pts, "system", "") == nil {
		t.Fatal("a bad net/dev line lost the other measurements")
	}
	if err := os.Remove(filepath.Join(proc, "meminfo")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.sample(time.Now()); err == nil || !strings.Contains(err.Error(), "meminfo") {
		t.Fatalf("err = %v, want it to name meminfo", err)
	}
}

// TestHostSamplerOnThisMachine reads the real /proc.
func TestHostSamplerOnThisMachine(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc here")
	}
	s := &hostSampler{cfg: hostConfig{Proc: "/proc", Hostname: "h", DiskPaths: []string{"/"}}}
	if _, err := s.sample(time.Now()); err != nil {
		t.Fatal(err)
	}
	// CPU usage needs the counters to move (a jiffy is 10 ms).
	var pts []point.Point
	for deadline := time.Now().Add(5 * time.Second); fields(t, pts, "cpu", "") == nil && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		var err error
		if pts, err = s.sample(time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{"cpu", "mem", "system", "disk", "net"} {
		if fields(t, pts, m, "") == nil {
			t.Errorf("no %s point from /proc", m)
		}
	}
}
