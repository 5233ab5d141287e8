package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/service"
)

// topologyConfig is the --topology mode of `producer synthetic`: the file
// and how its faults come and spread, all in event time.
type topologyConfig struct {
	File           string
	FaultEvery     time.Duration // mean gap between a fault's end and the next one's start in a cluster; 0: no faults
	FaultGap       time.Duration // least such gap; 0: 2×PropagationMax + FaultDuration
	FaultDuration  time.Duration // how long a hit host stays degraded, ±30%
	PropagationMin time.Duration // bounds of one dependency edge's delay
	PropagationMax time.Duration
}

// topologyFlagNames are the flags that mean nothing without --topology.
var topologyFlagNames = [...]string{"fault-every", "fault-gap", "fault-duration", "propagation-min", "propagation-max"}

func topologyFlags() []cli.Flag {
	const cat = "Topology"
	env := service.EnvVars
	return []cli.Flag{
		&cli.StringFlag{Name: "topology", Usage: "YAML file of clusters and services (clusters: [eu, us]; services: {db: {hosts: 2}, api: {hosts: 3, depends_on: [db]}}): one series per host <service>-<cluster>-<i> " +
			"(tags cluster, service, host; fields latency_ms and errors) with faults that spread from a host or a service to its dependents; " +
			"--ground-truth gets one JSON line per fault; --series, --shapes and --anomaly-rate are refused with it", EnvVars: env("topology"), Category: cat},
		&cli.DurationFlag{Name: "fault-every", Value: 10 * time.Minute, Usage: "with --topology: mean event time from a fault's end to the next one's start in a cluster (exponential, at least --fault-gap; 0: no faults)", EnvVars: env("fault-every"), Category: cat},
		&cli.DurationFlag{Name: "fault-gap", Usage: "with --topology: least event time from a fault's end to the next one's start in a cluster (0: 2 × --propagation-max + --fault-duration)", EnvVars: env("fault-gap"), Category: cat},
		&cli.DurationFlag{Name: "fault-duration", Value: 3 * time.Minute, Usage: "with --topology: how long every host a fault hits stays degraded from its onset (±30%, drawn per fault)", EnvVars: env("fault-duration"), Category: cat},
		&cli.DurationFlag{Name: "propagation-min", Value: 5 * time.Second, Usage: "with --topology: least event time a fault takes to reach a service from one it depends on", EnvVars: env("propagation-min"), Category: cat},
		&cli.DurationFlag{Name: "propagation-max", Value: 2 * time.Minute, Usage: "with --topology: most event time a fault takes to reach a service from one it depends on (uniform per edge and fault)", EnvVars: env("propagation-max"), Category: cat},
	}
}

// topologyConfigFromCLI reads topologyFlags; its error, to be reported with
// Validate's, names the flags that do not go with the mode chosen.
func topologyConfigFromCLI(c *cli.Context) (topologyConfig, error) {
	cfg := topologyConfig{
		File:           c.String("topology"),
		FaultEvery:     c.Duration("fault-every"),
		FaultGap:       c.Duration("fault-gap"),
		FaultDuration:  c.Duration("fault-duration"),
		PropagationMin: c.Duration("propagation-min"),
		PropagationMax: c.Duration("propagation-max"),
	}
	var errs []error
	if cfg.File == "" {
		for _, f := range topologyFlagNames {
			if c.IsSet(f) {
				errs = append(errs, fmt.Errorf("--%s: only with --topology", f))
			}
		}
	} else {
		// The topology makes the series: refused rather than ignored, so a
		// command line that says otherwise is not silently something else.
		for _, f := range [...]string{"series", "shapes", "anomaly-rate"} {
			if c.IsSet(f) {
				errs = append(errs, fmt.Errorf("--%s: not with --topology, whose hosts are the series", f))
			}
		}
	}
	return cfg, errors.Join(errs...)
}

