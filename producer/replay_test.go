package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/internal/clitest"
	"github.com/metricpipe/metricpipe/shared/point"
)

// recordSink records what is sent; after cancelAfter points (if > 0) it
// calls cancel, as a SIGTERM would.
type recordSink struct {
	points      []point.Point
	cancelAfter int
	cancel      context.CancelFunc
}

func (s *recordSink) Send(ctx context.Context, p point.Point) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.points = append(s.points, p.Clone())
	if s.cancelAfter > 0 && len(s.points) == s.cancelAfter {
		s.cancel()
	}
	return nil
}

func (s *recordSink) SendBatch(ctx context.Context, pts []point.Point) error {
	for _, p := range pts {
		if err := s.Send(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// fakeClock records every sleep and advances its time by it.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) clock() replayClock {
	return replayClock{
		Now: func() time.Time { return c.now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			if d > 0 {
				c.sleeps = append(c.sleeps, d)
				c.now = c.now.Add(d)
			}
			return ctx.Err()
		},
	}
}

var fakeStart = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func defaultReplayConfig() replayConfig { return replayConfig{Format: "auto", Field: "value"} }

// testReplayer returns a replayer into a fresh sink, with a fake clock, and
// its registry.
func testReplayer(cfg replayConfig) (*replayer, *recordSink, *fakeClock, *prometheus.Registry) {
	out, fc, reg := &recordSink{}, &fakeClock{now: fakeStart}, prometheus.NewRegistry()
	return newReplayer(cfg, out, zerolog.Nop(), reg, fc.clock()), out, fc, reg
}

func replayString(t *testing.T, cfg replayConfig, name, input string) ([]point.Point, replayStats) {
	t.Helper()
	r, out, _, _ := testReplayer(cfg)
	st, err := r.replayFile(context.Background(), strings.NewReader(input), name)
	if err != nil {
		t.Fatalf("replayFile(%s): %v", name, err)
	}
	return out.points, st
}

func utc(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixNano()
}

func pt(m string, tags []point.Tag, t int64, kv ...any) point.Point {
	p := point.Point{Measurement: m, Tags: tags, Time: t}
	for i := 0; i < len(kv); i += 2 {
		p.Fields = append(p.Fields, point.Field{Key: kv[i].(string), Value: kv[i+1].(float64)})
	}
	return p
}

func tags(kv ...string) []point.Tag {
	var ts []point.Tag
	for i := 0; i < len(kv); i += 2 {
		ts = append(ts, point.Tag{Key: kv[i], Value: kv[i+1]})
	}
	return ts
}

func checkPoints(t *testing.T, got, want []point.Point) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d points, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("point %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func nabPoints(shift int64) []point.Point {
	var want []point.Point
	for i := range 20 {
		if i == 10 { // the malformed row
			continue
		}
		tm := time.Date(2014, 4, 1, 0, 5*i, 0, 0, time.UTC).UnixNano() + shift
		want = append(want, pt("ec2_cpu_utilization_5f5533", nil, tm, "value", 40+float64(i)*0.5))
	}
	return want
}

func TestReplayFixtures(t *testing.T) {
	f := func(file string, cfg replayConfig, want []point.Point, lines, skipped int64, firstSkip string) {
		t.Helper()
		r, out, _, _ := testReplayer(cfg)
		name := filepath.Join("testdata", "replay", file)
		in, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		st, err := r.replayFile(context.Background(), in, name)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		checkPoints(t, out.points, want)
		if st.Lines != lines || st.Skipped != skipped || st.Points != int64(len(want)) {
			t.Errorf("%s: stats %+v, want %d lines, %d skipped, %d points", file, st, lines, skipped, len(want))
		}
		if st.FirstSkip == nil || !strings.HasPrefix(st.FirstSkip.Error(), name+":"+firstSkip) {
			t.Errorf("%s: first skip %v, want it at %s:%s", file, st.FirstSkip, name, firstSkip)
		}
	}
	cfg := defaultReplayConfig()
	f("ec2_cpu_utilization_5f5533.csv", cfg, nabPoints(0), 20, 1, `12: column "value": value "n/a" is not a finite number`)
	f("points.jsonl", cfg, []point.Point{
		pt("cpu", tags("host", "a"), 1700000000000000000, "usage", 0.5),
		pt("cpu", tags("host", "b"), 1700000001000000000, "usage", 1.5),
		pt("mem", nil, 1700000002000000000, "used", 1e9, "free", 2.0),
		pt("disk", tags("dev", "sda", "host", "a"), 1700000004000000000, "io", 7.0, "ok", 1.0),
	}, 4, 1, `4: json at column 40: key "usage": unsupported value`)
	lp := []point.Point{
		pt("cpu", tags("host", "a"), 1700000000000000000, "usage", 0.5),
		pt("cpu", tags("host", "b"), 1700000000500000000, "usage", 1.5, "n", 3.0),
		pt("mem", tags("host", "a"), 1700000002000000000, "used", 1e9, "ok", 1.0),
	}
	f("points.lp", cfg, lp, 4, 1, "5: line-protocol at column")
	// CSV flags do not touch decoded formats; a forced format wins over the extension.
	f("points.lp", replayConfig{Format: "line", Field: "x", Measurement: "m", Tags: tags("k", "v")}, lp, 4, 1, "5:")
}

func TestReplayCSV(t *testing.T) {
	f := func(cfg replayConfig, name, in string, want ...point.Point) {
		t.Helper()
		got, st := replayString(t, cfg, name, in)
		if st.Skipped != 0 {
			t.Fatalf("%s: skipped: %v", name, st.FirstSkip)
		}
		checkPoints(t, got, want)
	}
	cfg := defaultReplayConfig()
	sec := utc("2023-11-14T22:13:20Z")
	// Timestamp formats, all the same instant but the fractional ones.
	f(cfg, "data/My Data (1).csv", "timestamp,value\n"+
		"2023-11-14T22:13:20Z,1\n"+
		"2023-11-14T23:13:20.25+01:00,2\n"+
		"2023-11-14 22:13:20,3\r\n"+
		"2023-11-14 22:13:20.5,4\n"+
		"1700000000,5\n"+
		"1700000000000,6\n"+
		"1700000000000000,7\n"+
		"1700000000000000000,8\n"+
		`"2023-11-14 22:13:20", -1.5e3`+"\n",
		pt("My_Data__1_", nil, sec, "value", 1.0),
		pt("My_Data__1_", nil, sec+25e7, "value", 2.0),
		pt("My_Data__1_", nil, sec, "value", 3.0),
		pt("My_Data__1_", nil, sec+5e8, "value", 4.0),
		pt("My_Data__1_", nil, sec, "value", 5.0),
		pt("My_Data__1_", nil, sec, "value", 6.0),
		pt("My_Data__1_", nil, sec, "value", 7.0),
		pt("My_Data__1_", nil, sec, "value", 8.0),
		pt("My_Data__1_", nil, sec, "value", -1500.0))
	// Extra numeric columns become fields; empty or text cells are left out;
	// the time column is found by name; flags set measurement, field, tags.
	f(replayConfig{Format: "csv", Measurement: "machine", Field: "cpu", Tags: tags("dc", "eu", "host", "h1")}, "-",
		"\xef\xbb\xbfload,time,cpu,label,mem\n0.5,1700000000,10,ok,2.5\n\n0.7,1700000001,11,,\n",
		pt("machine", tags("dc", "eu", "host", "h1"), sec, "cpu", 10.0, "load", 0.5, "mem", 2.5),
		pt("machine", tags("dc", "eu", "host", "h1"), sec+1e9, "cpu", 11.0, "load", 0.7))
	// Without a "value" column the first non-time column is the value.
	f(cfg, "x.csv", "reading,ts\n4,1700000000\n", pt("x", nil, sec, "value", 4.0))
}

func TestReplayCSVMalformedRows(t *testing.T) {
	in := "timestamp,value,extra\n" +
		"2014-04-01 00:00:00,1,2\n" +
		"2014-04-01,\n" + // no value
		"yesterday,1\n" +
		"2014-04-01 00:00:00,NaN\n" +
		"2014-04-01 00:00:00,1,2,3\n" +
		"99999999999999999999,1\n" +
		"3000-01-01T00:00:00Z,1\n" +
		`"2014-04-01 00:00:00,1` + "\n" + // unterminated quote
		"2014-04-01 00:01:00,9\n"
	got, st := replayString(t, defaultReplayConfig(), "bad.csv", in)
	checkPoints(t, got, []point.Point{
		pt("bad", nil, utc("2014-04-01T00:00:00Z"), "value", 1.0, "extra", 2.0),
		pt("bad", nil, utc("2014-04-01T00:01:00Z"), "value", 9.0),
	})
	if st.Lines != 9 || st.Skipped != 7 || !strings.HasPrefix(st.FirstSkip.Error(), "bad.csv:3: ") {
		t.Fatalf("stats %+v", st)
	}
}

func TestReplayCSVBadHeader(t *testing.T) {
	r, _, _, _ := testReplayer(defaultReplayConfig())
	_, err := r.replayFile(context.Background(), strings.NewReader("\nvalue\n1\n"), "one.csv")
	if err == nil || !strings.Contains(err.Error(), "one.csv:2: CSV header") {
		t.Fatalf("err %v, want a CSV header error at one.csv:2", err)
	}
}

func TestReplayDetectsFormat(t *testing.T) {
	f := func(format, name string, want replayFormat) {
		t.Helper()
		r, _, _, _ := testReplayer(replayConfig{Format: format, Field: "value"})
		if got := r.formatFor(name); got != want {
			t.Errorf("formatFor(%q, %q) = %d, want %d", format, name, got, want)
		}
	}
	f("auto", "a.lp", replayLine)
	f("auto", "a.LINE", replayLine)
	f("auto", "dir.v2/a.txt", replayLine)
	f("auto", "a.json", replayJSON)
	f("auto", "a.jsonl", replayJSON)
	f("auto", "a.ndjson", replayJSON)
	f("auto", "a.csv", replayCSV)
	f("auto", "stdin", replayDetect)
	f("auto", "a.dat", replayDetect)
	f("csv", "a.json", replayCSV)
	f("json", "stdin", replayJSON)
	f("line", "a.csv", replayLine)

	// Detected per line: JSON objects and arrays, line protocol otherwise.
	got, st := replayString(t, defaultReplayConfig(), "stdin",
		"cpu usage=1 1000\n  {\"measurement\":\"cpu\",\"fields\":{\"usage\":2},\"time\":2000}\n"+
			"[{\"measurement\":\"cpu\",\"fields\":{\"usage\":3},\"time\":3000}]\n# comment\nnot a point\n")
	checkPoints(t, got, []point.Point{pt("cpu", nil, 1000, "usage", 1.0), pt("cpu", nil, 2000, "usage", 2.0), pt("cpu", nil, 3000, "usage", 3.0)})
	if st.Lines != 4 || st.Skipped != 1 || !strings.HasPrefix(st.FirstSkip.Error(), "stdin:5: line-protocol") {
		t.Fatalf("stats %+v", st)
	}
}

func TestReplayPacing(t *testing.T) {
	// Event times 0, 1, 3, 3, 2 (late: sent at once), 6 s after the first;
	// one point without a time, which is not paced.
	in := "p v=1 10000000000\np v=1 11000000000\np v=1 13000000000\np v=1 13000000000\np v=1 12000000000\np v=1\np v=1 16000000000\n"
	f := func(speed float64, want ...time.Duration) {
		t.Helper()
		r, out, fc, _ := testReplayer(replayConfig{Format: "line", Field: "value", Speed: speed})
		if _, err := r.replayFile(context.Background(), strings.NewReader(in), "p.lp"); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fc.sleeps, want) {
			t.Errorf("speed %v: sleeps %v, want %v", speed, fc.sleeps, want)
		}
		if len(out.points) != 7 || out.points[6].Time != 16e9 {
			t.Errorf("speed %v: points %+v, want all 7 with their times", speed, out.points)
		}
	}
	f(0)
	f(1, time.Second, 2*time.Second, 3*time.Second)
	f(10, 100*time.Millisecond, 200*time.Millisecond, 300*time.Millisecond)
	f(0.5, 2*time.Second, 4*time.Second, 6*time.Second)
}

func TestReplayPacingOnTheRealClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out, reg := &recordSink{}, prometheus.NewRegistry()
		r := newReplayer(replayConfig{Format: "auto", Field: "value", Speed: 1}, out, zerolog.Nop(), reg, systemClock())
		start := time.Now()
		in, err := os.Open(filepath.Join("testdata", "replay", "ec2_cpu_utilization_5f5533.csv"))
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		if _, err := r.replayFile(t.Context(), in, in.Name()); err != nil {
			t.Fatal(err)
		}
		// 20 rows 5 minutes apart: the last one is due 95 minutes in.
		if got := time.Since(start); got != 95*time.Minute || len(out.points) != 19 {
			t.Fatalf("took %s for %d points, want 95m for 19", got, len(out.points))
		}
	})
}

