package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
)

var update = flag.Bool("update", false, "rewrite metricpipe.json from the Go source")

const (
	dashboardFile   = "metricpipe.json"
	datasourcesFile = "../provisioning/datasources/datasources.yaml"
	moduleRoot      = "../../.."
)

// TestGenerated: metricpipe.json is exactly what the Go source generates
// (run with -update after editing the source).
func TestGenerated(t *testing.T) {
	want, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(dashboardFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what the Go source generates: run go test ./deploy/grafana/dashboards -run TestGenerated -update", dashboardFile)
	}
}

// The tests below read metricpipe.json as Grafana does: as untyped JSON.

type object = map[string]any

func loadDashboard(t *testing.T) object {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d object
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func obj(v any) object {
	o, _ := v.(object)
	return o
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// allPanels returns every panel, those nested in rows included.
func allPanels(d object) []object {
	var out []object
	var walk func(ps []any)
	walk = func(ps []any) {
		for _, p := range ps {
			out = append(out, obj(p))
			walk(list(obj(p)["panels"]))
		}
	}
	walk(list(d["panels"]))
	return out
}

func variables(d object) []object {
	var out []object
	for _, v := range list(obj(d["templating"])["list"]) {
		out = append(out, obj(v))
	}
	return out
}

func annotationList(d object) []object {
	var out []object
	for _, a := range list(obj(d["annotations"])["list"]) {
		out = append(out, obj(a))
	}
	return out
}

// query is one query of the dashboard: a panel target, a variable's query or
// an annotation's.
type query struct {
	where  string // for messages: `panel "Rollups" query B`
	panel  string // panel title, variable or annotation name
	kind   string // "panel", "variable" or "annotation"
	dsType string // "influxdb" or "prometheus"
	text   string
	owner  object // the panel, variable or annotation
}

func queries(d object) []query {
	var out []query
	for _, p := range allPanels(d) {
		for _, tg := range list(p["targets"]) {
			tg := obj(tg)
			ds := str(obj(tg["datasource"])["type"])
			text := str(tg["query"])
			if ds == "prometheus" {
				text = str(tg["expr"])
			}
			out = append(out, query{where: fmt.Sprintf("panel %q query %s", p["title"], tg["refId"]), panel: str(p["title"]),
				kind: "panel", dsType: ds, text: text, owner: p})
		}
	}
	for _, v := range variables(d) {
		if v["type"] == "query" {
			out = append(out, query{where: fmt.Sprintf("variable %q", v["name"]), panel: str(v["name"]), kind: "variable",
				dsType: str(obj(v["datasource"])["type"]), text: str(v["query"]), owner: v})
		}
	}
	for _, a := range annotationList(d) {
		out = append(out, query{where: fmt.Sprintf("annotation %q", a["name"]), panel: str(a["name"]), kind: "annotation",
			dsType: str(obj(a["datasource"])["type"]), text: str(obj(a["target"])["query"]), owner: a})
	}
	return out
}

func TestDashboardHeader(t *testing.T) {
	d := loadDashboard(t)
	if d["uid"] != "metricpipe" || d["title"] != "metricpipe" {
		t.Errorf("uid %v, title %v; want metricpipe, metricpipe", d["uid"], d["title"])
	}
	if v, _ := d["schemaVersion"].(float64); v < 39 {
		t.Errorf("schemaVersion %v, want ≥ 39", d["schemaVersion"])
	}
}

// TestPanels: unique ids, a title and a grid position inside the 24-column
// grid for every panel, rows included, and no two panels overlapping.
func TestPanels(t *testing.T) {
	d := loadDashboard(t)
	ids := map[float64]string{}
	type rect struct {
		title      string
		x, y, w, h int
	}
	var top []rect
	for _, p := range allPanels(d) {
		title := str(p["title"])
		if title == "" {
			t.Errorf("panel %v has no title", p["id"])
		}
		id, ok := p["id"].(float64)
		if !ok {
			t.Errorf("panel %q has no id", title)
		} else if other, dup := ids[id]; dup {
			t.Errorf("panels %q and %q share id %v", other, title, id)
		}
		ids[id] = title
		g := obj(p["gridPos"])
		if g == nil {
			t.Errorf("panel %q has no gridPos", title)
			continue
		}
		num := func(k string) int { f, _ := g[k].(float64); return int(f) }
		r := rect{title, num("x"), num("y"), num("w"), num("h")}
		if r.w <= 0 || r.h <= 0 || r.x < 0 || r.y < 0 || r.x+r.w > 24 {
			t.Errorf("panel %q: gridPos %v outside the 24-column grid", title, g)
		}
		if p["type"] != "row" {
			if len(list(p["targets"])) == 0 {
				t.Errorf("panel %q has no query", title)
			}
		}
		top = append(top, r)
	}
	for i, a := range top {
		for _, b := range top[i+1:] {
			if a.x < b.x+b.w && b.x < a.x+a.w && a.y < b.y+b.h && b.y < a.y+a.h {
				t.Errorf("panels %q and %q overlap", a.title, b.title)
			}
		}
	}
}

// provisionedDatasources reads the uids and types of the data sources
// Grafana is provisioned with.
func provisionedDatasources(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(datasourcesFile)
	if err != nil {
		t.Fatalf("the dashboard's data sources are checked against the provisioned ones: %v", err)
	}
	var p struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s: %v", datasourcesFile, err)
	}
	uids := map[string]string{}
	for _, ds := range p.Datasources {
		uids[ds.UID] = ds.Type
	}
	if len(uids) == 0 {
		t.Fatalf("%s provisions no data source", datasourcesFile)
	}
	return uids
}

// TestDatasources: every panel, target, variable and annotation names a
// provisioned data source by uid, with its type.
func TestDatasources(t *testing.T) {
	d := loadDashboard(t)
	uids := provisionedDatasources(t)
	check := func(where string, ds any) {
		t.Helper()
		o := obj(ds)
		uid, typ := str(o["uid"]), str(o["type"])
		switch want, ok := uids[uid]; {
		case o == nil:
			t.Errorf("%s has no datasource", where)
		case !ok:
			t.Errorf("%s: datasource uid %q is not provisioned in %s (have %v)", where, uid, datasourcesFile, slices.Sorted(mapKeys(uids)))
		case typ != want:
			t.Errorf("%s: datasource %q has type %q, provisioned as %q", where, uid, typ, want)
		}
	}
	for _, p := range allPanels(d) {
		if p["type"] == "row" {
			continue
		}
		title := str(p["title"])
		check(fmt.Sprintf("panel %q", title), p["datasource"])
		for _, tg := range list(p["targets"]) {
			check(fmt.Sprintf("panel %q query %v", title, obj(tg)["refId"]), obj(tg)["datasource"])
		}
	}
	for _, v := range variables(d) {
		if v["type"] == "query" {
			check(fmt.Sprintf("variable %q", v["name"]), v["datasource"])
		}
	}
	for _, a := range annotationList(d) {
		check(fmt.Sprintf("annotation %q", a["name"]), a["datasource"])
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// varRef matches Grafana's variable syntaxes: ${name}, ${name:format},
// [[name]], [[name:format]] and $name. Names may continue with a dot path
// (${__field.labels.severity}).
var varRef = regexp.MustCompile(`\$\{([\w.]+)(?::(\w+))?\}|\[\[([\w.]+)(?::(\w+))?\]\]|\$(\w+)`)

func varRefs(s string) (names, formats []string) {
	for _, m := range varRef.FindAllStringSubmatch(s, -1) {
		name, format := m[1]+m[3]+m[5], m[2]+m[4]
		name, _, _ = strings.Cut(name, ".")
		names = append(names, name)
		formats = append(formats, format)
	}
	return names, formats
}

// walkStrings calls fn with every string in v and its JSON path.
func walkStrings(v any, path string, fn func(path, s string)) {
	switch x := v.(type) {
	case string:
		fn(path, x)
	case []any:
		for i, e := range x {
			walkStrings(e, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case object:
		for _, k := range slices.Sorted(mapKeys(x)) {
			walkStrings(x[k], path+"."+k, fn)
		}
	}
}

// TestVariables: every variable the dashboard refers to anywhere is defined
// (Grafana's own, __*, aside), with a format Grafana knows; a variable's
// query refers only to variables defined before it.
func TestVariables(t *testing.T) {
	d := loadDashboard(t)
	defined := map[string]int{}
	for i, v := range variables(d) {
		name := str(v["name"])
		if _, dup := defined[name]; dup {
			t.Errorf("variable %q defined twice", name)
		}
		defined[name] = i
	}
	walkStrings(d, "$", func(path, s string) {
		names, formats := varRefs(s)
		for i, name := range names {
			if strings.HasPrefix(name, "__") {
				continue
			}
			if _, ok := defined[name]; !ok {
				t.Errorf("%s refers to undefined variable $%s", path, name)
			}
			if f := formats[i]; f != "" && f != "regex" && f != "raw" {
				t.Errorf("%s: variable %s has format %q; the tests interpolate only regex and raw", path, name, f)
			}
		}
	})
	for i, v := range variables(d) {
		names, _ := varRefs(str(v["query"]))
		for _, name := range names {
			if j, ok := defined[name]; ok && j >= i {
				t.Errorf("variable %q uses $%s, which is defined after it", v["name"], name)
			}
		}
	}
}

// fluxFunctions are the Flux functions the dashboard may call: in InfluxDB
// 1.8's Flux (0.65) and 2.x's alike. The integration test runs them on 1.8.
var fluxFunctions = map[string]bool{
	"from": true, "range": true, "filter": true, "keep": true, "drop": true, "group": true, "sort": true,
	"limit": true, "last": true, "first": true, "aggregateWindow": true, "pivot": true, "map": true,
	"distinct": true, "count": true, "mean": true, "min": true, "max": true, "yield": true,
}

var (
	fluxCall = regexp.MustCompile(`([A-Za-z_][\w.]*)\s*\(`)
	// String and regular-expression literals, which may hold anything.
	fluxLiteral = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|(?:=~|!~)\s*/(?:[^/\\\n]|\\.)*/`)
	// Grafana's backend replaces <word>.<macro> for any word (see
	// pkg/tsdb/influxdb/flux/macros.go), so r.bucket would be clobbered.
	fluxMacro = regexp.MustCompile(`\b([a-zA-Z]+)\.(timeRangeStart|timeRangeStop|windowPeriod|bucket|defaultBucket|organization)\b`)
)

// TestFluxStatic: Flux queries call only functions both InfluxDB 1.8 and
// 2.x have, import nothing, read a bounded range and use Grafana's macros
// only as v.*.
func TestFluxStatic(t *testing.T) {
	n := 0
	for _, q := range queries(loadDashboard(t)) {
		if q.dsType != "influxdb" {
			continue
		}
		n++
		if strings.TrimSpace(q.text) == "" {
			t.Errorf("%s: empty query", q.where)
			continue
		}
		if strings.Contains(q.text, "import ") {
			t.Errorf("%s imports a package; InfluxDB 1.8's Flux lacks most (no influxdata/influxdb/schema)", q.where)
		}
		for _, m := range fluxCall.FindAllStringSubmatch(fluxLiteral.ReplaceAllString(q.text, `""`), -1) {
			if !fluxFunctions[m[1]] {
				t.Errorf("%s calls %s(), which is not on the list of functions InfluxDB 1.8 and 2.x share", q.where, m[1])
			}
		}
		if !strings.Contains(q.text, "range(") {
			t.Errorf("%s has no range()", q.where)
		}
		for _, m := range fluxMacro.FindAllStringSubmatch(q.text, -1) {
			if m[1] != "v" {
				t.Errorf("%s: Grafana would replace %q as its macro v.%s", q.where, m[0], m[2])
			}
		}
	}
	if n == 0 {
		t.Fatal("no Flux query found")
	}
}

// schemas are the tags and fields of the measurements the analyzer writes
// under fixed names: alert events (analyzer/handler.go, appendAlertLine)
// and incident events (the analyzer's incident writer).
var schemas = map[string]struct{ tags, fields []string }{
	alertsMeasurement: {
		tags:   []string{"fingerprint", "rule", "severity", "state"},
		fields: []string{"value", "threshold", "expected", "score", "firing", "series", "summary"},
	},
	incidentsMeasurement: {
		tags:   []string{"id", "state", "severity"},
		fields: []string{"version", "alerts", "firing", "origin", "lead_seconds", "located", "summary", "started_at"},
	},
}

var (
	fluxMeasurementRef = regexp.MustCompile(`r\._measurement == "([^"]*)"`)
	fluxFieldRef       = regexp.MustCompile(`r\._field == "([^"]*)"`)
	fluxColumnRef      = regexp.MustCompile(`\br\.(\w+)`)
	fluxKeep           = regexp.MustCompile(`keep\(columns: \[([^\]]*)\]\)`)
)

// TestFluxMeasurementsAndFields: a Flux query that reads a measurement the
// analyzer writes under a fixed name reads that one only, and only the
// tags and fields it has; every column a table panel shows is one the query
// keeps.
func TestFluxMeasurementsAndFields(t *testing.T) {
	read := map[string]bool{}
	for _, q := range queries(loadDashboard(t)) {
		if q.dsType != "influxdb" {
			continue
		}
		var fixed []string
		for _, m := range fluxMeasurementRef.FindAllStringSubmatch(q.text, -1) {
			if m[1] == "${measurement}" {
				continue
			}
			if _, ok := schemas[m[1]]; !ok {
				t.Errorf("%s reads measurement %q, which has no schema here", q.where, m[1])
				continue
			}
			fixed = append(fixed, m[1])
		}
		if len(fixed) == 0 {
			continue // the picked source measurement: fields are ${field}…
		}
		if len(slices.Compact(slices.Sorted(slices.Values(fixed)))) > 1 {
			t.Errorf("%s reads several measurements %v", q.where, fixed)
			continue
		}
		name := fixed[0]
		read[name] = true
		s := schemas[name]
		columns := append([]string{"_time", "_value", "_field", "_measurement", "_start", "_stop"}, append(s.tags, s.fields...)...)
		for _, m := range fluxFieldRef.FindAllStringSubmatch(q.text, -1) {
			if !slices.Contains(s.fields, m[1]) {
				t.Errorf("%s reads field %q, which %s does not have (fields %v)", q.where, m[1], name, s.fields)
			}
		}
		for _, m := range fluxColumnRef.FindAllStringSubmatch(fluxLiteral.ReplaceAllString(q.text, `""`), -1) {
			if !slices.Contains(columns, m[1]) {
				t.Errorf("%s reads column r.%s, which is neither a tag nor a field of %s", q.where, m[1], name)
			}
		}
		var kept []string
		for _, m := range fluxKeep.FindAllStringSubmatch(q.text, -1) {
			for _, c := range strings.Split(m[1], ",") {
				c, _ = strconv.Unquote(strings.TrimSpace(c))
				kept = append(kept, c)
				if !slices.Contains(columns, c) {
					t.Errorf("%s keeps column %q, which is neither a tag nor a field of %s", q.where, c, name)
				}
			}
		}
		if q.kind != "panel" || q.owner["type"] != "table" {
			continue
		}
		for _, tr := range list(q.owner["transformations"]) {
			for c := range obj(obj(obj(tr)["options"])["indexByName"]) {
				if !slices.Contains(kept, c) {
					t.Errorf("%s: the table orders column %q, which the query does not keep (%v)", q.where, c, kept)
				}
			}
		}
	}
	for name := range schemas {
		if !read[name] {
			t.Errorf("no query reads %s", name)
		}
	}
}

// TestPrometheusMetrics: every metricpipe_* series a Prometheus query reads
// is registered somewhere in the services' code; histogram series carry
// _bucket, _sum or _count.
func TestPrometheusMetrics(t *testing.T) {
	known, unresolved, err := codeMetrics(moduleRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range unresolved {
		t.Logf("metric name not resolved from the code (not checked): %s", u)
	}
	// The names every service registers; if these are not found the
	// extraction is broken, not the dashboard.
	for _, name := range []string{"metricpipe_producer_points_sent_total", "metricpipe_consumer_points_written_total",
		"metricpipe_analyzer_points_total", "metricpipe_kafka_consumer_lag"} {
		if known[name] == "" {
			t.Fatalf("metric %s not found in the code under %s: the name extraction is broken", name, moduleRoot)
		}
	}
	metric := regexp.MustCompile(`metricpipe_\w+`)
	n := 0
	for _, q := range queries(loadDashboard(t)) {
		if q.dsType != "prometheus" {
			continue
		}
		names := metric.FindAllString(q.text, -1)
		if len(names) == 0 {
			t.Errorf("%s reads no metricpipe metric: %s", q.where, q.text)
		}
		for _, name := range names {
			n++
			if err := checkSeries(known, name); err != nil {
				t.Errorf("%s: %v", q.where, err)
			}
		}
	}
	if n == 0 {
		t.Fatal("no Prometheus query found")
	}
}

// checkSeries reports whether name is a series of one of the known metrics.
func checkSeries(known map[string]string, name string) error {
	if kind := known[name]; kind != "" {
		if kind == "histogram" || kind == "summary" {
			return fmt.Errorf("%s is a %s: read its _bucket, _sum or _count series", name, kind)
		}
		return nil
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch known[base] {
		case "histogram":
			return nil
		case "summary":
			if suffix != "_bucket" {
				return nil
			}
		}
		if known[base] != "" {
			return fmt.Errorf("%s: %s is a %s, which has no %s series", name, base, known[base], suffix)
		}
	}
	return fmt.Errorf("metric %s is not registered anywhere in the code", name)
}

var optsKinds = map[string]string{"CounterOpts": "counter", "GaugeOpts": "gauge", "HistogramOpts": "histogram", "SummaryOpts": "summary"}

// codeMetrics finds the Prometheus metrics the code registers, by kind: the
// Name of every prometheus.*Opts literal in non-test Go files under root.
// A Name built as "prefix_" + param inside a helper closure (counter :=
// func(name, help string) …) is resolved through the closure's calls in the
// enclosing function; other non-literal names are returned as unresolved.
func codeMetrics(root string) (known map[string]string, unresolved []string, err error) {
	known = map[string]string{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if path != root && (strings.HasPrefix(e.Name(), ".") || e.Name() == "testdata" || e.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(src, []byte("Opts{")) {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			return err
		}
		unresolved = append(unresolved, fileMetrics(fset, f, known)...)
		return nil
	})
	return known, unresolved, err
}

func fileMetrics(fset *token.FileSet, f *ast.File, known map[string]string) (unresolved []string) {
	var stack []ast.Node
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		lit, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		sel, ok := lit.Type.(*ast.SelectorExpr)
		if !ok || optsKinds[sel.Sel.Name] == "" {
			return true
		}
		kind := optsKinds[sel.Sel.Name]
		for _, el := range lit.Elts {
			kv, ok := el.(*ast.KeyValueExpr)
			if key, _ := kv.Key.(*ast.Ident); !ok || key == nil || key.Name != "Name" {
				continue
			}
			if name, ok := stringLit(kv.Value); ok {
				known[name] = kind
				continue
			}
			resolved := false
			if bin, ok := kv.Value.(*ast.BinaryExpr); ok && bin.Op == token.ADD {
				prefix, ok1 := stringLit(bin.X)
				param, ok2 := bin.Y.(*ast.Ident)
				if ok1 && ok2 {
					for _, suffix := range closureArgs(stack, param.Name) {
						known[prefix+suffix] = kind
						resolved = true
					}
				}
			}
			if !resolved {
				unresolved = append(unresolved, fset.Position(kv.Pos()).String())
			}
		}
		return true
	})
	return unresolved
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// closureArgs finds, for a parameter param of the innermost function literal
// on stack that is assigned to a variable (v := func(param …)), the string
// literals passed as that parameter in the calls of v within the enclosing
// function declaration.
func closureArgs(stack []ast.Node, param string) []string {
	for i := len(stack) - 1; i > 0; i-- {
		fn, ok := stack[i].(*ast.FuncLit)
		if !ok {
			continue
		}
		index, pos := -1, 0
		for _, field := range fn.Type.Params.List {
			for _, name := range field.Names {
				if name.Name == param {
					index = pos
				}
				pos++
			}
		}
		if index < 0 {
			continue
		}
		assign, ok := stack[i-1].(*ast.AssignStmt)
		if !ok {
			return nil
		}
		var variable string
		for k, rhs := range assign.Rhs {
			if rhs == fn && k < len(assign.Lhs) {
				if id, ok := assign.Lhs[k].(*ast.Ident); ok {
					variable = id.Name
				}
			}
		}
		var decl *ast.FuncDecl
		for _, n := range stack[:i] {
			if d, ok := n.(*ast.FuncDecl); ok {
				decl = d
			}
		}
		if variable == "" || decl == nil {
			return nil
		}
		var args []string
		ast.Inspect(decl.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); ok && id.Name == variable && index < len(call.Args) {
				if s, ok := stringLit(call.Args[index]); ok {
					args = append(args, s)
				}
			}
			return true
		})
		return args
	}
	return nil
}

// grafanaInterpolate does to a Flux query what Grafana does before sending
// it: the frontend replaces the dashboard variables (single values; format
// regex escapes like Grafana's escapeRegex), then the backend replaces its
// macros exactly as pkg/tsdb/influxdb/flux/macros.go does, including its
// habit of matching any <word>.<macro>.
func grafanaInterpolate(q string, vars map[string]string, from, to time.Time, interval time.Duration) (string, error) {
	var errs []string
	q = varRef.ReplaceAllStringFunc(q, func(ref string) string {
		names, formats := varRefs(ref)
		name, format := names[0], formats[0]
		if name == "__interval" || name == "__interval_ms" {
			return "$" + name // left to the backend
		}
		v, ok := vars[name]
		if !ok {
			errs = append(errs, "no value for $"+name)
			return ref
		}
		if format == "regex" {
			return grafanaEscapeRegex.ReplaceAllString(v, `\$0`)
		}
		return v
	})
	if len(errs) > 0 {
		return "", fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	for _, m := range grafanaMacro.FindAllStringSubmatch(q, -1) {
		switch m[2] {
		case "timeRangeStart":
			q = strings.ReplaceAll(q, m[0], from.UTC().Format(time.RFC3339Nano))
		case "timeRangeStop":
			q = strings.ReplaceAll(q, m[0], to.UTC().Format(time.RFC3339Nano))
		case "windowPeriod":
			q = strings.ReplaceAll(q, m[0], interval.String())
		case "bucket", "defaultBucket", "organization":
			return "", fmt.Errorf("%s: the test sets no datasource %s", m[0], m[2])
		}
	}
	q = strings.ReplaceAll(q, "$__interval_ms", strconv.FormatInt(interval.Milliseconds(), 10))
	q = strings.ReplaceAll(q, "$__interval", interval.String())
	return q, nil
}

var (
	grafanaEscapeRegex = regexp.MustCompile(`[\\^$*+?.()|\[\]{}/]`)
	grafanaMacro       = regexp.MustCompile(`([a-zA-Z]+)\.([a-zA-Z]+)`)
)

func TestGrafanaInterpolate(t *testing.T) {
	from := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	vars := map[string]string{"bucket": "db/autogen", "host": "a.b/c"}
	f := func(in, want string) {
		t.Helper()
		got, err := grafanaInterpolate(in, vars, from, from.Add(time.Hour), 10*time.Second)
		if err != nil || got != want {
			t.Errorf("grafanaInterpolate(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	f(`from(bucket: "${bucket}") |> range(start: v.timeRangeStart, stop: v.timeRangeStop)`,
		`from(bucket: "db/autogen") |> range(start: 2025-01-02T03:04:05Z, stop: 2025-01-02T04:04:05Z)`)
	f(`r.host == "$host" or r.host =~ /^${host:regex}$/`, `r.host == "a.b/c" or r.host =~ /^a\.b\/c$/`)
	f(`every: v.windowPeriod, $__interval, [[host]]`, `every: 10s, 10s, a.b/c`)
	if _, err := grafanaInterpolate(`${nope}`, vars, from, from, time.Second); err == nil {
		t.Error("an undefined variable was interpolated")
	}
}

// TestFluxOnInfluxDB runs a short pipeline on the test bed (synthetic
// points with anomalies through Kafka to the consumer and an analyzer with
// alert rules, into a fresh InfluxDB 1.8 database and a fresh 2.x bucket
// written with a token that may write to it alone), then runs every Flux
// query of the dashboard, interpolated as Grafana would, and requires each to
// parse and return rows of the shape its panel needs.
func TestFluxOnInfluxDB(t *testing.T) {
	for _, db := range testbed.Influxes(t) {
		t.Run(db.Name, func(t *testing.T) { fluxOnInfluxDB(t, db) })
	}
}

func fluxOnInfluxDB(t *testing.T, db testbed.Influx) {
	brokers := testbed.KafkaBrokers(t)
	t.Logf("InfluxDB %s", db.Version(t))
	d := loadDashboard(t)

	const (
		series   = 10
		steps    = 600 // per series: ten one-minute rollup windows
		interval = time.Second
	)
	bucket, begin := runPipeline(t, brokers, db, series, steps, interval)
	writeIncidents(t, db, bucket, begin.Add(time.Minute))
	from := begin.Add(-5 * time.Minute)
	to := begin.Add(steps*interval + 5*time.Minute)
	ctx := t.Context()
	run := func(flux string) ([]map[string]any, error) {
		qctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return db.FluxRows(qctx, flux)
	}

	// The host to show: one with a resolved alert (so both annotations
	// have events on it).
	resolved, err := run(fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r.state == "resolved" and r._field == "series")`,
		bucket, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), alertsMeasurement))
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	hostTag := regexp.MustCompile(`[,]host=([^, ]+)`)
	for _, r := range resolved {
		if m := hostTag.FindStringSubmatch(str(r["_value"])); m != nil {
			hosts = append(hosts, m[1])
		}
	}
	if len(hosts) == 0 {
		t.Fatalf("the analyzer resolved no alert: nothing to annotate")
	}
	slices.Sort(hosts)
	host := hosts[0]

	vars := map[string]string{"bucket": bucket, "measurement": "synthetic", "host": host, "field": "value"}
	for _, v := range variables(d) {
		if _, ok := vars[str(v["name"])]; !ok && v["type"] != "query" {
			vars[str(v["name"])] = str(obj(v["current"])["value"])
		}
	}
	t.Logf("variables %v, range %s to %s", vars, from.Format(time.RFC3339), to.Format(time.RFC3339))

	for _, q := range queries(d) {
		if q.dsType != "influxdb" {
			continue
		}
		flux, err := grafanaInterpolate(q.text, vars, from, to, 10*time.Second)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		rows, err := run(flux)
		if err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, flux)
			continue
		}
		t.Logf("%-12s %-40s %6d rows", q.kind, q.where, len(rows))
		if len(rows) == 0 {
			t.Errorf("%s returned no rows:\n%s", q.where, flux)
			continue
		}
		if err := checkShape(q, rows); err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, flux)
		}
		switch q.panel {
		case "measurement":
			checkValues(t, q, rows, "_value", []string{"synthetic"})
		case "host":
			if !slices.ContainsFunc(rows, func(r map[string]any) bool { return r["_value"] == host }) {
				t.Errorf("%s: %s not among the hosts", q.where, host)
			}
			if len(rows) != series {
				t.Errorf("%s: %d hosts, want %d", q.where, len(rows), series)
			}
		case "field":
			checkValues(t, q, rows, "_value", []string{"value"})
		case "Value, moving averages and forecast":
			checkValues(t, q, rows, "_field", []string{"EMA", "SMA", "forecast", "lower", "raw", "upper"})
		case "Firing alerts":
			checkFiring(t, q, rows, run, bucket, to)
		case "Incidents":
			checkIncidents(t, q, rows, run, bucket, from, to)
		}
	}
}

// checkShape checks a result has what Grafana needs to draw it: time series
// panels need _time, _value and _measurement (Grafana's Flux reader makes a
// time series only of tables with a _measurement column); annotations the
// columns their mappings name; tables no _start/_stop noise.
func checkShape(q query, rows []map[string]any) error {
	var need []string
	switch {
	case q.kind == "annotation":
		for _, m := range obj(q.owner["mappings"]) {
			need = append(need, str(obj(m)["value"]))
		}
	case q.kind == "variable":
		need = []string{"_value"}
	case q.owner["type"] == "timeseries":
		need = []string{"_time", "_value", "_measurement"}
	case q.owner["type"] == "table":
		if _, ok := rows[0]["_start"]; ok {
			return fmt.Errorf("table rows carry _start")
		}
	}
	for _, c := range need {
		if _, ok := rows[0][c]; !ok {
			return fmt.Errorf("rows have no %s column: %v", c, slices.Sorted(mapKeys(rows[0])))
		}
	}
	return nil
}

// checkValues checks the distinct values of column are exactly want.
func checkValues(t *testing.T, q query, rows []map[string]any, column string, want []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range rows {
		seen[str(r[column])] = true
	}
	got := slices.Sorted(mapKeys(seen))
	if !slices.Equal(got, want) {
		t.Errorf("%s: %s values %v, want %v", q.where, column, got, want)
	}
}

// checkFiring compares the firing-alerts table with the latest state of
// every fingerprint, computed here from all alert events.
func checkFiring(t *testing.T, q query, rows []map[string]any, run func(string) ([]map[string]any, error), bucket string, to time.Time) {
	t.Helper()
	events, err := run(fmt.Sprintf(`from(bucket: %q)
  |> range(start: 1970-01-01T00:00:00Z, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r._field == "firing")`, bucket, to.Format(time.RFC3339Nano), alertsMeasurement))
	if err != nil {
		t.Fatal(err)
	}
	type latest struct {
		at     time.Time
		firing bool
	}
	state := map[string]latest{}
	for _, e := range events {
		at, _ := e["_time"].(time.Time)
		fp := str(e["fingerprint"])
		if l, ok := state[fp]; !ok || at.After(l.at) {
			firing, _ := e["_value"].(bool)
			state[fp] = latest{at, firing}
		}
	}
	var want, got []string
	for fp, l := range state {
		if l.firing {
			want = append(want, fp)
		}
	}
	for _, r := range rows {
		got = append(got, str(r["fingerprint"]))
	}
	sort.Strings(want)
	sort.Strings(got)
	t.Logf("%d alerts, %d firing at the end", len(state), len(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s lists %v, want the alerts whose latest event fires: %v", q.where, got, want)
	}
}

// writeIncidents writes incident events from at on, as the analyzer's
// incident writer does (one point per event at its updated_at), so that the
// incident table and annotation have rows whatever the pipeline's alerts
// correlated into: inc-a opens, grows and resolves; inc-b opens and is
// merged into inc-a; inc-c opens and resolves in the same instant, where
// only the version orders its events.
func writeIncidents(t *testing.T, db testbed.Influx, bucket string, at time.Time) {
	t.Helper()
	started := at.UTC().Format(time.RFC3339)
	line := func(id, state, severity string, version, alerts, firing int, origin string, lead float64, located bool, summary string, ts time.Time) string {
		return fmt.Sprintf(`%s,id=%s,severity=%s,state=%s alerts=%di,firing=%di,lead_seconds=%g,located=%t,origin=%q,started_at=%q,summary=%q,version=%di %d`,
			incidentsMeasurement, id, severity, state, alerts, firing, lead, located, origin, started, summary, version, ts.UnixNano())
	}
	lines := []string{
		line("inc-a", "open", "warning", 1, 1, 1, "host=db-1,service=db", 0, false, "db latency on db-1", at),
		line("inc-b", "open", "warning", 1, 1, 1, "host=web-1", 0, false, "errors on web-1", at.Add(5*time.Second)),
		line("inc-a", "open", "critical", 2, 3, 3, "host=db-1,service=db", 45, true, "db latency on db-1, then api-1 and web-1", at.Add(10*time.Second)),
		line("inc-b", "merged", "warning", 2, 1, 1, "host=web-1", 0, false, "errors on web-1", at.Add(10*time.Second)),
		line("inc-c", "open", "info", 1, 1, 1, "", 0, false, "disk on lb-1", at.Add(15*time.Second)),
		line("inc-c", "resolved", "info", 2, 1, 0, "", 0, false, "disk on lb-1", at.Add(15*time.Second)),
		line("inc-a", "resolved", "critical", 3, 3, 0, "host=db-1,service=db", 45, true, "db latency on db-1, then api-1 and web-1", at.Add(time.Minute)),
	}
	client := db.Client()
	defer client.Close()
	if err := client.WriteAPIBlocking(db.Org, bucket).WriteRecord(t.Context(), lines...); err != nil {
		t.Fatalf("write incident events: %v", err)
	}
}

// checkIncidents compares the incidents table with the latest event of
// every incident of the range, computed here from all its events, and
// writeIncidents' openings with the annotation's text.
func checkIncidents(t *testing.T, q query, rows []map[string]any, run func(string) ([]map[string]any, error), bucket string, from, to time.Time) {
	t.Helper()
	events, err := run(fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r._field == "version")`,
		bucket, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), incidentsMeasurement))
	if err != nil {
		t.Fatal(err)
	}
	if q.kind == "annotation" {
		openings := 0
		for _, e := range events {
			if v, _ := e["_value"].(int64); v == 1 {
				openings++
			}
		}
		var texts []string
		for _, r := range rows {
			texts = append(texts, str(r["text"])+" ["+str(r["tags"])+"]")
		}
		if len(rows) != openings {
			t.Errorf("%s: %d rows, want the %d openings:\n%s", q.where, len(rows), openings, strings.Join(texts, "\n"))
		}
		for _, want := range []string{"db latency on db-1 (origin host=db-1,service=db) [incident,warning,inc-a]", "disk on lb-1 [incident,info,inc-c]"} {
			if !slices.Contains(texts, want) {
				t.Errorf("%s: no %q among\n%s", q.where, want, strings.Join(texts, "\n"))
			}
		}
		return
	}
	type latest struct {
		at      time.Time
		version int64
		row     string
	}
	state := map[string]latest{}
	for _, e := range events {
		at, _ := e["_time"].(time.Time)
		v, _ := e["_value"].(int64)
		id := str(e["id"])
		if l, ok := state[id]; !ok || at.After(l.at) || at.Equal(l.at) && v > l.version {
			state[id] = latest{at, v, id + " " + str(e["state"]) + " " + str(e["severity"])}
		}
	}
	var want, got []string
	for _, l := range state {
		want = append(want, l.row)
	}
	var prev time.Time
	for i, r := range rows {
		got = append(got, str(r["id"])+" "+str(r["state"])+" "+str(r["severity"]))
		at, _ := r["_time"].(time.Time)
		if i > 0 && at.After(prev) {
			t.Errorf("%s: row %d (%s) is newer than the row before it", q.where, i, at)
		}
		prev = at
	}
	sort.Strings(want)
	sort.Strings(got)
	t.Logf("%d incidents", len(state))
	if !slices.Equal(got, want) {
		t.Errorf("%s lists %v, want every incident's latest event: %v", q.where, got, want)
	}
	for _, r := range rows {
		if r["id"] == "inc-a" && (r["alerts"] != int64(3) || r["firing"] != int64(0) || r["lead_seconds"] != 45.0 || r["located"] != true ||
			r["origin"] != "host=db-1,service=db" || r["summary"] != "db latency on db-1, then api-1 and web-1") {
			t.Errorf("%s: inc-a's row %v, want its version 3", q.where, r)
		}
	}
}

// runPipeline produces series×steps synthetic points (seed 1, anomalies
// injected) to a new topic, runs a consumer and an analyzer over them into a
// new database until both groups committed everything, and returns the
// database's bucket and the time the first point is stamped with (about
// now).
func runPipeline(t *testing.T, brokers string, db testbed.Influx, series, steps int, interval time.Duration) (bucket string, begin time.Time) {
	t.Helper()
	topic := testbed.UniqueName("dashboard-")
	bucket = db.CreateBucket(t, testbed.UniqueName("dashboard_"))
	influxFlags := db.ServiceFlags(bucket, db.WriteToken(t, bucket))
	bins := testbed.BuildServices(t, t.TempDir())
	admin, err := kafkaio.NewAdmin(kafkaio.Config{Brokers: []string{brokers}})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.EnsureTopics(t.Context(), kafkaio.TopicSpec{Name: topic, Partitions: 4, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	// An anomaly rule, so alerts fire and resolve; and a rule that holds
	// forever on host-0, so one alert is still firing at the end.
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(`rules:
  - name: synthetic_anomaly
    match: {measurement: synthetic}
    anomaly: {z: 6}
    severity: warning
  - name: host0_always
    match: {measurement: synthetic, tags: {host: host-0}}
    threshold: {above: -1e12}
    severity: info
`), 0o644); err != nil {
		t.Fatal(err)
	}

	begin = time.Now().Truncate(interval)
	p := testbed.Start(t, "producer", bins["producer"], "synthetic", "--kafka-brokers", brokers, "--topic", topic,
		"--count", strconv.Itoa(series*steps), "--series", strconv.Itoa(series), "--interval", interval.String(),
		"--rate", "0", "--anomaly-rate", "0.005", "--seed", "1", "--http-addr", testbed.FreeAddr(t), "--log-format", "console")
	if err := p.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v\n%s", err, p.Output())
	}
	groups := []string{topic + "-consumer", topic + "-analyzer"}
	testbed.Start(t, "consumer", bins["consumer"], append([]string{"--kafka-brokers", brokers, "--topic", topic, "--group", groups[0],
		"--dlq-topic", topic + "-dlq", "--influx-flush-interval", "200ms", "--idle-flush", "2s",
		"--http-addr", testbed.FreeAddr(t), "--log-format", "console"}, influxFlags...)...)
	testbed.Start(t, "analyzer", bins["analyzer"], append([]string{"--kafka-brokers", brokers, "--topic", topic, "--group", groups[1],
		"--alert-topic", topic + "-alerts", "--dlq-topic", topic + "-dlq", "--rules", rules,
		"--http-addr", testbed.FreeAddr(t), "--log-format", "console"}, influxFlags...)...)
	for _, g := range groups {
		testbed.Eventually(t, 3*time.Minute, g+" committed to the end of every partition", func() (bool, string) {
			ends, err := admin.PartitionEnds(t.Context(), topic)
			if err != nil {
				return false, err.Error()
			}
			committed, err := admin.CommittedOffsets(t.Context(), g, topic)
			if err != nil {
				return false, err.Error()
			}
			for part, end := range ends {
				if committed[part] != end {
					return false, fmt.Sprintf("partition %d committed %d of %d", part, committed[part], end)
				}
			}
			return true, ""
		})
	}
	return bucket, begin
}