// Validate checks the fault settings when File is set.
func (c topologyConfig) Validate() error {
	if c.File == "" {
		return nil
	}
	var errs []error
	if c.FaultEvery < 0 {
		errs = append(errs, fmt.Errorf("--fault-every %s: want ≥ 0", c.FaultEvery))
	}
	if c.FaultGap < 0 {
		errs = append(errs, fmt.Errorf("--fault-gap %s: want ≥ 0 (0: 2 × --propagation-max + --fault-duration)", c.FaultGap))
	}
	if c.FaultDuration <= 0 {
		errs = append(errs, fmt.Errorf("--fault-duration %s: want > 0", c.FaultDuration))
	}
	if c.PropagationMin < 0 {
		errs = append(errs, fmt.Errorf("--propagation-min %s: want ≥ 0", c.PropagationMin))
	}
	if c.PropagationMax < c.PropagationMin {
		errs = append(errs, fmt.Errorf("--propagation-max %s: want ≥ --propagation-min %s", c.PropagationMax, c.PropagationMin))
	}
	return errors.Join(errs...)
}

// gap returns the least event time between a fault's end and the next
// one's start in a cluster.
func (c topologyConfig) gap() time.Duration {
	if c.FaultGap > 0 {
		return c.FaultGap
	}
	return 2*c.PropagationMax + c.FaultDuration
}

// incident is one ground-truth line of --topology mode: a fault, its
// origin and every host it hit. Times are event times; a host's window
// [OnsetNS, EndNS] holds exactly its degraded points.
type incident struct {
	Incident  int            `json:"incident"` // numbered from 1 in start order over all clusters
	Cluster   string         `json:"cluster"`
	Origin    incidentOrigin `json:"origin"`
	Scope     string         `json:"scope"` // "host" or "service"
	Start     string         `json:"start"` // RFC3339Nano of StartNS
	StartNS   int64          `json:"start_ns"`
	End       string         `json:"end"`    // RFC3339Nano of EndNS
	EndNS     int64          `json:"end_ns"` // the last degraded point of any host
	Affected  []affectedHost `json:"affected"`
	Truncated bool           `json:"truncated,omitempty"` // the run stopped during the fault
}

type incidentOrigin struct {
	Cluster string `json:"cluster"`
	Service string `json:"service"`
	Host    string `json:"host,omitempty"` // host scope only
}

// affectedHost is one host a fault hit: origin hosts first (delay 0), then
// dependents by delay.
type affectedHost struct {
	Cluster string `json:"cluster"`
	Service string `json:"service"`
	Host    string `json:"host"`
	OnsetNS int64  `json:"onset_ns"` // its first degraded point
	EndNS   int64  `json:"end_ns"`   // its last degraded point
	DelayNS int64  `json:"delay_ns"` // propagation delay from the start: OnsetNS is the first point at or after StartNS+DelayNS
}

// addIncident writes one incident line and flushes it, so that a reader
// sees a fault as soon as it ended.
func (g *groundTruth) addIncident(in incident) {
	b, err := json.Marshal(in)
	if err == nil {
		b = append(b, '\n')
		_, err = g.w.Write(b)
	}
	g.err = errors.Join(g.err, err, g.w.Flush())
	g.n++
}

// topologyGenerator produces the series of a topology's hosts, all
// advancing together one --interval per step, and the faults that spread
// along its dependencies. Reproducible from the seed: normal values come
// from one stream, each cluster's faults from a stream of its own, so
// clusters' faults are independent of one another.
type topologyGenerator struct {
	rng         *rand.Rand
	cfg         topologyConfig
	measurement string
	interval    int64
	start       int64 // event time of step 0; fault times are relative to it
	onIncident  func(incident)

	topo       *topology
	dependents [][]int // service -> the services that depend on it, in file order
	hosts      []topoHost
	clusters   []faultCluster
	incidents  int
	step       int64
	turn       int
	fields     [2]point.Field
}

type topoHost struct {
	name             string
	cluster, service int
	tags             []point.Tag
	base             float64  // latency baseline, ms
	hit              *hostHit // the fault's effect on the host, or nil
}

type faultCluster struct {
	rng      *rand.Rand
	next     int64 // relative event time the next fault starts at or after
	fault    *topFault
	services [][]int // service -> its hosts here
	first    int     // its first host in topologyGenerator.hosts
	n        int     // its hosts
}

// topFault is a fault under way.
type topFault struct {
	in   incident // Affected not yet filled
	t0   int64    // relative
	end  int64    // relative: when the last hit host recovers
	hits []hostHit
}

