// Package dashboards is the source of metricpipe's Grafana dashboards.
//
// metricpipe.json, which Grafana's file provider loads from
// /var/lib/grafana/dashboards, is generated from this package: edit the Go
// source, then run
//
//	go test ./deploy/grafana/dashboards -run TestGenerated -update
//
// The queries live here as Go raw strings, which keeps them readable in
// review; the JSON is what Grafana reads. The tests check that the two agree,
// that every datasource, variable and Prometheus metric the dashboard names
// exists, and (against the test bed) that every Flux query parses and returns
// rows on InfluxDB 1.8.
package dashboards

import (
	"bytes"
	"encoding/json"
)

// Datasource uids, as provisioned by deploy/grafana/provisioning/datasources.
const (
	influxUID     = "influxdb"
	prometheusUID = "prometheus"
)

var (
	influxDS     = datasource{Type: "influxdb", UID: influxUID}
	prometheusDS = datasource{Type: "prometheus", UID: prometheusUID}
)

// JSON returns the metricpipe dashboard as Grafana dashboard JSON, indented
// by two spaces and ending in a newline: the bytes of metricpipe.json.
func JSON() ([]byte, error) { return encode(metricpipe()) }

func encode(d dashboard) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// Flux comparisons (<, >) and PromQL stay readable in the file.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// The types below cover the part of Grafana's dashboard model (schema
// version 39) this dashboard uses; free-form panel options stay maps, which
// encoding/json writes with sorted keys.

type dashboard struct {
	UID           string      `json:"uid"`
	Title         string      `json:"title"`
	Description   string      `json:"description"`
	Tags          []string    `json:"tags"`
	SchemaVersion int         `json:"schemaVersion"`
	Version       int         `json:"version"`
	Editable      bool        `json:"editable"`
	GraphTooltip  int         `json:"graphTooltip"`
	LiveNow       bool        `json:"liveNow"`
	Refresh       string      `json:"refresh"`
	Time          timeRange   `json:"time"`
	Timezone      string      `json:"timezone"`
	Annotations   annotations `json:"annotations"`
	Templating    templating  `json:"templating"`
	Panels        []panel     `json:"panels"`
}

type timeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type annotations struct {
	List []annotation `json:"list"`
}

// annotation is a dashboard annotation query. Mappings name the result
// columns Grafana reads the event's time, text and tags from.
type annotation struct {
	Name       string             `json:"name"`
	Datasource datasource         `json:"datasource"`
	Enable     bool               `json:"enable"`
	Hide       bool               `json:"hide"`
	IconColor  string             `json:"iconColor"`
	Target     target             `json:"target"`
	Mappings   map[string]mapping `json:"mappings"`
}

type mapping struct {
	Source string `json:"source"`
	Value  string `json:"value"`
}

func fieldMapping(column string) mapping { return mapping{Source: "field", Value: column} }

type templating struct {
	List []variable `json:"list"`
}

type variable struct {
	Name        string      `json:"name"`
	Label       string      `json:"label"`
	Description string      `json:"description,omitempty"`
	Type        string      `json:"type"`
	Datasource  *datasource `json:"datasource,omitempty"`
	Query       string      `json:"query"`
	Definition  string      `json:"definition,omitempty"`
	Current     *option     `json:"current,omitempty"`
	Options     []option    `json:"options"`
	Refresh     int         `json:"refresh"`
	Sort        int         `json:"sort"`
	Multi       bool        `json:"multi"`
	IncludeAll  bool        `json:"includeAll"`
	Hide        int         `json:"hide"`
}

type option struct {
	Selected bool   `json:"selected"`
	Text     string `json:"text"`
	Value    string `json:"value"`
}

// Variable refresh: 2 reloads a query variable's values when the time range
// changes, so a newly written series shows up in the picker.
const refreshOnTimeRange = 2

// customVariable is a fixed list of values; the first is the default.
func customVariable(name, label, description string, values ...string) variable {
	v := variable{Name: name, Label: label, Description: description, Type: "custom", Options: []option{}}
	for i, val := range values {
		o := option{Selected: i == 0, Text: val, Value: val}
		v.Options = append(v.Options, o)
		if i > 0 {
			v.Query += ","
		}
		v.Query += val
	}
	v.Current = &v.Options[0]
	return v
}

