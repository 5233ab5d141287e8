package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/service"
)

// hostConfig configures `producer host`.
type hostConfig struct {
	Delivery  deliveryConfig
	Interval  time.Duration
	Proc      string   // the proc file system, /proc
	DiskPaths []string // mount points whose usage is reported
	Hostname  string
	Count     int // samples to take (0: until stopped)
}

func (c hostConfig) Validate() error {
	errs := []error{c.Delivery.Validate()}
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("--interval %s: want > 0", c.Interval))
	}
	if c.Hostname == "" {
		errs = append(errs, errors.New("--hostname is empty"))
	}
	if c.Count < 0 {
		errs = append(errs, fmt.Errorf("--samples %d: want ≥ 0", c.Count))
	}
	return errors.Join(errs...)
}

func hostCommand(stderr io.Writer) *cli.Command {
	env := service.EnvVars
	hostname, _ := os.Hostname()
	flags := []cli.Flag{
		&cli.DurationFlag{Name: "interval", Value: 10 * time.Second, Usage: "time between two samples", EnvVars: env("interval")},
		&cli.StringFlag{Name: "proc", Value: "/proc", Usage: "where the proc file system is mounted (a container may mount the host's elsewhere)", EnvVars: env("proc")},
		&cli.StringSliceFlag{Name: "disk-path", Value: cli.NewStringSlice("/"), Usage: "mount points whose usage is reported, repeatable", EnvVars: env("disk-path")},
		&cli.StringFlag{Name: "hostname", Value: hostname, DefaultText: "this machine's host name", Usage: "value of the host tag", EnvVars: env("hostname")},
		&cli.IntFlag{Name: "samples", Usage: "stop after this many samples (0: until stopped)", EnvVars: env("samples")},
	}
	return &cli.Command{
		Name:  "host",
		Usage: "sample this machine's CPU, memory, disk, network and load from /proc",
		Flags: append(flags, deliveryFlags()...),
		Action: func(c *cli.Context) error {
			d, derr := deliveryConfigFromCLI(c)
			cfg := hostConfig{Delivery: d, Interval: c.Duration("interval"), Proc: c.String("proc"),
				DiskPaths: c.StringSlice("disk-path"), Hostname: c.String("hostname"), Count: c.Int("samples")}
			if err := errors.Join(derr, cfg.Validate()); err != nil {
				return err
			}
			log := service.NewLogger(stderr, cfg.Delivery.Service, "producer")
			return runSource(c.Context, cfg.Delivery, log, "host", func(ctx context.Context, out sink, _ *prometheus.Registry, _ func(context.Context) error) error {
				s := &hostSampler{cfg: cfg}
				for i := 0; cfg.Count == 0 || i < cfg.Count; i++ {
					if i > 0 && retry.Sleep(ctx, cfg.Interval) != nil {
						return nil
					}
					pts, err := s.sample(time.Now())
					if err != nil {
						log.Warn().Err(err).Msg("host sample incomplete")
					}
					if err := out.SendBatch(ctx, pts); err != nil {
						if ctx.Err() != nil {
							return nil
						}
						return err
					}
				}
				return nil
			})
		},
	}
}

// hostSampler reads the machine's counters. CPU usage is a rate between two
// samples, so the first sample reports none.
type hostSampler struct {
	cfg     hostConfig
	prevCPU []uint64
}

// sample returns one point per measurement (cpu, mem, disk per path, net
// per interface, system) at time now. An unreadable source is reported in
// the error and left out; the rest is returned.
func (s *hostSampler) sample(now time.Time) ([]point.Point, error) {
	ts := now.UnixNano()
	host := []point.Tag{{Key: "host", Value: s.cfg.Hostname}}
	var pts []point.Point
	var errs []error
	add := func(measurement string, tags []point.Tag, fields []point.Field) {
		if len(fields) > 0 {
			pts = append(pts, point.Point{Measurement: measurement, Tags: tags, Fields: fields, Time: ts})
		}
	}
	if f, err := s.cpu(); err != nil {
		errs = append(errs, err)
	} else {
		add("cpu", append([]point.Tag{{Key: "cpu", Value: "cpu-total"}}, host...), f)
	}
	if f, err := readMeminfo(filepath.Join(s.cfg.Proc, "meminfo")); err != nil {
		errs = append(errs, err)
	} else {
		add("mem", host, f)
	}
	if f, err := readLoadavg(filepath.Join(s.cfg.Proc, "loadavg")); err != nil {
		errs = append(errs, err)
	} else {
		add("system", host, f)
	}
	for _, path := range s.cfg.DiskPaths {
		if f, err := diskUsage(path); err != nil {
			errs = append(errs, err)
		} else {
			add("disk", []point.Tag{{Key: "host", Value: s.cfg.Hostname}, {Key: "path", Value: path}}, f)
		}
	}
	ifaces, err := readNetDev(filepath.Join(s.cfg.Proc, "net", "dev"))
	if err != nil {
		errs = append(errs, err)
	}
	for _, n := range ifaces {
		add("net", []point.Tag{{Key: "host", Value: s.cfg.Hostname}, {Key: "interface", Value: n.name}}, n.fields)
	}
	return pts, errors.Join(errs...)
}

