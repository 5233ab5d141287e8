package dashboards

// The Flux below runs on InfluxDB 1.8 (Flux 0.65) and 2.x alike: only
// from, range, filter, keep, group, distinct, sort, limit, last, pivot, map
// (with `with` and if/then/else) and aggregateWindow with mean, min, max and
// count; no imports (1.8 has no influxdata/influxdb/schema). Grafana replaces
// v.timeRangeStart, v.timeRangeStop and v.windowPeriod, and its macro
// expansion matches any `<word>.<macro name>`: never name a column bucket,
// organization, windowPeriod or the like.

// alertsMeasurement is the analyzer's default --alerts-measurement.
const alertsMeasurement = "metricpipe_alerts"

// fromRange starts every Flux query: the picked bucket over the dashboard's
// time range.
const fromRange = `from(bucket: "${bucket}")
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
`

// pickedSeries narrows to the series the variables pick. A host with more
// than one series of the measurement is shown as their mean.
const pickedSeries = fromRange + `  |> filter(fn: (r) => r._measurement == "${measurement}" and r.host == "${host}")
`

// derivedSuffixes are the fields the consumer and the analyzer derive from a
// source field f (f_sma, f_p95, f_forecast, …): the field picker hides them.
const derivedSuffixes = "sma|ema|wma|count|mean|min|max|last|p95|forecast|lower|upper|anomaly_score"

// Variable queries. Each keeps one column, then group() and distinct(): the
// shape InfluxDB 2.x answers from its index. On InfluxDB 1.8 a filter on
// _measurement before keep(columns: ["_measurement"]) returns no rows (its
// tag-values push-down), so the measurement list filters after distinct.
const (
	measurementsQuery = fromRange + `  |> keep(columns: ["_measurement"])
  |> group()
  |> distinct(column: "_measurement")
  |> filter(fn: (r) => r._value != "` + alertsMeasurement + `" and r._value != "` + incidentsMeasurement + `")`

	hostsQuery = fromRange + `  |> filter(fn: (r) => r._measurement == "${measurement}")
  |> keep(columns: ["host"])
  |> group()
  |> distinct(column: "host")`

	fieldsQuery = pickedSeries + `  |> filter(fn: (r) => r._field !~ /_(` + derivedSuffixes + `)$/)
  |> keep(columns: ["_field"])
  |> group()
  |> distinct(column: "_field")`
)

// Series panels. Fields are renamed to fixed series names (raw, SMA, lower,
// …) so the panel overrides, such as the fill between lower and upper, can
// name them; grouping by _measurement and _field drops the tags, which
// Grafana would otherwise add to every series name.
const (
	forecastQuery = pickedSeries + `  |> filter(fn: (r) => r._field == "${field}" or r._field == "${field}_sma" or r._field == "${field}_ema"
      or r._field == "${field}_wma" or r._field == "${field}_forecast" or r._field == "${field}_lower" or r._field == "${field}_upper")
  |> map(fn: (r) => ({r with _field:
      if r._field == "${field}_sma" then "SMA"
      else if r._field == "${field}_ema" then "EMA"
      else if r._field == "${field}_wma" then "WMA"
      else if r._field == "${field}_forecast" then "forecast"
      else if r._field == "${field}_lower" then "lower"
      else if r._field == "${field}_upper" then "upper"
      else "raw"}))
  |> group(columns: ["_measurement", "_field"])
  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)`

	// The highest score in each window, so a one-point spike stays visible
	// on a long range.
	scoreQuery = pickedSeries + `  |> filter(fn: (r) => r._field == "${field}_anomaly_score")
  |> map(fn: (r) => ({r with _field: "${host}"}))
  |> group(columns: ["_measurement", "_field"])
  |> aggregateWindow(every: v.windowPeriod, fn: max, createEmpty: false)`

	scoreAllQuery = fromRange + `  |> filter(fn: (r) => r._measurement == "${measurement}" and r._field == "${field}_anomaly_score")
  |> map(fn: (r) => ({r with _field: "max of all series"}))
  |> group(columns: ["_measurement", "_field"])
  |> aggregateWindow(every: v.windowPeriod, fn: max, createEmpty: false)`

	// Rollups: one query per aggregate so that a long range keeps the
	// lowest minimum and the highest maximum of the windows it merges.
	rollupMeanQuery = pickedSeries + `  |> filter(fn: (r) => r._field == "${field}_mean" or r._field == "${field}_p95")
  |> map(fn: (r) => ({r with _field: if r._field == "${field}_p95" then "p95" else "mean"}))
  |> group(columns: ["_measurement", "_field"])
  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)`

	rollupMinQuery = pickedSeries + `  |> filter(fn: (r) => r._field == "${field}_min")
  |> map(fn: (r) => ({r with _field: "min"}))
  |> group(columns: ["_measurement", "_field"])
  |> aggregateWindow(every: v.windowPeriod, fn: min, createEmpty: false)`

	rollupMaxQuery = pickedSeries + `  |> filter(fn: (r) => r._field == "${field}_max")
  |> map(fn: (r) => ({r with _field: "max"}))
  |> group(columns: ["_measurement", "_field"])
  |> aggregateWindow(every: v.windowPeriod, fn: max, createEmpty: false)`
)

