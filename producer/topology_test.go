package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/internal/clitest"
	"github.com/metricpipe/metricpipe/shared/point"
)

func TestParseTopology(t *testing.T) {
	f := func(name, text string, want ...string) {
		t.Helper()
		topo, err := parseTopology(name+".yaml", []byte(text))
		if len(want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			} else if topo == nil || len(topo.Services) == 0 || len(topo.Clusters) == 0 {
				t.Errorf("%s: empty topology %+v", name, topo)
			}
			return
		}
		if err == nil {
			t.Errorf("%s: no error, want one naming %q", name, want)
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, name+".yaml") {
				t.Errorf("%s: error line %q does not name the file", name, line)
			}
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error does not contain %q:\n%v", name, w, err)
			}
		}
	}
	f("ok", "clusters: [eu, us]\nservices:\n  db: {hosts: 2}\n  api: {hosts: 3, depends_on: [db]}\n")
	f("no-depends", "clusters: [eu]\nservices:\n  db: {hosts: 1}\n  api: {hosts: 1, depends_on: []}\n")
	f("empty", "", "no clusters", "no services")
	f("empty-lists", "clusters: []\nservices: {}\n", "no clusters", "no services")
	f("not-yaml", "clusters: [eu\n", "not-yaml.yaml")
	f("hosts", "clusters: [eu]\nservices:\n  db: {hosts: 0}\n  api: {}\n  web: {hosts: two}\n",
		`service "db": hosts 0: want ≥ 1`, `service "api": hosts missing`, `service "web": hosts "two"`)
	f("unknown-dependency", "clusters: [eu]\nservices:\n  api: {hosts: 1, depends_on: [db, cache]}\n",
		`service "api": depends on unknown service "db"`, `service "api": depends on unknown service "cache"`)
	f("cycle", "clusters: [eu]\nservices:\n  a: {hosts: 1, depends_on: [c]}\n  b: {hosts: 1, depends_on: [a]}\n  c: {hosts: 1, depends_on: [b]}\n",
		`dependency cycle`, `a -> c -> b -> a`)
	f("self", "clusters: [eu]\nservices:\n  a: {hosts: 1, depends_on: [a]}\n", `service "a": dependency cycle a -> a`)
	f("duplicate-service", "clusters: [eu]\nservices:\n  db: {hosts: 1}\n  db: {hosts: 2}\n", `service "db": defined twice (first at line 3)`)
	f("duplicate-cluster", "clusters: [eu, us, eu]\nservices:\n  db: {hosts: 1}\n", `cluster "eu" listed twice`)
	f("duplicate-dependency", "clusters: [eu]\nservices:\n  db: {hosts: 1}\n  api: {hosts: 1, depends_on: [db, db]}\n", `service "api": depends on "db" twice`)
	f("unknown-key", "clusters: [eu]\nservices:\n  db: {hosts: 1, depends-on: [x]}\nregions: [x]\n",
		`service "db": unknown key "depends-on"`, `unknown key "regions"`)
	f("names", "clusters: [\"e u\"]\nservices:\n  \"d,b\": {hosts: 1}\n", `cluster "e u"`, `service "d,b"`)
	f("lines", "clusters: [eu]\nservices:\n  db: {hosts: 1}\n  api: {hosts: 1, depends_on: [queue]}\n", `lines.yaml:4: service "api"`)

	// From files: the good example, and one with every problem at once.
	topo, err := loadTopology("testdata/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := topo.Clusters; !slices.Equal(got, []string{"eu", "us"}) {
		t.Errorf("clusters %q", got)
	}
	var got []string
	for _, s := range topo.Services {
		got = append(got, fmt.Sprintf("%s:%d:%s", s.Name, s.Hosts, strings.Join(s.DependsOn, "+")))
	}
	if want := []string{"db:2:", "cache:1:", "api:3:db+cache", "web:2:api"}; !slices.Equal(got, want) {
		t.Errorf("services %q, want %q", got, want)
	}
	_, err = loadTopology("testdata/topology_bad.yaml")
	for _, w := range []string{`cluster "eu" listed twice`, `service "db": hosts 0`, `service "api": depends on unknown service "queue"`, `dependency cycle web -> web2 -> web`} {
		if err == nil || !strings.Contains(err.Error(), "testdata/topology_bad.yaml") || !strings.Contains(err.Error(), w) {
			t.Errorf("topology_bad.yaml: error %v, want one naming the file and %q", err, w)
		}
	}
	if _, err := loadTopology("testdata/none.yaml"); err == nil || !strings.Contains(err.Error(), "testdata/none.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestTopologyFlags(t *testing.T) {
	clitest.CheckRejects(t, newApp, []string{"producer", "synthetic", "--topology", "testdata/topology_bad.yaml"},
		"testdata/topology_bad.yaml", `service "db"`, `service "api"`, "cycle")
	clitest.CheckRejects(t, newApp, []string{"producer", "synthetic", "--topology", "testdata/topology.yaml", "--series", "5", "--shapes", "wave"},
		"--series", "--shapes")
	clitest.CheckRejects(t, newApp, []string{"producer", "synthetic", "--topology", "testdata/topology.yaml",
		"--fault-every", "-1s", "--fault-duration", "0s", "--propagation-min", "1m", "--propagation-max", "5s", "--fault-gap", "-1s"},
		"--fault-every", "--fault-duration", "--propagation-max", "--fault-gap")
	clitest.CheckRejects(t, newApp, []string{"producer", "synthetic", "--propagation-max", "5s"}, "--topology")
}