func TestReplayShiftToNow(t *testing.T) {
	r, out, fc, _ := testReplayer(replayConfig{Format: "auto", Field: "value", Speed: 10, ShiftToNow: true})
	name := filepath.Join("testdata", "replay", "ec2_cpu_utilization_5f5533.csv")
	in, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := r.replayFile(context.Background(), in, name); err != nil {
		t.Fatal(err)
	}
	// At --speed 10 each point is stamped when it is sent: ten times closer
	// together than in the file, so event time keeps pace with the clock.
	want := nabPoints(0)
	for i := range want {
		want[i].Time = fakeStart.UnixNano() + (want[i].Time-utc("2014-04-01T00:00:00Z"))/10
	}
	checkPoints(t, out.points, want)
	if got := fc.now.Sub(fakeStart); got != 95*time.Minute/10 {
		t.Errorf("replay took %s, want 9.5m", got)
	}
	// A shift that would overflow skips the line.
	got, st := replayString(t, replayConfig{Format: "line", Field: "value", ShiftToNow: true}, "o.lp", "p v=1 -9000000000000000000\np v=2 9000000000000000000\np v=3 1\np v=4 -8999999999999999999\n")
	if len(got) != 2 || got[0].Time != fakeStart.UnixNano() || got[1].Time != fakeStart.UnixNano()+1 || st.Skipped != 2 || !strings.Contains(st.FirstSkip.Error(), "out of range") {
		t.Fatalf("points %+v, stats %+v", got, st)
	}
}