// cpu returns the percentages of time spent per state since the last call
// (nothing on the first).
func (s *hostSampler) cpu() ([]point.Field, error) {
	cur, err := readCPUStat(filepath.Join(s.cfg.Proc, "stat"))
	if err != nil {
		return nil, err
	}
	prev := s.prevCPU
	s.prevCPU = cur
	if prev == nil || len(prev) != len(cur) {
		return nil, nil
	}
	var total uint64
	delta := make([]float64, len(cur))
	for i := range cur {
		d := cur[i] - prev[i]
		if cur[i] < prev[i] {
			d = 0 // a counter reset
		}
		delta[i] = float64(d)
		total += d
	}
	if total == 0 {
		return nil, nil
	}
	names := []string{"usage_user", "usage_nice", "usage_system", "usage_idle", "usage_iowait", "usage_irq", "usage_softirq", "usage_steal"}
	var fs []point.Field
	for i, name := range names {
		if i < len(delta) {
			fs = append(fs, point.Field{Key: name, Value: 100 * delta[i] / float64(total)})
		}
	}
	return fs, nil
}

// readCPUStat returns the aggregate "cpu" line's counters (user, nice,
// system, idle, iowait, irq, softirq, steal; guest time is already in user).
func readCPUStat(path string) ([]uint64, error) {
	var out []uint64
	err := scanFile(path, func(line string) bool {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "cpu" {
			return true
		}
		for _, s := range f[1:min(len(f), 9)] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return false
			}
			out = append(out, v)
		}
		return false
	})
	if err == nil && len(out) < 4 {
		err = fmt.Errorf("%s: no aggregate cpu line", path)
	}
	return out, err
}

// readMeminfo returns total, available, used (bytes) and used_percent.
func readMeminfo(path string) ([]point.Field, error) {
	kb := map[string]float64{}
	err := scanFile(path, func(line string) bool {
		name, rest, ok := strings.Cut(line, ":")
		if f := strings.Fields(rest); ok && len(f) >= 1 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				kb[name] = v * 1024
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	total, okT := kb["MemTotal"]
	avail, okA := kb["MemAvailable"]
	if !okT || !okA || total == 0 {
		return nil, fmt.Errorf("%s: MemTotal or MemAvailable missing", path)
	}
	return []point.Field{{Key: "total", Value: total}, {Key: "available", Value: avail},
		{Key: "used", Value: total - avail}, {Key: "used_percent", Value: 100 * (total - avail) / total}}, nil
}

// readLoadavg returns load1, load5 and load15.
func readLoadavg(path string) ([]point.Field, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return nil, fmt.Errorf("%s: want three load averages, got %q", path, b)
	}
	var fs []point.Field
	for i, name := range []string{"load1", "load5", "load15"} {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, name, err)
		}
		fs = append(fs, point.Field{Key: name, Value: v})
	}
	return fs, nil
}

type netIface struct {
	name   string
	fields []point.Field
}

// readNetDev returns each interface's cumulative counters.
func readNetDev(path string) ([]netIface, error) {
	var out []netIface
	lineNo := 0
	var bad error
	err := scanFile(path, func(line string) bool {
		lineNo++
		if lineNo <= 2 { // two header lines
			return true
		}
		name, rest, ok := strings.Cut(line, ":")
		f := strings.Fields(rest)
		if !ok || len(f) < 16 {
			bad = fmt.Errorf("%s:%d: malformed line %q", path, lineNo, line)
			return false
		}
		vals := make([]float64, 16)
		for i := range vals {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				bad = fmt.Errorf("%s:%d: %w", path, lineNo, err)
				return false
			}
			vals[i] = float64(v)
		}
		out = append(out, netIface{name: strings.TrimSpace(name), fields: []point.Field{
			{Key: "bytes_recv", Value: vals[0]}, {Key: "packets_recv", Value: vals[1]}, {Key: "err_in", Value: vals[2]}, {Key: "drop_in", Value: vals[3]},
			{Key: "bytes_sent", Value: vals[8]}, {Key: "packets_sent", Value: vals[9]}, {Key: "err_out", Value: vals[10]}, {Key: "drop_out", Value: vals[11]},
		}})
		return true
	})
	return out, errors.Join(err, bad)
}

// diskUsage returns total, free, used (bytes) and used_percent of the file
// system holding path.
func diskUsage(path string) ([]point.Field, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := float64(st.Bsize)
	total, free, avail := float64(st.Blocks)*bs, float64(st.Bfree)*bs, float64(st.Bavail)*bs
	used := total - free
	fs := []point.Field{{Key: "total", Value: total}, {Key: "free", Value: avail}, {Key: "used", Value: used}}
	if used+avail > 0 {
		fs = append(fs, point.Field{Key: "used_percent", Value: 100 * used / (used + avail)})
	}
	return fs, nil
}

// scanFile calls line for each line of path until it returns false.
func scanFile(path string, line func(string) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !line(sc.Text()) {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}
