package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/internal/testbed"
)

// faultSuite is what the fault scenarios share: the cluster, its InfluxDB
// and the service binaries, built once.
type faultSuite struct {
	c         *testbed.Cluster
	influxURL string
	bins      map[string]string
}

// listener is which of the cluster's listeners the services connect to.
type listener int

const (
	plaintext listener = iota
	overTLS
	overSASL // SASL_SSL: SCRAM-SHA-512 inside TLS
)

// faultBed is one scenario's slice of the cluster: its topic, groups and
// database.
type faultBed struct {
	t          *testing.T
	s          *faultSuite
	topic      string
	partitions int
	db, bucket string
	kafka      []string // the --kafka-* flags of every service
	brokers    []string
}

const faultPartitions = 8

// bed creates the scenario's topic (8 partitions, on all three nodes, with
// configs) and database; the services connect through l.
func (s *faultSuite) bed(t *testing.T, name string, l listener, configs map[string]string) *faultBed {
	t.Helper()
	b := &faultBed{t: t, s: s, topic: testbed.UniqueName("faults-" + name + "-"), partitions: faultPartitions, db: testbed.UniqueName("faults_")}
	b.bucket = testbed.CreateDatabase(t, s.influxURL, b.db)
	if err := s.c.CreateTopic(t.Context(), b.topic, b.partitions, configs); err != nil {
		t.Fatal(err)
	}
	switch l {
	case plaintext:
		b.brokers = s.c.Brokers
	case overTLS:
		b.brokers = s.c.TLSBrokers
		b.kafka = []string{"--kafka-tls", "--kafka-tls-ca-file", s.c.CAFile}
	case overSASL:
		b.brokers = s.c.SASLBrokers
		b.kafka = append(b.kafka, "--kafka-tls", "--kafka-tls-ca-file", s.c.CAFile, "--kafka-sasl-mechanism", s.c.SASLMechanism,
			"--kafka-sasl-username", s.c.SASLUsername, "--kafka-sasl-password-file", b.secretFile(s.c.SASLPassword))
	}
	b.kafka = append([]string{"--kafka-brokers", strings.Join(b.brokers, ",")}, b.kafka...)
	return b
}

// secretFile writes a password where only the test reads it, so it is in no
// process's arguments.
func (b *faultBed) secretFile(secret string) string {
	path := filepath.Join(b.t.TempDir(), "password")
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		b.t.Fatal(err)
	}
	return path
}

// args joins the service's own arguments with the bed's Kafka flags and the
// replication the cluster wants for the topics a service creates.
func (b *faultBed) args(own ...string) []string {
	return append(append(own, b.kafka...), "--replication-factor", "3", "--http-addr", testbed.FreeAddr(b.t), "--log-format", "console")
}

func (b *faultBed) consumerGroup() string { return b.topic + "-c" }
func (b *faultBed) analyzerGroup() string { return b.topic + "-a" }
func (b *faultBed) dlqTopic() string      { return b.topic + "-dlq" }

// consumer starts the consumer service on the bed; httpAddr serves its
// /metrics.
func (b *faultBed) consumer(httpAddr string) *testbed.Proc {
	b.t.Helper()
	args := b.args("--topic", b.topic, "--group", b.consumerGroup(), "--dlq-topic", b.dlqTopic(),
		"--influx-url", b.s.influxURL, "--influx-bucket", b.bucket, "--influx-flush-interval", "200ms", "--idle-flush", "2s")
	args = append(args, "--http-addr", httpAddr) // the last one counts
	return testbed.Start(b.t, "consumer", b.s.bins["consumer"], args...)
}

// analyzer starts the analyzer without alert rules: it writes a forecast
// for every point but each series' first two.
func (b *faultBed) analyzer() *testbed.Proc {
	b.t.Helper()
	rules := filepath.Join(b.t.TempDir(), "rules.yaml")
	writeFile(b.t, rules, "rules: []\n")
	return testbed.Start(b.t, "analyzer", b.s.bins["analyzer"], b.args("--topic", b.topic, "--group", b.analyzerGroup(),
		"--alert-topic", b.topic+"-alerts", "--rules", rules, "--influx-url", b.s.influxURL, "--influx-bucket", b.bucket)...)
}