// fluxVariable takes its values from a Flux query returning one _value
// column.
func fluxVariable(name, label, description, query string) variable {
	ds := influxDS
	return variable{Name: name, Label: label, Description: description, Type: "query", Datasource: &ds,
		Query: query, Definition: query, Options: []option{}, Refresh: refreshOnTimeRange, Sort: 1}
}

type gridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

type panel struct {
	ID              int              `json:"id"`
	Type            string           `json:"type"`
	Title           string           `json:"title"`
	Description     string           `json:"description,omitempty"`
	GridPos         gridPos          `json:"gridPos"`
	Collapsed       *bool            `json:"collapsed,omitempty"`
	Datasource      *datasource      `json:"datasource,omitempty"`
	Targets         []target         `json:"targets,omitempty"`
	FieldConfig     *fieldConfig     `json:"fieldConfig,omitempty"`
	Options         map[string]any   `json:"options,omitempty"`
	Transformations []transformation `json:"transformations,omitempty"`
	Panels          []panel          `json:"panels,omitempty"`
}

// target is one query of a panel: Query for Flux, Expr for PromQL.
type target struct {
	RefID        string     `json:"refId"`
	Datasource   datasource `json:"datasource"`
	Query        string     `json:"query,omitempty"`
	Expr         string     `json:"expr,omitempty"`
	LegendFormat string     `json:"legendFormat,omitempty"`
	Range        bool       `json:"range,omitempty"`
}

func fluxTarget(refID, query string) target {
	return target{RefID: refID, Datasource: influxDS, Query: query}
}

func promTarget(refID, expr, legend string) target {
	return target{RefID: refID, Datasource: prometheusDS, Expr: expr, LegendFormat: legend, Range: true}
}

type fieldConfig struct {
	Defaults  map[string]any `json:"defaults"`
	Overrides []override     `json:"overrides"`
}

type override struct {
	Matcher    matcher    `json:"matcher"`
	Properties []property `json:"properties"`
}

type matcher struct {
	ID      string `json:"id"`
	Options string `json:"options"`
}

type property struct {
	ID    string `json:"id"`
	Value any    `json:"value"`
}

// byName overrides the series whose display name is name.
func byName(name string, props ...property) override {
	return override{Matcher: matcher{ID: "byName", Options: name}, Properties: props}
}

func prop(id string, value any) property { return property{ID: id, Value: value} }

func fixedColor(c string) property {
	return prop("color", map[string]any{"mode": "fixed", "fixedColor": c})
}

type transformation struct {
	ID      string         `json:"id"`
	Options map[string]any `json:"options"`
}

// layout hands out panel ids and positions: panels are placed left to right
// in rows of the 24-column grid.
type layout struct {
	nextID int
	x, y   int
	rowH   int
	panels []panel
}

// row starts a new dashboard row titled title.
func (l *layout) row(title string) {
	l.newline()
	collapsed := false
	l.add(panel{Type: "row", Title: title, Collapsed: &collapsed, GridPos: gridPos{H: 1, W: 24}})
	l.newline()
}

// place adds p with width w and height h after the previous panel, wrapping
// to a new line when the row is full.
func (l *layout) place(w, h int, p panel) {
	if l.x+w > 24 {
		l.newline()
	}
	p.GridPos = gridPos{H: h, W: w, X: l.x, Y: l.y}
	l.x += w
	l.rowH = max(l.rowH, h)
	l.nextID++
	p.ID = l.nextID
	l.panels = append(l.panels, p)
}

func (l *layout) add(p panel) {
	p.GridPos.X, p.GridPos.Y = 0, l.y
	l.rowH = p.GridPos.H
	l.nextID++
	p.ID = l.nextID
	l.panels = append(l.panels, p)
}

func (l *layout) newline() {
	l.y += l.rowH
	l.x, l.rowH = 0, 0
}