func TestReplayStopsWhenCancelled(t *testing.T) {
	t.Run("while sending", func(t *testing.T) {
		r, out, _, _ := testReplayer(defaultReplayConfig())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out.cancel, out.cancelAfter = cancel, 2 // before the bad line 5
		err := r.run(ctx, []string{filepath.Join("testdata", "replay", "points.lp"), filepath.Join("testdata", "replay", "points.jsonl")}, nil)
		if err != nil || len(out.points) != 2 {
			t.Fatalf("run: %v after %d points, want nil after 2", err, len(out.points))
		}
	})
	t.Run("while pacing", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			out, reg := &recordSink{}, prometheus.NewRegistry()
			r := newReplayer(replayConfig{Format: "line", Field: "value", Speed: 1}, out, zerolog.Nop(), reg, systemClock())
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			start := time.Now()
			_, err := r.replayFile(ctx, strings.NewReader("p v=1 1\np v=2 3600000000001\n"), "p.lp")
			if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Minute || len(out.points) != 1 {
				t.Fatalf("err %v after %s and %d points, want a deadline after 1m and 1 point", err, time.Since(start), len(out.points))
			}
		})
	})
}

func TestReplayRunSummarisesSkippedLines(t *testing.T) {
	r, out, _, reg := testReplayer(defaultReplayConfig())
	dir := filepath.Join("testdata", "replay")
	stdin := strings.NewReader("cpu v=1 1\n")
	err := r.run(context.Background(), []string{filepath.Join(dir, "ec2_cpu_utilization_5f5533.csv"), "-", filepath.Join(dir, "points.jsonl"), filepath.Join(dir, "points.lp")}, stdin)
	want := "replay: 3 of 29 lines skipped (first: " + filepath.Join(dir, "ec2_cpu_utilization_5f5533.csv") + ":12: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err %v, want it to start with %q", err, want)
	}
	var le *lineError
	if !errors.As(err, &le) || le.Line != 12 {
		t.Fatalf("err %v does not wrap the first *lineError", err)
	}
	if len(out.points) != 19+1+4+3 {
		t.Fatalf("%d points sent", len(out.points))
	}
	mfs, gerr := reg.Gather()
	if gerr != nil {
		t.Fatal(gerr)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetCounter().GetValue()
	}
	if got["metricpipe_producer_replay_lines_total"] != 29 || got["metricpipe_producer_replay_skipped_total"] != 3 {
		t.Fatalf("metrics %v", got)
	}

	// A clean replay returns nil; a missing file stops it with an error.
	r, _, _, _ = testReplayer(defaultReplayConfig())
	if err := r.run(context.Background(), nil, strings.NewReader("cpu v=1 1\n")); err != nil {
		t.Fatalf("clean replay: %v", err)
	}
	if err := r.run(context.Background(), []string{filepath.Join(dir, "missing.csv")}, nil); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestReplaySkipsOverlongLines(t *testing.T) {
	long := "cpu v=1 " + strings.Repeat("9", maxReplayLine)
	exact := "cpu,k=" + strings.Repeat("x", maxReplayLine-len("cpu,k= v=3 3")) + " v=3 3"
	got, st := replayString(t, replayConfig{Format: "line", Field: "value"}, "l.lp", "cpu v=1 1\n"+long+"\ncpu v=2 2\n"+exact+"\n"+long)
	if len(got) != 3 || got[1].Fields[0].Value != 2 || got[2].Time != 3 {
		t.Fatalf("%d points, want 3", len(got))
	}
	if st.Lines != 5 || st.Skipped != 2 || st.FirstSkip.Error() != "l.lp:2: line longer than 1048576 bytes" {
		t.Fatalf("stats %+v", st)
	}
}