// replay starts `producer replay` of the feed's file at speed times its
// event-time pace (0: as fast as it can).
func (b *faultBed) replay(f *feed, speed float64) *testbed.Proc {
	b.t.Helper()
	path := filepath.Join(b.t.TempDir(), "feed.lp")
	if err := os.WriteFile(path, f.lines(), 0o644); err != nil {
		b.t.Fatal(err)
	}
	return testbed.Start(b.t, "producer", b.s.bins["producer"],
		append(b.args("replay", "--topic", b.topic, "--speed", strconv.FormatFloat(speed, 'f', -1, 64)), path)...)
}

// sample is one point of a feed: its series and time.
type sample struct {
	series string
	time   int64
}

// feed is a known set of points: measurement "faults", tag series, field
// value, one point per series per step of a second of event time, an hour
// ago. Values are random but fixed by the seed, with all the digits of a
// float64, so a value changed on the way cannot go unseen.
type feed struct {
	want   map[sample]float64
	order  []sample // as sent
	series []string
}

const faultsMeasurement = "faults"

func newFeed(prefix string, series, steps int, seed uint64) *feed {
	f := &feed{want: make(map[sample]float64, series*steps)}
	f.add(prefix, series, steps, seed)
	return f
}

// add appends steps more points of series more series (named prefix-NN).
func (f *feed) add(prefix string, series, steps int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	base := time.Now().Add(-time.Hour).Truncate(time.Second).UnixNano()
	names := make([]string, series)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%02d", prefix, i)
	}
	f.series = append(f.series, names...)
	for step := range steps {
		for _, name := range names {
			s := sample{series: name, time: base + int64(step)*int64(time.Second)}
			v := (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(9)-3))
			f.want[s] = v
			f.order = append(f.order, s)
		}
	}
}

// line is sample s in line protocol.
func (f *feed) line(s sample) string {
	return fmt.Sprintf("%s,series=%s value=%s %d", faultsMeasurement, s.series, strconv.FormatFloat(f.want[s], 'g', -1, 64), s.time)
}

