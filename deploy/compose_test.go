package deploy

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/metricpipe/metricpipe/shared/rules"
)

const (
	composeFile = "docker-compose.yml"
	envExample  = ".env.example"
	// probeBinary is what the image's deploy/healthcheck is built as.
	probeBinary = "healthcheck"
)

// hostOf returns the host of an address such as "kafka:9092,b:9092" (the
// first) or "http://influxdb:8086".
func hostOf(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		return u.Hostname()
	}
	first, _, _ := strings.Cut(addr, ",")
	host, _, _ := strings.Cut(first, ":")
	return host
}

// checkCompose checks docker-compose.yml with the files it names.
func checkCompose(r *repo, opts options) problems {
	c, p := loadCompose(r)
	if c == nil {
		return p
	}
	hostPorts := map[string]string{} // "9101/tcp" → service
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if h := s.Healthcheck; h == nil || h.Disable || len(h.Test) == 0 || h.Test[0] == "NONE" {
			p.addf("%s: no healthcheck: depends_on service_healthy cannot wait for it", name)
		}
		for _, dep := range sortedKeys(s.DependsOn) {
			cond := s.DependsOn[dep]
			if _, ok := c.Services[dep]; !ok {
				p.addf("%s: depends_on %s: no such service", name, dep)
			}
			switch cond {
			case "service_healthy", "service_started", "service_completed_successfully":
			case "":
				p.addf("%s: depends_on %s without a condition: it would start as soon as %s's container does, before it is ready", name, dep, dep)
			default:
				p.addf("%s: depends_on %s: unknown condition %q", name, dep, cond)
			}
		}
		ports, err := s.published()
		if err != nil {
			p.addf("%s: %v", name, err)
		}
		for _, pub := range ports {
			key := pub.port + "/" + pub.proto
			if other, dup := hostPorts[key]; dup {
				p.addf("host port %s published by both %s and %s", key, other, name)
			}
			hostPorts[key] = name
		}
		mounts, err := s.mounts()
		if err != nil {
			p.addf("%s: %v", name, err)
		}
		for _, m := range mounts {
			if isBind(m.source) {
				if !r.exists(m.source) {
					p.addf("%s: mounts %s, which does not exist in the repository", name, path.Clean(m.source))
				}
			} else if _, ok := c.Volumes[m.source]; !ok {
				p.addf("%s: volume %s is not declared under the top-level volumes", name, m.source)
			}
		}
		if ctx := s.Build.Context; ctx != "" {
			checkBuild(&p, r, name, s.Build)
		}
	}

	mp := c.metricpipeServices()
	if len(mp) == 0 {
		p.addf("no service builds the metricpipe image")
	}
	httpPorts := map[string]string{} // service → port of METRICPIPE_HTTP_ADDR
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if slices.Contains(mp, name) {
			continue
		}
		for _, env := range sortedKeys(s.Environment) {
			if strings.HasPrefix(env, "METRICPIPE_") {
				p.addf("%s: sets %s but does not run metricpipe", name, env)
			}
		}
	}
	for _, name := range mp {
		s := c.Services[name]
		inv, err := opts.parseArgv(s.Command)
		if err != nil {
			p.addf("%s: command %q: %v", name, s.Command, err)
			continue
		}
		opts.checkEnv(&p, name, inv, sortedKeys(s.Environment))

		addr, ok := s.Environment["METRICPIPE_HTTP_ADDR"]
		if !ok {
			addr = opts.defaultOf(inv, "METRICPIPE_HTTP_ADDR")
		}
		port, err := listenPort(addr)
		if err != nil {
			p.addf("%s: METRICPIPE_HTTP_ADDR: %v", name, err)
		} else {
			httpPorts[name] = port
		}
		// The image is distroless: no shell, no curl. Only the probe
		// binary built from deploy/healthcheck can run.
		if h := s.Healthcheck; h != nil && len(h.Test) > 0 {
			if h.Test[0] != "CMD" || len(h.Test) < 2 || path.Base(h.Test[1]) != probeBinary {
				p.addf("%s: healthcheck %q: the image has no shell and no curl: use [\"CMD\", %q]", name, h.Test, probeBinary)
			}
		}
		// Every service the settings point at must be up and healthy
		// before this one starts.
		for _, env := range []string{"METRICPIPE_KAFKA_BROKERS", "METRICPIPE_INFLUX_URL"} {
			v, ok := s.Environment[env]
			if !ok {
				continue
			}
			host := hostOf(v)
			if _, isService := c.Services[host]; !isService {
				continue
			}
			if s.DependsOn[host] != "service_healthy" {
				p.addf("%s: reaches %s (%s) but does not depend on it being healthy", name, host, env)
			}
		}
		if f, ok := s.Environment["METRICPIPE_RULES"]; ok {
			m, ok := s.mountOf(f)
			if !ok {
				p.addf("%s: METRICPIPE_RULES %s is not mounted", name, f)
				continue
			}
			data, err := r.read(m.source)
			if err != nil {
				p.addf("%s: rules: %v", name, err)
				continue
			}
			if _, err := rules.Parse(m.source, data); err != nil {
				p.addf("%s: rules %s do not load: %v", name, m.source, err)
			}
		}
	}
	checkPrometheus(&p, r, c, httpPorts)
	return p
}