// hostHit degrades a host for from ≤ t < to (relative event times).
type hostHit struct {
	host        int
	from, to    int64
	delay       int64
	factor, add float64
	onset, last int64 // relative times of the first and last degraded points; onset -1: none yet
}

func newTopologyGenerator(cfg syntheticConfig, tc topologyConfig, topo *topology) *topologyGenerator {
	g := &topologyGenerator{
		rng:         rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		cfg:         tc,
		measurement: cfg.Measurement,
		interval:    int64(cfg.Interval),
		start:       time.Now().Truncate(cfg.Interval).UnixNano(),
		onIncident:  func(incident) {},
		topo:        topo,
		dependents:  make([][]int, len(topo.Services)),
	}
	for i, s := range topo.Services {
		for _, d := range s.DependsOn {
			j := slices.IndexFunc(topo.Services, func(o topoService) bool { return o.Name == d })
			g.dependents[j] = append(g.dependents[j], i)
		}
	}
	for ci, c := range topo.Clusters {
		fc := faultCluster{
			rng:      rand.New(rand.NewPCG(cfg.Seed^0x5851f42d4c957f2d, uint64(ci)+1)),
			services: make([][]int, len(topo.Services)),
			first:    len(g.hosts),
		}
		for si, s := range topo.Services {
			for i := range s.Hosts {
				name := fmt.Sprintf("%s-%s-%d", s.Name, c, i+1)
				fc.services[si] = append(fc.services[si], len(g.hosts))
				g.hosts = append(g.hosts, topoHost{
					name: name, cluster: ci, service: si,
					tags: []point.Tag{{Key: "cluster", Value: c}, {Key: "host", Value: name}, {Key: "service", Value: s.Name}},
					base: 20 + 40*g.rng.Float64(),
				})
			}
		}
		fc.n = len(g.hosts) - fc.first
		fc.next = fc.gap(tc)
		g.clusters = append(g.clusters, fc)
	}
	return g
}

// gap draws the event time from a fault's end (or the run's start) to the
// next fault's start.
func (c *faultCluster) gap(tc topologyConfig) int64 {
	if tc.FaultEvery <= 0 {
		return -1
	}
	return max(int64(c.rng.ExpFloat64()*float64(tc.FaultEvery)), int64(tc.gap()))
}

// next fills p with the next point; p's slices are reused between calls.
// Hosts take turns, so all advance one step together.
func (g *topologyGenerator) next(p *point.Point) {
	t := g.step * g.interval
	if g.turn == 0 {
		for ci := range g.clusters {
			g.advance(ci, t)
		}
	}
	h := &g.hosts[g.turn]
	lat := max(0, h.base*(1+0.05*g.rng.NormFloat64()))
	errs := float64(poisson(g.rng, 0.5))
	if hit := h.hit; hit != nil && hit.from <= t && t < hit.to {
		lat *= hit.factor
		errs += hit.add
		if hit.onset < 0 {
			hit.onset = t
		}
		hit.last = t
	}
	p.Measurement = g.measurement
	p.Tags = h.tags
	p.Time = g.start + t
	g.fields = [2]point.Field{{Key: "errors", Value: errs}, {Key: "latency_ms", Value: lat}}
	p.Fields = g.fields[:]
	if g.turn++; g.turn == len(g.hosts) {
		g.turn = 0
		g.step++
	}
}

// advance ends cluster ci's fault once every host it hit recovered, and
// starts the next when due, at step time t.
func (g *topologyGenerator) advance(ci int, t int64) {
	c := &g.clusters[ci]
	if c.fault != nil && t >= c.fault.end {
		g.emit(c.fault, false)
		c.fault = nil
		if gap := c.gap(g.cfg); gap >= 0 {
			c.next = t + gap
		}
	}
	if c.fault == nil && c.next >= 0 && t >= c.next {
		c.fault = g.startFault(ci, t)
	}
}