func (f *feed) lines() []byte {
	var buf bytes.Buffer
	for _, s := range f.order {
		buf.WriteString(f.line(s))
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// forecastable is the samples the analyzer forecasts: all but each series'
// first two.
func (f *feed) forecastable(samples []sample) map[sample]bool {
	seen := map[string]int{}
	out := map[sample]bool{}
	for _, s := range samples {
		if seen[s.series] >= 2 {
			out[s] = true
		}
		seen[s.series]++
	}
	return out
}

// stored reads every value of field the bed's database holds.
func (b *faultBed) stored(field string) (map[sample]float64, error) {
	flux := fmt.Sprintf(`from(bucket: %q)
  |> range(start: 1970-01-01T00:00:00Z, stop: 2100-01-01T00:00:00Z)
  |> filter(fn: (r) => r._measurement == %q and r._field == %q)
  |> keep(columns: ["series", "_time", "_value"])`, b.bucket, faultsMeasurement, field)
	rows, err := testbed.FluxRows(b.t.Context(), b.s.influxURL, flux)
	if err != nil {
		return nil, err
	}
	out := make(map[sample]float64, len(rows))
	for _, r := range rows {
		series, _ := r["series"].(string)
		at, ok := r["_time"].(time.Time)
		v, okv := r["_value"].(float64)
		if !ok || !okv {
			return nil, fmt.Errorf("row %v: want a time and a float value", r)
		}
		out[sample{series: series, time: at.UnixNano()}] = v
	}
	return out, nil
}

// figures are what a scenario measured, printed on one FAULTS line.
type figures struct {
	scenario                    string
	fed, stored, missing, wrong int
	extra                       int // stored but never fed (an aborted transaction's, say)
	dlq                         int64
	forecasts, forecastMissing  int
	forecastExtra               int
	recover                     time.Duration    // -1: not measured
	producerFailed              int64            // points the producer gave up on (its own count)
	skipped, lost               float64          // retention: counted by the consumer, measured on the broker
	lag                         map[string]int64 // offsets each group left uncommitted at the end
	extraFields                 []string
	retention                   bool // whether the retention figures apply
	// analyzer, when the scenario ran one, is checked for forecasts: every
	// point has one, reassignments included, since a partition that moves
	// is restored from its checkpoint instead of starting cold.
	analyzer *testbed.Proc
}

func (fg *figures) String() string {
	rec := "-"
	if fg.recover >= 0 {
		rec = fmt.Sprintf("%.1fs", fg.recover.Seconds())
	}
	var lag int64
	for _, n := range fg.lag {
		lag += n
	}
	s := fmt.Sprintf("FAULTS scenario=%s fed=%d stored=%d missing=%d wrong=%d extra=%d dlq=%d producer_failed=%d lag=%d recover=%s",
		fg.scenario, fg.fed, fg.stored, fg.missing, fg.wrong, fg.extra, fg.dlq, fg.producerFailed, lag, rec)
	if fg.analyzer != nil {
		s += fmt.Sprintf(" forecasts=%d forecast_missing=%d forecast_extra=%d analyzer_reassignments=%d",
			fg.forecasts, fg.forecastMissing, fg.forecastExtra, fg.reassignments())
	}
	if fg.retention {
		s += fmt.Sprintf(" skipped_counted=%g lost_on_broker=%g", fg.skipped, fg.lost)
	}
	for _, e := range fg.extraFields {
		s += " " + e
	}
	return s
}

// settle waits until every group committed to the end of the topic: as
// the services commit only what they wrote, everything they will write is
// in InfluxDB then. It gives up when timeout passes, or when InfluxDB holds
// want points and the groups' lag has not moved for stuckAfter, and returns
// each group's lag: the caller reports what it finds.
func (b *faultBed) settle(want int, timeout time.Duration, groups ...string) map[string]int64 {
	b.t.Helper()
	const stuckAfter = 15 * time.Second
	deadline := time.Now().Add(timeout)
	lags := map[string]int64{}
	var last string
	var since time.Time
	for {
		total, all := int64(0), true
		for _, g := range groups {
			lag, err := b.lag(g)
			if err != nil {
				all = false
				continue
			}
			lags[g] = lag
			total += lag
		}
		if all && total == 0 {
			return lags
		}
		if now := fmt.Sprint(lags); now != last {
			last, since = now, time.Now()
		}
		if time.Now().After(deadline) {
			b.t.Logf("not settled within %s: lag %v", timeout, lags)
			return lags
		}
		if time.Since(since) > stuckAfter {
			if n, err := b.count(); err == nil && n >= int64(want) {
				b.t.Logf("every point stored, but the lag stays at %v", lags)
				return lags
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (b *faultBed) count() (int64, error) {
	flux := fmt.Sprintf(`from(bucket: %q)
  |> range(start: 1970-01-01T00:00:00Z, stop: 2100-01-01T00:00:00Z)
  |> filter(fn: (r) => r._measurement == %q and r._field == "value")
  |> group()
  |> count()`, b.bucket, faultsMeasurement)
	n, _, err := testbed.FluxInt(b.t.Context(), b.s.influxURL, flux)
	return n, err
}

// lag is how many offsets group has not committed, over every partition.
func (b *faultBed) lag(group string) (int64, error) {
	ends, err := b.s.c.Offsets(b.t.Context(), b.topic, kafka.LastOffset)
	if err != nil {
		return 0, err
	}
	committed, err := b.s.c.Committed(b.t.Context(), group, b.topic, b.partitions)
	if err != nil {
		return 0, err
	}
	var lag int64
	for p, end := range ends {
		lag += end - max(committed[p], 0)
	}
	return lag, nil
}

// dead counts the messages on the bed's dead-letter topic (0 without one).
func (b *faultBed) dead() int64 {
	first, err := b.s.c.Offsets(b.t.Context(), b.dlqTopic(), kafka.FirstOffset)
	if err != nil {
		return 0
	}
	last, err := b.s.c.Offsets(b.t.Context(), b.dlqTopic(), kafka.LastOffset)
	if err != nil {
		b.t.Logf("dead-letter topic: %v", err)
		return 0
	}
	var n int64
	for p := range last {
		n += last[p] - first[p]
	}
	return n
}

// verify compares what InfluxDB holds with what was fed (want, in the
// order sent) and fills fg; with the analyzer on, its forecasts too.
func (b *faultBed) verify(fg *figures, f *feed, want []sample) {
	b.t.Helper()
	got, err := b.stored("value")
	if err != nil {
		b.t.Fatalf("read back the points: %v", err)
	}
	fed := map[sample]bool{}
	fg.fed, fg.stored = len(want), len(got)
	var missing, wrong []string
	for _, s := range want {
		fed[s] = true
		v, ok := got[s]
		switch {
		case !ok:
			fg.missing++
			missing = append(missing, fmt.Sprintf("%s@%d", s.series, s.time))
		case v != f.want[s]:
			fg.wrong++
			wrong = append(wrong, fmt.Sprintf("%s@%d: %v, want %v", s.series, s.time, v, f.want[s]))
		}
	}
	for s := range got {
		if !fed[s] {
			fg.extra++
		}
	}
	if len(missing) > 0 {
		b.t.Logf("missing (first of %d): %s", len(missing), strings.Join(first(missing, 10), ", "))
	}
	if len(wrong) > 0 {
		b.t.Logf("wrong values (first of %d): %s", len(wrong), strings.Join(first(wrong, 10), "; "))
	}
	fg.dlq = b.dead()
	if fg.analyzer == nil {
		return
	}
	fc, err := b.stored("value_forecast")
	if err != nil {
		b.t.Fatalf("read back the forecasts: %v", err)
	}
	fg.forecasts = len(fc)
	// A point that never reached InfluxDB is counted missing once, above.
	expect := f.forecastable(want)
	var fcMissing []string
	for _, s := range want {
		if _, ok := fc[s]; !ok && expect[s] {
			if _, stored := got[s]; stored {
				fg.forecastMissing++
				fcMissing = append(fcMissing, fmt.Sprintf("%s@%d", s.series, s.time))
			}
		}
	}
	if len(fcMissing) > 0 {
		b.t.Logf("points without a forecast (first of %d): %s", len(fcMissing), strings.Join(first(fcMissing, 10), ", "))
	}
	for s := range fc {
		if !expect[s] {
			fg.forecastExtra++
		}
	}
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// report logs fg's FAULTS line and fails the test for every point missing,
// changed or extra, every dead letter and every forecast missing.
func (b *faultBed) report(fg *figures) {
	b.t.Helper()
	b.t.Log(fg.String())
	if fg.missing > 0 || fg.wrong > 0 || fg.extra > 0 {
		b.t.Errorf("%s: %d of %d points missing, %d with a changed value, %d never fed (or aborted) stored", fg.scenario, fg.missing, fg.fed, fg.wrong, fg.extra)
	}
	if fg.dlq > 0 {
		b.t.Errorf("%s: %d messages dead-lettered, want none", fg.scenario, fg.dlq)
	}
	if fg.producerFailed > 0 {
		b.t.Errorf("%s: the producer gave up on %d points", fg.scenario, fg.producerFailed)
	}
	for g, n := range fg.lag {
		if n != 0 {
			b.t.Errorf("%s: group %s never committed its last %d offsets (the end of the topic)", fg.scenario, g, n)
		}
	}
	if fg.analyzer == nil {
		return
	}
	if fg.forecastMissing > 0 || fg.forecastExtra > 0 {
		b.t.Errorf("%s: the analyzer's forecasts: %d missing (after %d reassignments, each restored from a checkpoint), %d for points never fed",
			fg.scenario, fg.forecastMissing, fg.reassignments(), fg.forecastExtra)
	}
}

// reassignments counts the analyzer's assignments after its first.
func (fg *figures) reassignments() int {
	return max(0, strings.Count(fg.analyzer.Output(), "partitions assigned")-1)
}

var failedRE = regexp.MustCompile(`source done.*failed=(\d+)`)

// awaitProducer waits for the producer to end and returns how many points
// it reported failed; a non-zero exit is logged with the end of its output.
func awaitProducer(t *testing.T, p *testbed.Proc, timeout time.Duration) int64 {
	t.Helper()
	err := p.Wait(timeout)
	var failed int64
	if m := failedRE.FindStringSubmatch(p.Output()); m != nil {
		failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if err != nil {
		t.Logf("producer: %v (reported %d points failed); its output ends:\n%s", err, failed, tail(p.Output(), 20))
		if failed == 0 {
			failed = -1 // ended badly without saying how many
		}
	}
	return failed
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// hold lets d pass while the processes keep running; a process that exits
// fails the test.
func hold(t *testing.T, d time.Duration, procs ...*testbed.Proc) {
	t.Helper()
	start := time.Now()
	testbed.Eventually(t, d+10*time.Second, fmt.Sprintf("%s with the services up", d), func() (bool, string) {
		for _, p := range procs {
			if p.Exited() {
				t.Fatalf("%s exited:\n%s", p.Name, tail(p.Output(), 30))
			}
		}
		return time.Since(start) >= d, ""
	})
}

// waitStored waits until InfluxDB holds at least n points of the bed.
func (b *faultBed) waitStored(n int64, timeout time.Duration) {
	b.t.Helper()
	testbed.Eventually(b.t, timeout, fmt.Sprintf("%d points stored", n), func() (bool, string) {
		got, err := b.count()
		if err != nil {
			return false, err.Error()
		}
		return got >= n, fmt.Sprintf("%d points", got)
	})
}

// recovery watches group's commits from the moment it is called (just
// before a fault). The returned function waits until every partition
// committed past where it stood then, or timeout passed, and returns how
// long the slowest took (-1 if one never did) and a line of each
// partition's time, which shows whether the partitions of one broker or all
// of them stalled.
func (b *faultBed) recovery(group string, timeout time.Duration) func() (time.Duration, string) {
	var base map[int]int64
	for deadline := time.Now().Add(10 * time.Second); base == nil && time.Now().Before(deadline); {
		base, _ = b.s.c.Committed(b.t.Context(), group, b.topic, b.partitions)
	}
	start := time.Now()
	type result struct {
		worst time.Duration
		each  string
	}
	done := make(chan result, 1)
	go func() {
		took := map[int]time.Duration{}
		for time.Since(start) < timeout && b.t.Context().Err() == nil && len(took) < b.partitions {
			if now, err := b.s.c.Committed(b.t.Context(), group, b.topic, b.partitions); err == nil {
				for p, off := range now {
					if _, ok := took[p]; !ok && off > base[p] {
						took[p] = time.Since(start)
					}
				}
			}
			time.Sleep(250 * time.Millisecond)
		}
		var r result
		var each []string
		for p := range b.partitions {
			d, ok := took[p]
			switch {
			case !ok:
				r.worst = -1
				each = append(each, fmt.Sprintf("p%d=never", p))
			default:
				if r.worst >= 0 {
					r.worst = max(r.worst, d)
				}
				each = append(each, fmt.Sprintf("p%d=%.1fs", p, d.Seconds()))
			}
		}
		r.each = strings.Join(each, " ")
		done <- r
	}()
	return func() (time.Duration, string) { r := <-done; return r.worst, r.each }
}

// coordinators says which node coordinates each group of the bed, for the
// log of a fault: a group whose coordinator fails stalls all its commits.
func (b *faultBed) coordinators() string {
	var out []string
	for _, g := range []string{b.consumerGroup(), b.analyzerGroup()} {
		n, err := b.s.c.Coordinator(b.t.Context(), g)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", g, err))
			continue
		}
		out = append(out, fmt.Sprintf("group %s coordinated by node %d", g, n))
	}
	return strings.Join(out, ", ")
}

// metric reads the value of a counter (summed over its labels) from a
// service's /metrics; found is false when the service does not export it.
func metric(addr, name string) (v float64, found bool, err error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		fields := strings.Fields(line)
		x, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, false, fmt.Errorf("metric line %q: %w", line, err)
		}
		v += x
		found = true
	}
	return v, found, sc.Err()
}

// lines returns the lines of s that contain every one of subs.
func linesWith(s string, subs ...string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if !slices.ContainsFunc(subs, func(sub string) bool { return !strings.Contains(line, sub) }) {
			out = append(out, line)
		}
	}
	return out
}