// Alert queries. An alert event is one point of the alerts measurement:
// tags fingerprint, rule, severity, state; fields value, threshold,
// expected, score, firing, series, summary.
const (
	// firingQuery keeps, per fingerprint, the latest event up to the end of
	// the range, and shows it when it is a firing one. It looks back
	// ${alert_lookback} rather than over the dashboard's range, since an
	// alert may have fired long before; the analyzer's --repeat-interval
	// re-announces firing alerts, which keeps them inside a shorter lookback.
	firingQuery = `from(bucket: "${bucket}")
  |> range(start: -${alert_lookback}, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "` + alertsMeasurement + `")
  |> filter(fn: (r) => r._field == "value" or r._field == "threshold" or r._field == "expected"
      or r._field == "score" or r._field == "series" or r._field == "summary")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group(columns: ["fingerprint"])
  |> sort(columns: ["_time"])
  |> last(column: "_time")
  |> filter(fn: (r) => r.state == "firing")
  |> group()
  |> keep(columns: ["_time", "severity", "rule", "series", "summary", "value", "threshold", "expected", "score", "fingerprint"])
  |> sort(columns: ["_time"], desc: true)`

	// eventsQuery lists the latest alert events of the range, newest first.
	eventsQuery = fromRange + `  |> filter(fn: (r) => r._measurement == "` + alertsMeasurement + `")
  |> filter(fn: (r) => r._field == "value" or r._field == "series" or r._field == "summary")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> keep(columns: ["_time", "state", "severity", "rule", "series", "summary", "value"])
  |> sort(columns: ["_time"], desc: true)
  |> limit(n: 200)`

	// eventRateQuery counts firing events per window and severity.
	eventRateQuery = fromRange + `  |> filter(fn: (r) => r._measurement == "` + alertsMeasurement + `" and r._field == "value" and r.state == "firing")
  |> group(columns: ["_measurement", "_field", "severity"])
  |> aggregateWindow(every: v.windowPeriod, fn: count, createEmpty: false)`
)

// alertAnnotationQuery returns the events in state of the picked series
// (its `series` field is "<measurement>,<tags> <field>") with the columns
// the annotation maps: _time, summary (the text) and tags.
func alertAnnotationQuery(state string) string {
	return fromRange + `  |> filter(fn: (r) => r._measurement == "` + alertsMeasurement + `" and r.state == "` + state + `")
  |> filter(fn: (r) => r._field == "series" or r._field == "summary")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> filter(fn: (r) => r.series =~ /^${measurement:regex},([^ ]*,)?host=${host:regex}(,[^ ]*)? ${field:regex}$/)
  |> map(fn: (r) => ({_time: r._time, summary: r.summary, tags: r.state + "," + r.severity + "," + r.rule}))
  |> group()`
}

func alertAnnotation(name, state, color string) annotation {
	return annotation{
		Name: name, Datasource: influxDS, Enable: true, IconColor: color,
		Target: fluxTarget("Anno", alertAnnotationQuery(state)),
		Mappings: map[string]mapping{
			"time": fieldMapping("_time"),
			"text": fieldMapping("summary"),
			"tags": fieldMapping("tags"),
		},
	}
}

