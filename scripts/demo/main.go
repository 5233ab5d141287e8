// Command demo runs the whole metricpipe pipeline on one machine with nothing
// but Go: an in-process Kafka-protocol broker (kfake) unless
// METRICPIPE_KAFKA_BROKERS names a real cluster, a local InfluxDB 1.8 (built
// and started by scripts/testbed.sh) unless METRICPIPE_INFLUX_URL is set, and
// the producer, consumer and analyzer as processes. It prints a live view of
// what flows; Ctrl-C stops everything and waits for it to exit.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/twmb/franz-go/pkg/kfake"
)

const (
	influxPort = "18186" // apart from the test bed's 18086 so both can run
	database   = "metricpipe"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "metricpipe-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	brokers := os.Getenv("METRICPIPE_KAFKA_BROKERS")
	if brokers == "" {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return fmt.Errorf("start in-process Kafka broker: %w", err)
		}
		defer cluster.Close()
		brokers = strings.Join(cluster.ListenAddrs(), ",")
		say("Kafka: in-process kfake broker at %s (set METRICPIPE_KAFKA_BROKERS to use a real cluster)", brokers)
	} else {
		say("Kafka: %s", brokers)
	}

	influxURL, bucket := os.Getenv("METRICPIPE_INFLUX_URL"), os.Getenv("METRICPIPE_INFLUX_BUCKET")
	if influxURL == "" {
		stopInflux, err := startInflux(ctx, root, work)
		if stopInflux != nil {
			defer stopInflux()
		}
		if err != nil {
			return err
		}
		influxURL, bucket = "http://127.0.0.1:"+influxPort, database+"/autogen"
	}
	if bucket == "" {
		bucket = database + "/autogen"
	}
	say("InfluxDB: %s, bucket %s", influxURL, bucket)

	say("building the services…")
	bin := filepath.Join(work, "bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./producer", "./consumer", "./analyzer")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}

	env := append(os.Environ(),
		"METRICPIPE_KAFKA_BROKERS="+brokers,
		"METRICPIPE_INFLUX_URL="+influxURL,
		"METRICPIPE_INFLUX_BUCKET="+bucket,
		"METRICPIPE_LOG_FORMAT=console",
		"METRICPIPE_LOG_LEVEL=info", // the logs go to files, not the live view
	)
	logs := filepath.Join(root, ".cache", "demo")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	var procs []*proc
	defer func() { stopAll(procs) }()
	for _, p := range []struct {
		name string
		args []string
	}{
		{"consumer", nil},
		{"analyzer", []string{"--rules", filepath.Join(root, "deploy", "rules.yaml")}},
		{"producer", []string{"synthetic", "--series", "20", "--rate", "200", "--interval", "100ms", "--anomaly-rate", "0.001"}},
	} {
		cmd, err := startService(filepath.Join(bin, p.name), p.args, env, filepath.Join(logs, p.name+".log"))
		if err != nil {
			return err
		}
		procs = append(procs, cmd)
	}
	say("services running; logs in %s. Ctrl-C stops everything.", logs)
	say("alerts as they happen, in another terminal: %s alerts tail --kafka-brokers %s", filepath.Join(bin, "analyzer"), brokers)
	liveView(ctx, influxURL, bucket, procs)
	say("stopping…")
	return nil
}

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...)
}

// startInflux builds (first run only) and starts InfluxDB 1.8.10 through the
// test bed script, then creates the demo database.
func startInflux(ctx context.Context, root, work string) (func(), error) {
	script := filepath.Join(root, "scripts", "testbed.sh")
	env := append(os.Environ(), "METRICPIPE_TESTBED_DIR="+filepath.Join(work, "testbed"), "METRICPIPE_TESTBED_INFLUX_PORT="+influxPort)
	say("starting InfluxDB 1.8.10 (built once from the Go module proxy, about a minute)…")
	start := exec.CommandContext(ctx, script, "influx", "start", "fresh")
	start.Env, start.Stdout, start.Stderr = env, os.Stderr, os.Stderr
	stopFn := func() {
		stop := exec.Command(script, "influx", "stop")
		stop.Env, stop.Stdout, stop.Stderr = env, os.Stderr, os.Stderr
		_ = stop.Run()
	}
	if err := start.Run(); err != nil {
		return stopFn, fmt.Errorf("start InfluxDB: %w", err)
	}
	resp, err := http.Post("http://127.0.0.1:"+influxPort+"/query?q=CREATE+DATABASE+"+database, "", nil)
	if err != nil {
		return stopFn, fmt.Errorf("create database: %w", err)
	}
	resp.Body.Close()
	return stopFn, nil
}

// proc is a running service; done closes when it exits.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startService(bin string, args, env []string, logPath string) (*proc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logFile, logFile
	// Own process group, so the terminal's Ctrl-C reaches only the demo,
	// which then stops the services in order; Pdeathsig covers a killed demo.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	p := &proc{name: filepath.Base(bin), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// stopAll stops the producer first, then the consumers, so they drain what
// was produced; each gets 30 s before being killed.
func stopAll(procs []*proc) {
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			say("%s did not stop within 30s; killing it", p.name)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if p.err != nil {
			say("%s exited: %v", p.name, p.err)
		}
	}
}

// liveView prints, every two seconds, the counters each service exposes and
// what InfluxDB holds, until ctx is done or a service exits.
func liveView(ctx context.Context, influxURL, bucket string, procs []*proc) {
	client := influxdb2.NewClient(influxURL, os.Getenv("METRICPIPE_INFLUX_TOKEN"))
	defer client.Close()
	query := client.QueryAPI(os.Getenv("METRICPIPE_INFLUX_ORG"))
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	var last [3]float64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, p := range procs {
			select {
			case <-p.done:
				say("%s exited unexpectedly (%v); see its log", p.name, p.err)
				return
			default:
			}
		}
		now := [3]float64{
			scrape("127.0.0.1:9101", "metricpipe_producer_points_sent_total"),
			scrape("127.0.0.1:9102", "metricpipe_consumer_points_written_total"),
			scrape("127.0.0.1:9103", "metricpipe_analyzer_points_total"),
		}
		alerts := scrape("127.0.0.1:9103", "metricpipe_analyzer_alerts_total")
		stored := "?"
		// Raw points: each has one "value" field (the others are derived).
		flux := fmt.Sprintf(`from(bucket: %q) |> range(start: -1h, stop: 2100-01-01T00:00:00Z) |> filter(fn: (r) => r._measurement == "synthetic" and r._field == "value") |> group() |> count()`, bucket)
		if res, err := query.Query(ctx, flux); err == nil {
			for res.Next() {
				stored = fmt.Sprint(res.Record().Value())
			}
			res.Close()
		}
		fmt.Printf("%s  produced %7.0f (%4.0f/s) │ consumer wrote %7.0f (%4.0f/s) │ analyzer saw %7.0f (%4.0f/s), %3.0f alert events │ InfluxDB holds %s points\n",
			time.Now().Format(time.TimeOnly), now[0], (now[0]-last[0])/2, now[1], (now[1]-last[1])/2, now[2], (now[2]-last[2])/2, alerts, stored)
		last = now
	}
}

// scrape returns a counter's value from a service's /metrics, or 0 when the
// service is not answering yet.
func scrape(addr, name string) float64 {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	return counter(resp.Body, name)
}

// counter sums the series of the counter name (all its label sets).
func counter(r io.Reader, name string) float64 {
	var sum float64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if v, err := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}