func TestReplayConfigValidate(t *testing.T) {
	tg, err := parseTagFlags([]string{"z=1", "a=b=c", "nokey"})
	if err == nil || !strings.Contains(err.Error(), `--tag "nokey"`) || !reflect.DeepEqual(tg, tags("a", "b=c", "z", "1")) {
		t.Fatalf("parseTagFlags: %v, %v", tg, err)
	}
	if err := defaultReplayConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := replayConfig{Format: "xml", Speed: -1, Field: "time", Measurement: "#m", Tags: tags("a", "1", "a", "2")}
	err = bad.Validate()
	for _, flag := range []string{"--input-format", "--speed", "--field", "--measurement", "--tag"} {
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("Validate does not name %s: %v", flag, err)
		}
	}
}

// appWithReplay is the producer app with the replay command, whether or
// not main.go lists it yet.
func appWithReplay(stdout, stderr io.Writer) *cli.App {
	app := newApp(stdout, stderr)
	if app.Command("replay") == nil {
		app.Commands = append(app.Commands, replayCommand(stderr))
	}
	return app
}

func TestReplayCommandFlags(t *testing.T) {
	clitest.CheckFlagEnv(t, appWithReplay, 15)
	clitest.CheckRejects(t, appWithReplay,
		[]string{"producer", "replay", "--input-format", "xml", "--speed", "-2", "--tag", "x", "--kafka-brokers", "nohost", "no-such-file.csv"},
		"--input-format", "--speed", "--tag", "--kafka-brokers", "no-such-file.csv")
	// Flags after a file would be read as file names.
	clitest.CheckRejects(t, appWithReplay,
		[]string{"producer", "replay", "--kafka-brokers", "127.0.0.1:1", "testdata/replay/points.lp", "--speed", "60"},
		`"--speed" comes after the files`)
}

func FuzzReplayFile(f *testing.F) {
	for _, name := range []string{"ec2_cpu_utilization_5f5533.csv", "points.jsonl", "points.lp"} {
		b, err := os.ReadFile(filepath.Join("testdata", "replay", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), name)
	}
	f.Fuzz(func(t *testing.T, in, name string) {
		r, out, _, _ := testReplayer(replayConfig{Format: "auto", Field: "value", Speed: 1, ShiftToNow: true})
		st, _ := r.replayFile(context.Background(), strings.NewReader(in), filepath.Base(name))
		if st.Points != int64(len(out.points)) || st.Skipped > st.Lines {
			t.Fatalf("stats %+v for %d points", st, len(out.points))
		}
		for _, p := range out.points {
			if err := p.Validate(); err != nil {
				t.Fatalf("invalid point sent: %v", err)
			}
		}
	})
}