// PromQL. Rates use $__rate_interval, which Grafana sizes to the scrape
// interval; histograms are summed by le across instances before the
// quantile.
func quantile(q, histogram string) string {
	return `histogram_quantile(` + q + `, sum by (service, le) (rate(` + histogram + `_bucket[$__rate_interval])))`
}

func rate(counter string) string {
	return `sum(rate(` + counter + `[$__rate_interval]))`
}

func metricpipe() dashboard {
	var l layout

	l.row("Series: ${measurement} ${host} ${field}")
	forecast := timeseries("Value, moving averages and forecast",
		"The picked field of the picked series with the consumer's moving averages and the analyzer's one-step forecast; "+
			"the band between lower and upper is the forecast's prediction interval. Each window of the range shows the mean of its points.",
		"short", fluxTarget("A", forecastQuery))
	forecast.FieldConfig.Overrides = []override{
		byName("raw", fixedColor("blue"), prop("custom.lineWidth", 1)),
		byName("SMA", fixedColor("orange")),
		byName("EMA", fixedColor("purple")),
		byName("WMA", fixedColor("yellow")),
		byName("forecast", fixedColor("green"), prop("custom.lineStyle", map[string]any{"fill": "dash", "dash": []int{10, 10}})),
		byName("lower", fixedColor("green"), prop("custom.lineWidth", 0), prop("custom.hideFrom", map[string]any{"legend": true, "tooltip": false, "viz": false})),
		byName("upper", fixedColor("green"), prop("custom.lineWidth", 0), prop("custom.fillBelowTo", "lower"), prop("custom.fillOpacity", 15)),
	}
	l.place(24, 10, forecast)

	score := timeseries("Anomaly score",
		"The analyzer's anomaly score in [0, 1] for the picked series and the highest over all series of the measurement, per window.",
		"short", fluxTarget("A", scoreQuery), fluxTarget("B", scoreAllQuery))
	score.FieldConfig.Defaults["min"] = 0
	score.FieldConfig.Defaults["max"] = 1
	score.FieldConfig.Defaults["thresholds"] = thresholds(step("green", nil), step("orange", 0.9), step("red", 0.99))
	score.FieldConfig.Defaults["custom"].(map[string]any)["thresholdsStyle"] = map[string]any{"mode": "dashed"}
	score.FieldConfig.Overrides = []override{byName("max of all series", fixedColor("red"), prop("custom.lineWidth", 1))}
	l.place(12, 8, score)

	rollups := timeseries("Rollups",
		"The consumer's tumbling-window rollups of the picked field (--rollup, 1m by default), at each window's start: mean, p95 and the min–max range.",
		"short", fluxTarget("A", rollupMeanQuery), fluxTarget("B", rollupMinQuery), fluxTarget("C", rollupMaxQuery))
	rollups.FieldConfig.Overrides = []override{
		byName("mean", fixedColor("blue")),
		byName("p95", fixedColor("orange")),
		byName("min", fixedColor("blue"), prop("custom.lineWidth", 0)),
		byName("max", fixedColor("blue"), prop("custom.lineWidth", 0), prop("custom.fillBelowTo", "min"), prop("custom.fillOpacity", 15)),
	}
	l.place(12, 8, rollups)

	l.row("Alerts")
	firing := table("Firing alerts",
		"Every alert whose latest event, within ${alert_lookback} before the end of the range, is a firing one.",
		fluxTarget("A", firingQuery))
	firing.Transformations = []transformation{organize(
		[]string{"_time", "severity", "rule", "series", "summary", "value", "threshold", "expected", "score", "fingerprint"},
		map[string]string{"_time": "latest event"})}
	l.place(14, 9, firing)

	rateByState := timeseries("Firing events per window", "Alert events in state firing, per window of the range and severity.",
		"short", fluxTarget("A", eventRateQuery))
	rateByState.FieldConfig.Defaults["displayName"] = "${__field.labels.severity}"
	rateByState.FieldConfig.Defaults["custom"].(map[string]any)["drawStyle"] = "bars"
	rateByState.FieldConfig.Defaults["custom"].(map[string]any)["fillOpacity"] = 80
	rateByState.FieldConfig.Defaults["custom"].(map[string]any)["stacking"] = map[string]any{"mode": "normal", "group": "A"}
	rateByState.FieldConfig.Overrides = []override{
		byName("critical", fixedColor("red")),
		byName("warning", fixedColor("orange")),
		byName("info", fixedColor("blue")),
	}
	l.place(10, 9, rateByState)

	events := table("Alert events", "The latest 200 alert events of the range, newest first.", fluxTarget("A", eventsQuery))
	events.Transformations = []transformation{organize(
		[]string{"_time", "state", "severity", "rule", "series", "summary", "value"}, map[string]string{"_time": "time"})}
	l.place(24, 8, events)
	l.place(24, 8, incidentsTable())

	l.row("Pipeline health")
	l.place(12, 8, timeseries("Points per second by stage",
		"Points the producer had acknowledged by Kafka, the consumer decoded and wrote to InfluxDB (raw and derived), and the analyzer analyzed.",
		"short",
		promTarget("A", rate("metricpipe_producer_points_sent_total"), "producer sent"),
		promTarget("B", rate("metricpipe_consumer_points_in_total"), "consumer in"),
		promTarget("C", rate("metricpipe_consumer_points_written_total"), "consumer written"),
		promTarget("D", rate("metricpipe_consumer_derived_points_written_total"), "consumer derived written"),
		promTarget("E", rate("metricpipe_analyzer_points_total"), "analyzer analyzed")))
	l.place(12, 8, timeseries("Consumer lag by group",
		"Messages behind the end of the topic at the last fetch, summed over the partitions each group consumes.",
		"short",
		promTarget("A", `sum by (group) (metricpipe_kafka_consumer_lag)`, "{{group}}")))
	l.place(8, 8, timeseries("InfluxDB write latency",
		"One write request to InfluxDB, retries included: consumer and analyzer, median and 99th percentile.",
		"s",
		promTarget("A", quantile("0.5", "metricpipe_influx_write_seconds"), "{{service}} p50"),
		promTarget("B", quantile("0.99", "metricpipe_influx_write_seconds"), "{{service}} p99")))
	l.place(8, 8, timeseries("Dead letters per second",
		"Messages the consumer sent to the dead-letter topic, by reason: decode (not a valid point) or rejected (InfluxDB refused it for good).",
		"short",
		promTarget("A", `sum by (reason) (rate(metricpipe_consumer_dead_lettered_total[$__rate_interval]))`, "{{reason}}")))
	alertRate := timeseries("Alert events per second",
		"Alert events the analyzer published, by state and severity.",
		"short",
		promTarget("A", `sum by (state, severity) (rate(metricpipe_analyzer_alerts_total[$__rate_interval]))`, "{{state}} {{severity}}"))
	l.place(8, 8, alertRate)
	l.place(12, 8, timeseries("Retries and failures per second",
		"Anything above zero here is the pipeline working around trouble: InfluxDB write retries by cause (unavailable, throttled, misconfigured: see /readyz for the fix), failed offset commits, points the producer could not deliver or dropped.",
		"short",
		promTarget("A", `sum by (service, cause) (rate(metricpipe_influx_write_retries_total[$__rate_interval]))`, "{{service}} InfluxDB retries ({{cause}})"),
		promTarget("F", `sum by (target) (rate(metricpipe_analyzer_retries_total[$__rate_interval]))`, "analyzer Kafka retries ({{target}})"),
		promTarget("C", `sum by (group) (rate(metricpipe_kafka_commit_errors_total[$__rate_interval]))`, "commit errors ({{group}})"),
		promTarget("D", rate("metricpipe_producer_points_failed_total"), "producer failed"),
		promTarget("E", rate("metricpipe_producer_points_dropped_total"), "producer dropped")))
	l.place(12, 8, timeseries("Series tracked",
		"Series whose moving averages (consumer) and models (analyzer) are kept in memory, bounded by --max-series per partition.",
		"short",
		promTarget("A", `sum(metricpipe_consumer_series_tracked)`, "consumer"),
		promTarget("B", `sum(metricpipe_analyzer_series_tracked)`, "analyzer")))

	return dashboard{
		UID:   "metricpipe",
		Title: "metricpipe",
		Description: "One series at a time: raw values, moving averages, forecast and anomaly score from InfluxDB; " +
			"alerts; and the pipeline's own health from Prometheus.",
		Tags:          []string{"metricpipe"},
		SchemaVersion: 39,
		Version:       1,
		Editable:      true,
		GraphTooltip:  1, // shared crosshair across panels
		Refresh:       "30s",
		Time:          timeRange{From: "now-1h", To: "now"},
		Timezone:      "browser",
		Annotations: annotations{List: []annotation{
			alertAnnotation("Alerts firing", "firing", "red"),
			alertAnnotation("Alerts resolved", "resolved", "green"),
			incidentAnnotation(),
		}},
		Templating: templating{List: []variable{
			customVariable("bucket", "Bucket",
				"InfluxDB 2.x bucket, or database/retention-policy on InfluxDB 1.8 (the consumer's --influx-bucket).",
				"metricpipe", "metricpipe/autogen"),
			fluxVariable("measurement", "Measurement", "", measurementsQuery),
			fluxVariable("host", "Host", "The host tag of the series.", hostsQuery),
			fluxVariable("field", "Field", "Source fields; the derived ones (_sma, _forecast, …) are shown in the panels.", fieldsQuery),
			customVariable("alert_lookback", "Alert lookback",
				"How far before the end of the range the firing-alerts table looks for an alert's latest event.",
				"7d", "1d", "30d"),
		}},
		Panels: l.panels,
	}
}