// truthLine is the documented ground-truth line, decoded strictly: the
// test pins the format the analyzer's e2e test reads.
type truthLine struct {
	Incident int    `json:"incident"`
	Cluster  string `json:"cluster"`
	Origin   struct {
		Cluster string  `json:"cluster"`
		Service string  `json:"service"`
		Host    *string `json:"host"`
	} `json:"origin"`
	Scope     string      `json:"scope"`
	Start     string      `json:"start"`
	StartNS   int64       `json:"start_ns"`
	End       string      `json:"end"`
	EndNS     int64       `json:"end_ns"`
	Affected  []truthHost `json:"affected"`
	Truncated bool        `json:"truncated"`
}

type truthHost struct {
	Cluster string `json:"cluster"`
	Service string `json:"service"`
	Host    string `json:"host"`
	OnsetNS int64  `json:"onset_ns"`
	EndNS   int64  `json:"end_ns"`
	DelayNS int64  `json:"delay_ns"`
}

// topologyRun is what a run of the topology generator produced.
type topologyRun struct {
	points []point.Point
	truth  []truthLine
	raw    []byte // the ground-truth file
}

// topoStart is the event time the test runs start at.
var topoStart = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC).UnixNano()

// generateTopology drives the generator through generate into an in-memory
// sink for steps intervals, then stops it as a run's end would, and reads
// back the ground-truth file.
func generateTopology(t *testing.T, topo *topology, cfg syntheticConfig, tc topologyConfig, steps int) topologyRun {
	t.Helper()
	g := newTopologyGenerator(cfg, tc, topo)
	g.start = topoStart
	path := filepath.Join(t.TempDir(), "truth.jsonl")
	truth, err := createGroundTruth(path)
	if err != nil {
		t.Fatal(err)
	}
	g.onIncident = truth.addIncident
	hosts := 0
	for _, s := range topo.Services {
		hosts += s.Hosts * len(topo.Clusters)
	}
	cfg.Count = int64(steps * hosts)
	out := &recordSink{}
	if err := generate(context.Background(), cfg, g, out); err != nil {
		t.Fatal(err)
	}
	g.finish()
	if err := truth.close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	run := topologyRun{points: out.points, raw: raw}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var l truthLine
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("ground truth line %s: %v", sc.Bytes(), err)
		}
		run.truth = append(run.truth, l)
	}
	return run
}

const diamondTopology = `clusters: [eu, us]
services:
  db:     {hosts: 2}
  cache:  {hosts: 1}
  api:    {hosts: 3, depends_on: [db, cache]}
  worker: {hosts: 1, depends_on: [db]}
  web:    {hosts: 2, depends_on: [api, worker, db]} # a shortcut: the fastest path counts
  batch:  {hosts: 1}
`