// checkBuild checks that a service's build context has the Dockerfile and
// that every build arg is an ARG of it.
func checkBuild(p *problems, r *repo, name string, b composeBuild) {
	df := b.Dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	dockerfile := path.Join(b.Context, df)
	data, err := r.read(dockerfile)
	if err != nil {
		p.addf("%s: build: %v", name, err)
		return
	}
	args := map[string]bool{}
	for _, ins := range parseDockerfile(string(data)) {
		if ins.cmd == "ARG" {
			for _, a := range strings.Fields(ins.args) {
				n, _, _ := strings.Cut(a, "=")
				args[n] = true
			}
		}
	}
	for _, a := range sortedKeys(b.Args) {
		if !args[a] {
			p.addf("%s: build arg %s is not an ARG of %s", name, a, dockerfile)
		}
	}
}

// checkPrometheus checks that the Prometheus the Compose file runs scrapes
// each metricpipe service on the port it listens on, and nothing stale.
func checkPrometheus(p *problems, r *repo, c *compose, httpPorts map[string]string) {
	var cfgPath string
	for _, name := range sortedKeys(c.Services) {
		if m, ok := c.Services[name].mountOf("/etc/prometheus/prometheus.yml"); ok {
			cfgPath = m.source
		}
	}
	if cfgPath == "" {
		p.addf("no service mounts a Prometheus configuration at /etc/prometheus/prometheus.yml")
		return
	}
	data, err := r.read(cfgPath)
	if err != nil {
		p.addf("prometheus: %v", err)
		return
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		p.addf("%s: %v", cfgPath, err)
		return
	}
	scraped := map[string]bool{}
	for _, sc := range listAt(cfg, "scrape_configs") {
		job := strAt(sc, "job_name")
		if mp := strAt(sc, "metrics_path"); mp != "" && mp != "/metrics" {
			p.addf("%s: job %s: metrics_path %s, the services serve /metrics", cfgPath, job, mp)
		}
		for _, st := range listAt(sc, "static_configs") {
			for _, t := range listAt(st, "targets") {
				target := fmt.Sprint(t)
				scraped[target] = true
				host, port, _ := strings.Cut(target, ":")
				if want, ok := httpPorts[host]; ok && port != want {
					p.addf("%s: job %s scrapes %s, but %s listens on %s", cfgPath, job, target, host, want)
				}
			}
		}
	}
	for _, name := range sortedKeys(httpPorts) {
		if target := name + ":" + httpPorts[name]; !scraped[target] {
			p.addf("%s does not scrape %s", cfgPath, target)
		}
	}
}