func timeseries(title, description, unit string, targets ...target) panel {
	ds := targets[0].Datasource
	return panel{
		Type: "timeseries", Title: title, Description: description, Datasource: &ds, Targets: targets,
		FieldConfig: &fieldConfig{
			Defaults: map[string]any{
				"unit": unit,
				"custom": map[string]any{
					"drawStyle":         "line",
					"lineWidth":         1,
					"fillOpacity":       0,
					"showPoints":        "never",
					"spanNulls":         false,
					"axisBorderShow":    false,
					"axisCenteredZero":  false,
					"lineInterpolation": "linear",
				},
				"color": map[string]any{"mode": "palette-classic"},
			},
			Overrides: []override{},
		},
		Options: map[string]any{
			"legend":  map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
			"tooltip": map[string]any{"mode": "multi", "sort": "none"},
		},
	}
}

func table(title, description string, targets ...target) panel {
	ds := targets[0].Datasource
	return panel{
		Type: "table", Title: title, Description: description, Datasource: &ds, Targets: targets,
		FieldConfig: &fieldConfig{
			Defaults: map[string]any{"custom": map[string]any{"align": "auto", "cellOptions": map[string]any{"type": "auto"}}},
			Overrides: []override{
				colorText("severity", "critical", "red", "warning", "orange", "info", "blue"),
				colorText("state", "firing", "red", "resolved", "green"),
				byName("summary", prop("custom.width", 420)),
			},
		},
		Options: map[string]any{
			"showHeader": true,
			"cellHeight": "sm",
			"footer":     map[string]any{"show": false, "reducer": []string{"sum"}, "fields": ""},
		},
	}
}

// colorText colours the cells of a table column by value: pairs of value
// and colour.
func colorText(column string, valueColors ...string) override {
	opts := map[string]any{}
	for i := 0; i+1 < len(valueColors); i += 2 {
		opts[valueColors[i]] = map[string]any{"color": valueColors[i+1], "index": i / 2}
	}
	return byName(column,
		prop("custom.cellOptions", map[string]any{"type": "color-text"}),
		prop("mappings", []any{map[string]any{"type": "value", "options": opts}}))
}

// organize orders a table's columns and renames some.
func organize(order []string, rename map[string]string) transformation {
	index := map[string]int{}
	for i, c := range order {
		index[c] = i
	}
	return transformation{ID: "organize", Options: map[string]any{
		"indexByName":   index,
		"renameByName":  rename,
		"excludeByName": map[string]bool{},
	}}
}

func thresholds(steps ...map[string]any) map[string]any {
	return map[string]any{"mode": "absolute", "steps": steps}
}

func step(color string, value any) map[string]any {
	return map[string]any{"color": color, "value": value}
}