// startFault starts a fault in cluster ci at t: its origin, a host or a
// service (one chance in two, then uniformly), and when each service that
// depends on the origin's, directly or not, is hit: along the fastest path
// of per-edge delays drawn for this fault.
func (g *topologyGenerator) startFault(ci int, t int64) *topFault {
	c := &g.clusters[ci]
	r := c.rng
	dur := int64(float64(g.cfg.FaultDuration) * (0.7 + 0.6*r.Float64()))
	g.incidents++
	f := &topFault{t0: t, in: incident{Incident: g.incidents, Cluster: g.topo.Clusters[ci], Scope: "service"}}
	var origin []int
	if r.IntN(2) == 0 {
		h := c.first + r.IntN(c.n)
		origin = []int{h}
		f.in.Scope = "host"
		f.in.Origin.Host = g.hosts[h].name
	} else {
		origin = c.services[r.IntN(len(c.services))]
	}
	osvc := g.hosts[origin[0]].service
	f.in.Origin.Cluster, f.in.Origin.Service = f.in.Cluster, g.topo.Services[osvc].Name

	// Every edge's delay is drawn, in file order, whether the fault takes
	// it or not: the stream stays in step whatever the origin.
	lo, hi := int64(g.cfg.PropagationMin), int64(g.cfg.PropagationMax)
	delays := make([][]int64, len(g.topo.Services)) // [dependency][k]: to dependents[dependency][k]
	for s := range delays {
		for range g.dependents[s] {
			delays[s] = append(delays[s], lo+r.Int64N(hi-lo+1))
		}
	}
	// Dijkstra over a handful of services: quadratic is plenty.
	dist := make([]int64, len(g.topo.Services))
	for i := range dist {
		dist[i] = -1
	}
	dist[osvc] = 0
	settled := make([]bool, len(dist))
	var order []int // services hit, by delay
	for {
		u := -1
		for i, d := range dist {
			if d >= 0 && !settled[i] && (u < 0 || d < dist[u]) {
				u = i
			}
		}
		if u < 0 {
			break
		}
		settled[u] = true
		order = append(order, u)
		for k, v := range g.dependents[u] {
			if d := dist[u] + delays[u][k]; dist[v] < 0 || d < dist[v] {
				dist[v] = d
			}
		}
	}
	hit := func(h int, delay int64, factor, add float64) {
		f.hits = append(f.hits, hostHit{host: h, from: t + delay, to: t + delay + dur, delay: delay, factor: factor, add: add, onset: -1})
		f.end = max(f.end, t+delay+dur)
	}
	for _, h := range origin {
		hit(h, 0, 5+5*r.Float64(), float64(20+r.IntN(31)))
	}
	for _, s := range order[1:] {
		for _, h := range c.services[s] {
			hit(h, dist[s], 3+3*r.Float64(), float64(10+r.IntN(21)))
		}
	}
	for i := range f.hits {
		g.hosts[f.hits[i].host].hit = &f.hits[i]
	}
	return f
}

// emit writes f's ground truth: the hosts it hit so far, and clears their
// hits. A fault cut short before any point was degraded is not written.
func (g *topologyGenerator) emit(f *topFault, truncated bool) {
	in := f.in
	in.Truncated = truncated
	in.StartNS = g.start + f.t0
	in.EndNS = in.StartNS
	for i := range f.hits {
		hit := &f.hits[i]
		h := &g.hosts[hit.host]
		h.hit = nil
		if hit.onset < 0 {
			continue
		}
		in.Affected = append(in.Affected, affectedHost{
			Cluster: in.Cluster, Service: g.topo.Services[h.service].Name, Host: h.name,
			OnsetNS: g.start + hit.onset, EndNS: g.start + hit.last, DelayNS: hit.delay,
		})
		in.EndNS = max(in.EndNS, g.start+hit.last)
	}
	if len(in.Affected) == 0 {
		return
	}
	in.Start = time.Unix(0, in.StartNS).UTC().Format(time.RFC3339Nano)
	in.End = time.Unix(0, in.EndNS).UTC().Format(time.RFC3339Nano)
	g.onIncident(in)
}

// finish writes the faults under way, flagged truncated: call it once the
// run stopped.
func (g *topologyGenerator) finish() {
	for ci := range g.clusters {
		if c := &g.clusters[ci]; c.fault != nil {
			g.emit(c.fault, true)
			c.fault = nil
		}
	}
}