func TestCompose(t *testing.T) {
	opts := loadOptions(t)
	r := newRepo(t)
	check := func(r *repo) problems { return checkCompose(r, opts) }
	runBreakages(t, r, check, []breakage{
		{"no healthcheck", composeFile,
			"    healthcheck:\n      test: [\"CMD\", \"wget\"", "    x-healthcheck:\n      test: [\"CMD\", \"wget\"",
			"prometheus: no healthcheck"},
		{"depends_on without condition", composeFile,
			"    depends_on:\n      influxdb:\n        condition: service_healthy\n      prometheus:\n        condition: service_healthy",
			"    depends_on: [influxdb, prometheus]",
			"grafana: depends_on influxdb without a condition"},
		{"depends_on unknown service", composeFile,
			"    depends_on:\n      kafka:\n        condition: service_healthy\n\n  consumer:",
			"    depends_on:\n      kafak:\n        condition: service_healthy\n\n  consumer:",
			"producer: depends_on kafak: no such service"},
		{"missing dependency", composeFile,
			"      kafka:\n        condition: service_healthy\n      influxdb:\n        condition: service_healthy\n\n  analyzer:",
			"      kafka:\n        condition: service_healthy\n\n  analyzer:",
			"consumer: reaches influxdb (METRICPIPE_INFLUX_URL) but does not depend on it being healthy"},
		{"host port collision", composeFile,
			`"${BIND_ADDRESS:-127.0.0.1}:${CONSUMER_PORT:-9102}:9102"`, `"${BIND_ADDRESS:-127.0.0.1}:${PRODUCER_PORT:-9101}:9102"`,
			"host port 9101/tcp published by both consumer and producer"},
		{"option of another service", composeFile,
			"      METRICPIPE_SERIES:", "      METRICPIPE_INFLUX_URL: http://influxdb:8086\n      METRICPIPE_SERIES:",
			"producer: METRICPIPE_INFLUX_URL is not an option of `producer synthetic`"},
		{"option of another subcommand", composeFile,
			`command: ["producer", "synthetic"]`, `command: ["producer", "host"]`,
			"producer: METRICPIPE_SERIES is not an option of `producer host`"},
		{"unknown flag", composeFile,
			`command: ["consumer"]`, `command: ["consumer", "--influx-bukket", "metricpipe"]`,
			"consumer: --influx-bukket is not a flag of `consumer`"},
		{"variable missing from .env.example", envExample,
			"GRAFANA_PORT=3000\n", "",
			"${GRAFANA_PORT} is not in .env.example"},
		{"unused .env.example variable", envExample,
			"LOG_LEVEL=info\n", "LOG_LEVEL=info\nUNUSED_SETTING=1\n",
			"UNUSED_SETTING is never used"},
		{"default differs from .env.example", composeFile,
			"${PRODUCER_RATE:-200}", "${PRODUCER_RATE:-100}",
			`PRODUCER_RATE: default "100" differs from "200"`},
		{"no default", composeFile,
			"${LOG_LEVEL:-info}", "${LOG_LEVEL}",
			"${LOG_LEVEL} has no default"},
		{"mounted file missing", composeFile,
			"./deploy/rules.yaml:", "./deploy/rule.yaml:",
			"analyzer: mounts deploy/rule.yaml, which does not exist"},
		{"undeclared volume", composeFile,
			"      - grafana-data:/var/lib/grafana", "      - grafana-state:/var/lib/grafana",
			"grafana: volume grafana-state is not declared"},
		{"loopback http address", composeFile,
			"METRICPIPE_HTTP_ADDR: 0.0.0.0:9103", "METRICPIPE_HTTP_ADDR: 127.0.0.1:9103",
			"analyzer: METRICPIPE_HTTP_ADDR: \"127.0.0.1:9103\" listens on loopback only"},
		{"shell healthcheck in distroless", composeFile,
			`test: ["CMD", "healthcheck"]`, `test: ["CMD-SHELL", "curl -f http://localhost:9101/readyz"]`,
			"the image has no shell and no curl"},
		{"rules do not load", "deploy/rules.yaml",
			"anomaly: {score: 0.3}", "anomaly: {score: 1.5}",
			"analyzer: rules ./deploy/rules.yaml do not load"},
		{"prometheus scrapes the wrong port", "deploy/prometheus/prometheus.yml",
			`"consumer:9102"`, `"consumer:9112"`,
			"deploy/prometheus/prometheus.yml does not scrape consumer:9102"},
		{"prometheus scrapes a moved service", composeFile,
			"METRICPIPE_HTTP_ADDR: 0.0.0.0:9102", "METRICPIPE_HTTP_ADDR: 0.0.0.0:9112",
			"job consumer scrapes consumer:9102, but consumer listens on 9112"},
		{"build arg the Dockerfile lacks", composeFile,
			"VERSION: ${APP_VERSION:-dev}", "VERSON: ${APP_VERSION:-dev}",
			"build arg VERSON is not an ARG of Dockerfile"},
	})
}
