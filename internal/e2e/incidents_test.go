package e2e

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/incident"
)

// topologyFault is one line of the producer's topology ground truth.
type topologyFault struct {
	Incident  int               `json:"incident"`
	Origin    map[string]string `json:"origin"`
	Scope     string            `json:"scope"` // host or service
	Truncated bool              `json:"truncated"`
	Affected  []affectedHost    `json:"affected"`
}

type affectedHost struct {
	Host    string `json:"host"`
	OnsetNS int64  `json:"onset_ns"`
	EndNS   int64  `json:"end_ns"`
}

// TestIncidentsLocateTheOrigin: faults injected on a host or a whole
// service propagate to the services that depend on it, seconds to a
// minute later; the analyzer's alerts on every affected host must form one
// incident per fault (grouping precision and recall ≥ 0.9) whose
// rank-1 origin is the faulty host, or a host of the faulty service, in ≥
// 90 % of them, over at least 50 faults (issue 16's done-when).
func TestIncidentsLocateTheOrigin(t *testing.T) {
	const (
		interval   = 10 * time.Second
		steps      = 3000 // 8.3 hours of event time
		minFaults  = 50
		minQuality = 0.9
		// An alert belongs to a fault when it starts on an affected host
		// between its onset and its end, with slack for the threshold's
		// first crossing.
		slack = 3 * interval
	)
	b := newBed(t, "incidents")
	dir := t.TempDir()
	topo := filepath.Join(dir, "topology.yaml")
	writeFile(t, topo, `clusters: [eu, us]
services:
  db:     {hosts: 2}
  cache:  {hosts: 1}
  api:    {hosts: 3, depends_on: [db, cache]}
  web:    {hosts: 2, depends_on: [api]}
  worker: {hosts: 2, depends_on: [db]}
`)
	hosts := 2 * (2 + 1 + 3 + 2 + 2)
	rulesFile := filepath.Join(dir, "rules.yaml")
	// Errors are a few a minute when well (Poisson around 0.5 per point)
	// and 10 or more on a host a fault reached.
	writeFile(t, rulesFile, `rules:
  - name: service_errors
    match: {measurement: svc, field: errors}
    threshold: {above: 8}
    severity: critical
    summary: '{{ .Labels.host }}: {{ .Value }} errors'
dependencies:
  api: [db, cache]
  web: [api]
  worker: [db]
`)
	truthFile := filepath.Join(dir, "truth.jsonl")
	p := testbed.Start(t, "producer", b.bins["producer"], "synthetic", "--kafka-brokers", b.brokers, "--topic", b.topic,
		"--count", fmt.Sprint(hosts*steps), "--rate", "0", "--http-addr", testbed.FreeAddr(t), "--log-format", "console", "--topology", topo, "--measurement", "svc", "--interval", interval.String(),
		"--fault-every", "4m", "--fault-gap", "8m", "--fault-duration", "2m", "--propagation-min", "5s", "--propagation-max", "1m",
		"--ground-truth", truthFile, "--seed", "16")
	if err := p.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v\n%s", err, p.Output())
	}
	a := b.analyzer("a", rulesFile, testbed.FreeAddr(t), "--incidents-topic", b.topic+"-incidents", "--write-forecasts=false")
	b.waitCommitted(b.topic+"-a", 3*time.Minute)
	b.waitCommittedOn(b.topic+"-alerts", b.topic+"-a-incidents", 2*time.Minute)
	stopGracefully(t, a)

	faults := readJSONLines[topologyFault](t, truthFile)
	alerts := b.alertEvents()
	incidents := b.incidentEvents(b.topic + "-incidents")

	// Which fault each alert belongs to.
	faultOf := map[string]int{} // fingerprint@start → index in faults
	noise := 0
	for _, e := range alerts {
		if e.State != alert.Firing {
			continue
		}
		at := e.StartsAt.UnixNano()
		i := slices.IndexFunc(faults, func(f topologyFault) bool {
			return slices.ContainsFunc(f.Affected, func(h affectedHost) bool {
				return h.Host == e.Labels["host"] && at >= h.OnsetNS-int64(slack) && at <= h.EndNS+int64(slack)
			})
		})
		if i < 0 {
			noise++
			t.Logf("alert outside every fault: %s at %s", e.Series, e.StartsAt.Format(time.RFC3339))
			continue
		}
		faultOf[alertID(e.Fingerprint, e.StartsAt)] = i
	}

	// The incidents as they ended: the latest event of each, merged ones
	// dropped.
	latest := map[string]incident.Event{}
	for _, e := range incidents {
		if old, ok := latest[e.ID]; !ok || e.Version > old.Version {
			latest[e.ID] = e
		}
	}
	judged := map[int]bool{} // faults with alerts, not cut short
	incidentsOf := map[int]map[string]bool{}
	pure, detected := 0, 0
	for _, inc := range latest {
		if inc.State == incident.Merged {
			continue
		}
		if inc.AlertCount > len(inc.Alerts) {
			t.Fatalf("incident %s lists %d of %d alerts", inc.ID, len(inc.Alerts), inc.AlertCount)
		}
		of := map[int]bool{}
		for _, m := range inc.Alerts {
			if i, ok := faultOf[alertID(m.Fingerprint, m.StartsAt)]; ok {
				of[i] = true
			} else {
				of[-1] = true
			}
		}
		if of[-1] || slices.ContainsFunc(slices.Collect(maps.Keys(of)), func(i int) bool { return faults[i].Truncated }) {
			continue // noise, or a fault the run cut short: not judged
		}
		detected++
		if len(of) == 1 {
			pure++
		}
		for i := range of {
			judged[i] = true
			if incidentsOf[i] == nil {
				incidentsOf[i] = map[string]bool{}
			}
			incidentsOf[i][inc.ID] = true
		}
	}
	recovered, located := 0, 0
	for i := range judged {
		if len(incidentsOf[i]) != 1 {
			t.Logf("fault %d (%s %v) split over %d incidents", faults[i].Incident, faults[i].Scope, faults[i].Origin, len(incidentsOf[i]))
			continue
		}
		recovered++
		var id string
		for id = range incidentsOf[i] {
		}
		inc := latest[id]
		f := faults[i]
		if len(inc.Origins) > 0 && originMatches(inc.Origins[0].Labels, f) {
			located++
		} else {
			t.Logf("fault %d (%s %v): rank 1 is %v; %s", f.Incident, f.Scope, f.Origin, inc.Origins[0].Labels, inc.Summary)
		}
	}
	precision, recall := float64(pure)/float64(max(detected, 1)), float64(recovered)/float64(max(len(judged), 1))
	originFirst := float64(located) / float64(max(recovered, 1))
	t.Logf("%d faults injected, %d with alerts judged; %d alerts outside faults; %d incidents judged: grouping precision %.3f (%d/%d), recall %.3f (%d/%d); origin ranked first in %.3f (%d/%d)",
		len(faults), len(judged), noise, detected, precision, pure, detected, recall, recovered, len(judged), originFirst, located, recovered)
	if len(judged) < minFaults {
		t.Fatalf("%d faults judged, want ≥ %d", len(judged), minFaults)
	}
	if precision < minQuality || recall < minQuality || originFirst < minQuality {
		t.Errorf("grouping precision %.3f, recall %.3f, origin first %.3f: want each ≥ %.1f", precision, recall, originFirst, minQuality)
	}
	// InfluxDB has them too: one point per id, state and time (a later
	// version at the same time overwrites an earlier one).
	points := map[string]bool{}
	for _, e := range incidents {
		points[fmt.Sprint(e.ID, e.State, e.UpdatedAt.UnixNano())] = true
	}
	if n, err := b.count("metricpipe_incidents", "alerts"); err != nil || n != int64(len(points)) {
		t.Errorf("InfluxDB holds %d incident points (%v), want %d for the %d events published", n, err, len(points), len(incidents))
	}
}

// originMatches: a host fault's origin is its host; a service fault's, any
// host of the service in its cluster.
func originMatches(labels map[string]string, f topologyFault) bool {
	if labels["cluster"] != f.Origin["cluster"] {
		return false
	}
	if f.Scope == "host" {
		return labels["host"] == f.Origin["host"]
	}
	return strings.HasPrefix(labels["host"], f.Origin["service"]+"-"+f.Origin["cluster"]+"-")
}

func alertID(fingerprint string, start time.Time) string {
	return fmt.Sprintf("%s@%d", fingerprint, start.UnixNano())
}

// incidentEvents reads every event on the incidents topic with `analyzer
// alerts tail --incidents --json`.
func (b *bed) incidentEvents(topic string) []incident.Event {
	b.t.Helper()
	return tailEvents(b, incident.Decode, "--incidents", "--incidents-topic", topic)
}