// TestTopologyFaultsPropagate generates a few hours of a topology and checks
// the faults from the points themselves: the origin degrades first, every
// transitive dependent of its service in its cluster after it within the
// propagation bounds, nothing else; the ground truth is exactly the degraded
// points; faults in a cluster never overlap and are at least --fault-gap
// apart.
func TestTopologyFaultsPropagate(t *testing.T) {
	example, err := loadTopology("testdata/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	diamond, err := parseTopology("diamond.yaml", []byte(diamondTopology))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		topo     *topology
		interval time.Duration
		faults   topologyConfig
		steps    int
	}{
		{"example", example, time.Second, topologyConfig{FaultEvery: 2 * time.Minute, FaultDuration: 30 * time.Second, PropagationMin: 5 * time.Second, PropagationMax: 30 * time.Second}, 4 * 3600},
		{"diamond", diamond, time.Second, topologyConfig{FaultEvery: 3 * time.Minute, FaultDuration: time.Minute, PropagationMin: 2 * time.Second, PropagationMax: 20 * time.Second}, 4 * 3600},
		{"coarse", diamond, 10 * time.Second, topologyConfig{FaultEvery: 10 * time.Minute, FaultDuration: 3 * time.Minute, PropagationMin: 5 * time.Second, PropagationMax: 2 * time.Minute, FaultGap: 15 * time.Minute}, 24 * 360},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := syntheticConfig{Interval: tc.interval, Seed: 11, Measurement: "svc"}
			run := generateTopology(t, tc.topo, cfg, tc.faults, tc.steps)
			checkTopologyRun(t, tc.topo, cfg, tc.faults, run)
		})
	}
}

