package deploy

import (
	"net/url"
	"path"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	datasourcesFile = "deploy/grafana/provisioning/datasources/datasources.yaml"
	dashboardsFile  = "deploy/grafana/provisioning/dashboards/dashboards.yaml"
)

// checkGrafana checks the provisioning Grafana gets in docker-compose.yml:
// the data sources the dashboards name by uid, the variables they read, and
// the dashboard provider's folder.
func checkGrafana(r *repo) problems {
	c, p := loadCompose(r)
	if c == nil {
		return p
	}
	p = nil // loadCompose's own problems are TestCompose's to report
	var grafana string
	for _, name := range sortedKeys(c.Services) {
		if m, ok := c.Services[name].mountOf("/etc/grafana/provisioning"); ok {
			grafana = name
			if path.Clean(m.source) != "deploy/grafana/provisioning" {
				p.addf("%s: mounts %s as its provisioning, want ./deploy/grafana/provisioning", name, m.source)
			}
		}
	}
	if grafana == "" {
		p.addf("%s: no service mounts ./deploy/grafana/provisioning at /etc/grafana/provisioning", composeFile)
		return p
	}
	g := c.Services[grafana]

	data, err := r.read(datasourcesFile)
	if err != nil {
		p.addf("%v", err)
		return p
	}
	// Grafana expands $VAR, ${VAR} and $__env{VAR} in values from its
	// environment; comment lines are not values.
	var values strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			values.WriteString(line + "\n")
		}
	}
	for _, v := range envRefs(values.String()) {
		if _, ok := g.Environment[v]; !ok {
			p.addf("%s reads %s, which the %s service does not set", datasourcesFile, v, grafana)
		}
	}
	var ds struct {
		APIVersion  int              `yaml:"apiVersion"`
		Datasources []map[string]any `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(data, &ds); err != nil {
		p.addf("%s: %v", datasourcesFile, err)
		return p
	}
	if ds.APIVersion != 1 {
		p.addf("%s: apiVersion %d, want 1", datasourcesFile, ds.APIVersion)
	}
	byUID := map[string]map[string]any{}
	defaults := 0
	for _, d := range ds.Datasources {
		uid := strAt(d, "uid")
		if _, dup := byUID[uid]; dup {
			p.addf("%s: uid %q twice", datasourcesFile, uid)
		}
		byUID[uid] = d
		if strAt(d, "isDefault") == "true" {
			defaults++
		}
		// The URL must name a service of the stack that Grafana waits for.
		u, err := url.Parse(strAt(d, "url"))
		if err != nil || u.Host == "" {
			p.addf("%s: %s: url %q is not an absolute URL", datasourcesFile, uid, strAt(d, "url"))
			continue
		}
		host := u.Hostname()
		if _, ok := c.Services[host]; !ok {
			p.addf("%s: %s: url host %s is not a compose service", datasourcesFile, uid, host)
		} else if g.DependsOn[host] != "service_healthy" {
			p.addf("%s: reads %s (data source %s) but does not depend on it being healthy", grafana, host, uid)
		}
	}
	if defaults > 1 {
		p.addf("%s: %d data sources are the default, want at most one", datasourcesFile, defaults)
	}
	// The dashboards refer to these two by uid.
	want := map[string]string{"influxdb": "influxdb", "prometheus": "prometheus"}
	for _, uid := range sortedKeys(want) {
		d, ok := byUID[uid]
		if !ok {
			p.addf("%s: no data source with uid %q: the dashboards refer to it", datasourcesFile, uid)
			continue
		}
		if typ := strAt(d, "type"); typ != want[uid] {
			p.addf("%s: %s: type %q, want %q", datasourcesFile, uid, typ, want[uid])
		}
	}
	if d, ok := byUID["influxdb"]; ok {
		if v := strAt(d, "jsonData", "version"); v != "Flux" {
			p.addf("%s: influxdb: jsonData.version %q, want Flux: the dashboards' queries are Flux", datasourcesFile, v)
		}
		for _, k := range [][]string{{"jsonData", "organization"}, {"jsonData", "defaultBucket"}, {"secureJsonData", "token"}} {
			if strAt(d, k...) == "" {
				p.addf("%s: influxdb: %s is empty", datasourcesFile, strings.Join(k, "."))
			}
		}
	}

	// The dashboard provider reads a folder the compose file mounts from
	// deploy/grafana/dashboards.
	data, err = r.read(dashboardsFile)
	if err != nil {
		p.addf("%v", err)
		return p
	}
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(data, &prov); err != nil {
		p.addf("%s: %v", dashboardsFile, err)
		return p
	}
	if len(prov.Providers) == 0 {
		p.addf("%s: no providers", dashboardsFile)
	}
	for _, pr := range prov.Providers {
		if pr.Type != "file" {
			p.addf("%s: provider %s: type %q, want file", dashboardsFile, pr.Name, pr.Type)
			continue
		}
		m, ok := g.mountOf(pr.Options.Path)
		if !ok {
			p.addf("%s: provider %s reads %s, but nothing is mounted at %s in %s", dashboardsFile, pr.Name, pr.Options.Path, pr.Options.Path, grafana)
		} else if path.Clean(m.source) != "deploy/grafana/dashboards" {
			p.addf("%s: %s is mounted from %s, want ./deploy/grafana/dashboards", grafana, pr.Options.Path, m.source)
		}
	}
	if home, ok := g.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; ok {
		m, ok := g.mountOf(path.Dir(home))
		if !ok || !r.exists(path.Join(m.source, path.Base(home))) {
			p.addf("%s: GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH %s: the file does not exist in a mounted folder", grafana, home)
		}
	}
	return p
}

func TestGrafana(t *testing.T) {
	runBreakages(t, newRepo(t), checkGrafana, []breakage{
		{"influxdb uid", datasourcesFile, "uid: influxdb", "uid: influx", `no data source with uid "influxdb"`},
		{"prometheus uid", datasourcesFile, "uid: prometheus", "uid: prom", `no data source with uid "prometheus"`},
		{"influxql", datasourcesFile, "version: Flux", "version: InfluxQL", `jsonData.version "InfluxQL", want Flux`},
		{"wrong type", datasourcesFile, "type: prometheus", "type: loki", `prometheus: type "loki", want "prometheus"`},
		{"no token", datasourcesFile, "token: ${INFLUXDB_TOKEN}", "token: ''", "secureJsonData.token is empty"},
		{"variable not set", datasourcesFile, "token: ${INFLUXDB_TOKEN}", "token: ${INFLUX_TOKEN}", "reads INFLUX_TOKEN, which the grafana service does not set"},
		{"url host", datasourcesFile, "url: http://prometheus:9090", "url: http://prom:9090", "url host prom is not a compose service"},
		{"two defaults", datasourcesFile, "    editable: false\n    jsonData:\n      timeInterval: 15s", "    isDefault: true\n    jsonData:\n      timeInterval: 15s", "2 data sources are the default"},
		{"grafana does not wait", composeFile,
			"      prometheus:\n        condition: service_healthy\n\nvolumes:", "      prometheus:\n        condition: service_started\n\nvolumes:",
			"grafana: reads prometheus (data source prometheus) but does not depend on it being healthy"},
		{"provider path", dashboardsFile, "path: /var/lib/grafana/dashboards", "path: /etc/dashboards", "nothing is mounted at /etc/dashboards"},
		{"dashboards mounted from elsewhere", composeFile, "./deploy/grafana/dashboards:", "./deploy/dashboards:", "mounted from ./deploy/dashboards"},
		{"home dashboard", composeFile, "dashboards/metricpipe.json", "dashboards/home.json", "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH /var/lib/grafana/dashboards/home.json"},
	})
}
