package dashboards

// incidentsMeasurement is where the analyzer writes incident events: one
// point per event at its updated_at; tags id, state (open, resolved,
// merged) and severity; fields version, alerts, firing, origin (the rank-1
// origin's labels as k=v,k=v sorted by key, "" if none), lead_seconds,
// located, summary and started_at.
const incidentsMeasurement = "metricpipe_incidents"

// Incident queries. Every change to an incident writes it whole with its
// version + 1, so its latest event is the incident.
const (
	// incidentsQuery keeps, per incident id, the latest event of the range;
	// the version breaks ties between events written in the same instant.
	incidentsQuery = fromRange + `  |> filter(fn: (r) => r._measurement == "` + incidentsMeasurement + `")
  |> filter(fn: (r) => r._field == "version" or r._field == "alerts" or r._field == "firing" or r._field == "origin"
      or r._field == "lead_seconds" or r._field == "located" or r._field == "summary")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group(columns: ["id"])
  |> sort(columns: ["_time", "version"])
  |> last(column: "_time")
  |> group()
  |> keep(columns: ["_time", "state", "severity", "alerts", "firing", "origin", "lead_seconds", "located", "summary", "id"])
  |> sort(columns: ["_time"], desc: true)`

	// incidentOpeningsQuery returns the first event of every incident that
	// opened within the range (version 1), with the columns the annotation
	// maps: _time, text (the summary and the likely origin) and tags.
	incidentOpeningsQuery = fromRange + `  |> filter(fn: (r) => r._measurement == "` + incidentsMeasurement + `")
  |> filter(fn: (r) => r._field == "version" or r._field == "summary" or r._field == "origin")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> filter(fn: (r) => r.version == 1)
  |> map(fn: (r) => ({_time: r._time,
      text: if r.origin == "" then r.summary else r.summary + " (origin " + r.origin + ")",
      tags: "incident," + r.severity + "," + r.id}))
  |> group()`
)

// incidentsTable lists the latest event of every incident of the range,
// newest first.
func incidentsTable() panel {
	p := table("Incidents",
		"The latest event of every incident of the range, newest first: alerts that started close together and share a host, "+
			"service or cluster, with the likely origin (rank 1), how long its anomaly led the others' and whether that located the fault.",
		fluxTarget("A", incidentsQuery))
	p.FieldConfig.Overrides = []override{
		colorText("severity", "critical", "red", "warning", "orange", "info", "blue"),
		colorText("state", "open", "red", "resolved", "green", "merged", "blue"),
		byName("summary", prop("custom.width", 420)),
		byName("lead_seconds", prop("unit", "s"), prop("decimals", 1)),
	}
	p.Transformations = []transformation{organize(
		[]string{"_time", "state", "severity", "alerts", "firing", "origin", "lead_seconds", "located", "summary", "id"},
		map[string]string{"_time": "time"})}
	return p
}

// incidentAnnotation marks each incident's opening on every time series.
func incidentAnnotation() annotation {
	return annotation{
		Name: "Incidents", Datasource: influxDS, Enable: true, IconColor: "purple",
		Target: fluxTarget("Anno", incidentOpeningsQuery),
		Mappings: map[string]mapping{
			"time": fieldMapping("_time"),
			"text": fieldMapping("text"),
			"tags": fieldMapping("tags"),
		},
	}
}