func checkTopologyRun(t *testing.T, topo *topology, cfg syntheticConfig, tc topologyConfig, run topologyRun) {
	t.Helper()
	interval := int64(cfg.Interval)
	type hostTime struct {
		host string
		t    int64
	}
	type hostInfo struct {
		cluster, service string
		latencies        []float64
	}
	hosts := map[string]*hostInfo{}
	var order []string
	values := map[hostTime][2]float64{} // latency_ms, errors
	lastTime := map[string]int64{}
	var last int64
	for i := range run.points {
		p := &run.points[i]
		if err := p.Validate(); err != nil {
			t.Fatalf("invalid point %+v: %v", p, err)
		}
		if p.Measurement != "svc" || len(p.Tags) != 3 || p.Tags[0].Key != "cluster" || p.Tags[1].Key != "host" || p.Tags[2].Key != "service" ||
			len(p.Fields) != 2 || p.Fields[0].Key != "errors" || p.Fields[1].Key != "latency_ms" {
			t.Fatalf("point %+v: want svc,cluster=,host=,service= errors=,latency_ms=", p)
		}
		c, h, s := p.Tags[0].Value, p.Tags[1].Value, p.Tags[2].Value
		if !strings.HasPrefix(h, s+"-"+c+"-") {
			t.Fatalf("host %q of service %q in cluster %q", h, s, c)
		}
		lat, errs := p.Fields[1].Value, p.Fields[0].Value
		if lat < 0 || errs < 0 || errs != math.Trunc(errs) {
			t.Fatalf("point %+v: negative latency or errors not a count", p)
		}
		info := hosts[h]
		if info == nil {
			info = &hostInfo{cluster: c, service: s}
			hosts[h] = info
			order = append(order, h)
			if p.Time != topoStart {
				t.Fatalf("host %s starts at %d, want %d", h, p.Time, topoStart)
			}
		} else if p.Time-lastTime[h] != interval {
			t.Fatalf("host %s: step %d, want %d", h, p.Time-lastTime[h], interval)
		}
		lastTime[h] = p.Time
		last = max(last, p.Time)
		info.latencies = append(info.latencies, lat)
		values[hostTime{h, p.Time}] = [2]float64{lat, errs}
	}
	want := 0
	for _, s := range topo.Services {
		want += s.Hosts * len(topo.Clusters)
	}
	if len(hosts) != want {
		t.Fatalf("%d hosts, want %d", len(hosts), want)
	}
	for _, h := range order {
		if lastTime[h] != last {
			t.Fatalf("host %s stopped at %d, others at %d: hosts do not advance together", h, lastTime[h], last)
		}
	}

	// A point is degraded when its latency is over twice the host's median
	// (faults multiply it by 3 at least) and its errors are 10 or more
	// (normal errors are Poisson around 0.5): the two must agree.
	medians := map[string]float64{}
	for h, info := range hosts {
		l := slices.Clone(info.latencies)
		slices.Sort(l)
		medians[h] = l[len(l)/2]
		if m := medians[h]; m < 15 || m > 70 {
			t.Errorf("host %s: median latency %.1f ms, want about 20 to 60", h, m)
		}
	}
	degraded := map[hostTime]bool{}
	for k, v := range values {
		slow, failing := v[0] > 2*medians[k.host], v[1] >= 10
		if slow != failing {
			t.Fatalf("host %s at %d: latency %.1f (median %.1f) and errors %v disagree", k.host, k.t, v[0], medians[k.host], v[1])
		}
		if slow {
			degraded[k] = true
		}
	}

	services := map[string]topoService{}
	for _, s := range topo.Services {
		services[s.Name] = s
	}
	// hops returns the fewest dependency edges from each transitive
	// dependent of origin to origin.
	hops := func(origin string) map[string]int {
		out := map[string]int{origin: 0}
		queue := []string{origin}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			for _, s := range topo.Services {
				if _, seen := out[s.Name]; !seen && slices.Contains(s.DependsOn, cur) {
					out[s.Name] = out[cur] + 1
					queue = append(queue, s.Name)
				}
			}
		}
		return out
	}
	maxSpan := time.Duration(0) // the longest a fault can last, its propagation included
	for _, s := range topo.Services {
		for _, n := range hops(s.Name) {
			maxSpan = max(maxSpan, time.Duration(n)*tc.PropagationMax)
		}
	}
	maxSpan += tc.FaultDuration * 13 / 10
	gap := tc.FaultGap
	if gap == 0 {
		gap = 2*tc.PropagationMax + tc.FaultDuration
	}

	covered := map[hostTime]int{}
	byCluster := map[string][]truthLine{}
	scopes := map[string]int{}
	propagated := 0
	for i, l := range run.truth {
		if l.Incident < 1 || slices.ContainsFunc(run.truth[:i], func(o truthLine) bool { return o.Incident == l.Incident }) {
			t.Fatalf("incident number %d not positive or repeated", l.Incident)
		}
		scopes[l.Scope]++
		byCluster[l.Cluster] = append(byCluster[l.Cluster], l)
		if l.Origin.Cluster != l.Cluster || !slices.Contains(topo.Clusters, l.Cluster) {
			t.Fatalf("incident %d: cluster %q, origin %+v", l.Incident, l.Cluster, l.Origin)
		}
		for _, ts := range []struct {
			s  string
			ns int64
		}{{l.Start, l.StartNS}, {l.End, l.EndNS}} {
			if parsed, err := time.Parse(time.RFC3339Nano, ts.s); err != nil || parsed.UnixNano() != ts.ns {
				t.Fatalf("incident %d: time %q is not %d (%v)", l.Incident, ts.s, ts.ns, err)
			}
		}
		var originHosts []string
		switch l.Scope {
		case "host":
			if l.Origin.Host == nil || hosts[*l.Origin.Host] == nil || hosts[*l.Origin.Host].service != l.Origin.Service {
				t.Fatalf("incident %d: host fault of %+v", l.Incident, l.Origin)
			}
			originHosts = []string{*l.Origin.Host}
		case "service":
			if l.Origin.Host != nil {
				t.Fatalf("incident %d: service fault with a host %q", l.Incident, *l.Origin.Host)
			}
			for i := range services[l.Origin.Service].Hosts {
				originHosts = append(originHosts, fmt.Sprintf("%s-%s-%d", l.Origin.Service, l.Cluster, i+1))
			}
		default:
			t.Fatalf("incident %d: scope %q", l.Incident, l.Scope)
		}
		if !bytes.Contains(run.raw, []byte(fmt.Sprintf(`"origin":{"cluster":%q,"service":%q`, l.Cluster, l.Origin.Service))) {
			t.Fatalf("incident %d: origin not written as documented:\n%s", l.Incident, run.raw)
		}
		if len(l.Affected) < len(originHosts) {
			t.Fatalf("incident %d: affected %+v lacks origin hosts %q", l.Incident, l.Affected, originHosts)
		}

		dist := hops(l.Origin.Service)
		hit := map[string]int{} // service -> hosts hit
		var endNS int64
		duration := int64(-1)
		for j, a := range l.Affected {
			if a.Cluster != l.Cluster || hosts[a.Host] == nil || hosts[a.Host].service != a.Service || hosts[a.Host].cluster != a.Cluster {
				t.Fatalf("incident %d: affected %+v", l.Incident, a)
			}
			if a.EndNS < a.OnsetNS {
				t.Fatalf("incident %d: %s ends before its onset", l.Incident, a.Host)
			}
			for ts := a.OnsetNS; ts <= a.EndNS; ts += interval {
				covered[hostTime{a.Host, ts}]++
			}
			endNS = max(endNS, a.EndNS)
			hit[a.Service]++
			since := a.OnsetNS - l.StartNS
			if j < len(originHosts) {
				if a.Host != originHosts[j] || a.DelayNS != 0 || a.OnsetNS != l.StartNS {
					t.Fatalf("incident %d: affected %d is %+v, want origin host %s at the start with delay 0", l.Incident, j, a, originHosts[j])
				}
			} else {
				n, ok := dist[a.Service]
				if !ok || n == 0 {
					t.Fatalf("incident %d: %s hit, but %s does not depend on %s", l.Incident, a.Host, a.Service, l.Origin.Service)
				}
				// The first point at or after the onset the delay sets.
				if since < a.DelayNS || since-interval >= a.DelayNS {
					t.Fatalf("incident %d: %s degrades %s after the start, its delay is %s", l.Incident, a.Host, time.Duration(since), time.Duration(a.DelayNS))
				}
				if since <= 0 || a.DelayNS < int64(n)*int64(tc.PropagationMin) || a.DelayNS > int64(n)*int64(tc.PropagationMax) {
					t.Fatalf("incident %d: %s (%d hops) degrades %s after the origin, want within [%s, %s]", l.Incident, a.Host, n,
						time.Duration(since), time.Duration(n)*tc.PropagationMin, time.Duration(n)*tc.PropagationMax)
				}
				propagated++
			}
			if !l.Truncated {
				// One duration per fault, ±30%, to within a point.
				d := a.EndNS - a.OnsetNS
				if duration < 0 {
					duration = d
				}
				if d < duration-interval || d > duration+interval || d+interval < int64(tc.FaultDuration)*7/10-interval || d > int64(tc.FaultDuration)*13/10 {
					t.Fatalf("incident %d: %s degraded for %s, want one duration near %s", l.Incident, a.Host, time.Duration(d), tc.FaultDuration)
				}
			}
		}
		if span := time.Duration(l.EndNS - l.StartNS); span > maxSpan {
			t.Fatalf("incident %d spans %s, longer than propagation and duration allow (%s)", l.Incident, span, maxSpan)
		}
		if endNS != l.EndNS {
			t.Fatalf("incident %d: end %d, its hosts' last %d", l.Incident, l.EndNS, endNS)
		}
		if !l.Truncated {
			if l.EndNS >= last {
				t.Fatalf("incident %d ends at the last point yet is not truncated", l.Incident)
			}
			// Every transitive dependent, all its hosts; the origin's
			// dependencies and the other services untouched.
			for s, n := range dist {
				want := services[s].Hosts
				if n == 0 {
					want = len(originHosts)
				}
				if hit[s] != want {
					t.Fatalf("incident %d from %s: %d hosts of %s hit, want %d", l.Incident, l.Origin.Service, hit[s], s, want)
				}
			}
		}
		if len(hit) > len(dist) {
			t.Fatalf("incident %d from %s: services %v hit, only %v depend on it", l.Incident, l.Origin.Service, hit, dist)
		}
	}
	// The ground truth is exactly the degraded points: every point of an
	// affected window degraded, none outside; so onsets are the first
	// degraded points and no cluster or service outside a fault degrades.
	for k := range values {
		if n := covered[k]; n > 1 || (n == 1) != degraded[k] {
			t.Fatalf("host %s at %s: in %d ground-truth windows, degraded %v (latency %.1f, errors %v)",
				k.host, time.Duration(k.t-topoStart), n, degraded[k], values[k][0], values[k][1])
		}
	}
	for k := range covered {
		if _, ok := values[k]; !ok {
			t.Fatalf("ground truth covers %s at %d, where no point is", k.host, k.t)
		}
	}
	if scopes["host"] < 3 || scopes["service"] < 3 || propagated < 10 {
		t.Fatalf("too few faults to tell: scopes %v, %d propagated hosts", scopes, propagated)
	}
	for _, c := range topo.Clusters {
		ls := byCluster[c]
		if len(ls) < 5 {
			t.Fatalf("cluster %s: %d incidents", c, len(ls))
		}
		sort.Slice(ls, func(i, j int) bool { return ls[i].StartNS < ls[j].StartNS })
		if first := time.Duration(ls[0].StartNS - topoStart); first < gap {
			t.Errorf("cluster %s: the first fault at %s, before --fault-gap %s", c, first, gap)
		}
		for i := 1; i < len(ls); i++ {
			prev, next := ls[i-1], ls[i]
			if prev.Truncated {
				t.Fatalf("cluster %s: incident %d truncated, yet %d follows", c, prev.Incident, next.Incident)
			}
			// A fault starts only after the previous one ended, at least
			// --fault-gap later: faults never overlap.
			if d := time.Duration(next.StartNS - prev.EndNS); d <= time.Duration(interval) || d < gap {
				t.Fatalf("cluster %s: incident %d starts %s after %d ended, want ≥ --fault-gap %s", c, next.Incident, d, prev.Incident, gap)
			}
		}
	}
}

// TestTopologyTruncatedFaultIsWritten: a run that stops during a fault
// writes it, flagged truncated, with only the hosts it hit so far.
func TestTopologyTruncatedFaultIsWritten(t *testing.T) {
	topo, err := parseTopology("chain.yaml", []byte("clusters: [eu]\nservices:\n  db: {hosts: 1}\n  api: {hosts: 1, depends_on: [db]}\n  web: {hosts: 1, depends_on: [api]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := syntheticConfig{Interval: time.Second, Seed: 3, Measurement: "svc"}
	tc := topologyConfig{FaultEvery: time.Minute, FaultDuration: 30 * time.Second, PropagationMin: 20 * time.Second, PropagationMax: 20 * time.Second}
	full := generateTopology(t, topo, cfg, tc, 3600)
	if len(full.truth) < 2 {
		t.Fatalf("%d incidents", len(full.truth))
	}
	first := full.truth[0]
	// Stop 10s after the fault's start: only the origin is hit.
	steps := int((first.StartNS-topoStart)/int64(time.Second)) + 11
	cut := generateTopology(t, topo, cfg, tc, steps)
	if len(cut.truth) != 1 {
		t.Fatalf("%d incidents, want the one cut short:\n%s", len(cut.truth), cut.raw)
	}
	got := cut.truth[0]
	if !got.Truncated || !bytes.Contains(cut.raw, []byte(`"truncated":true`)) || bytes.Contains(full.raw, []byte(`"truncated":false`)) {
		t.Fatalf("cut short: %s\nfull: %s", cut.raw, full.raw)
	}
	if got.StartNS != first.StartNS || got.Origin.Service != first.Origin.Service || len(got.Affected) == 0 {
		t.Fatalf("cut short %+v, full run's %+v", got, first)
	}
	for _, a := range got.Affected {
		if a.DelayNS != 0 || a.EndNS != topoStart+int64(steps-1)*int64(time.Second) {
			t.Fatalf("cut short at step %d: affected %+v, want only the origin's hosts, to the last point", steps, a)
		}
	}
}

// TestTopologySameSeedSameOutput: the same seed gives the same points and the
// same faults; another seed other ones.
func TestTopologySameSeedSameOutput(t *testing.T) {
	topo, err := loadTopology("testdata/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tc := topologyConfig{FaultEvery: time.Minute, FaultDuration: 20 * time.Second, PropagationMin: time.Second, PropagationMax: 10 * time.Second}
	digest := func(seed uint64) (string, string) {
		cfg := syntheticConfig{Interval: time.Second, Seed: seed, Measurement: "svc"}
		run := generateTopology(t, topo, cfg, tc, 1800)
		var b strings.Builder
		for _, p := range run.points {
			fmt.Fprintf(&b, "%s %d %x %x\n", point.AppendSeriesKey(nil, &p), p.Time, math.Float64bits(p.Fields[0].Value), math.Float64bits(p.Fields[1].Value))
		}
		if len(run.truth) == 0 {
			t.Fatalf("seed %d: no faults", seed)
		}
		return b.String(), string(run.raw)
	}
	p1, t1 := digest(5)
	p2, t2 := digest(5)
	p3, t3 := digest(6)
	if p1 != p2 || t1 != t2 {
		t.Fatalf("seed 5 twice: points equal %v, ground truth equal %v", p1 == p2, t1 == t2)
	}
	if p1 == p3 || t1 == t3 {
		t.Fatalf("seeds 5 and 6: points equal %v, ground truth equal %v", p1 == p3, t1 == t3)
	}
}
