package deploy

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/metricpipe/metricpipe/shared/rules"
)

const k8sDir = "deploy/k8s"

// k8sObject is one Kubernetes object of the manifests.
type k8sObject struct {
	file       string
	kind, name string
	obj        map[string]any
}

func (o k8sObject) String() string { return fmt.Sprintf("%s: %s %s", o.file, o.kind, o.name) }

// k8sManifests is every object of deploy/k8s, by kind.
type k8sManifests map[string][]k8sObject

func (m k8sManifests) get(kind, name string) (k8sObject, bool) {
	for _, o := range m[kind] {
		if o.name == name {
			return o, true
		}
	}
	return k8sObject{}, false
}

// wantKinds is what deploy/k8s holds: the rules ConfigMap and two of
// settings (one all services load, one for the two that write to InfluxDB,
// so that each key is an option of every service that loads it).
var wantKinds = map[string]int{
	"Namespace": 1, "ConfigMap": 3, "Secret": 1, "Deployment": 3, "Service": 1,
	"PodDisruptionBudget": 2, "ScaledObject": 2,
}

var wantAPIVersion = map[string]string{
	"Namespace": "v1", "ConfigMap": "v1", "Secret": "v1", "Service": "v1", "Deployment": "apps/v1",
	"PodDisruptionBudget": "policy/v1", "ScaledObject": "keda.sh/v1alpha1",
}

// loadK8s parses the files kustomization.yaml lists, and reports a YAML
// file of the folder it does not list (kubectl apply -k would skip it).
func loadK8s(r *repo) (k8sManifests, problems) {
	var p problems
	data, err := r.read(k8sDir + "/kustomization.yaml")
	if err != nil {
		p.addf("%v", err)
		return nil, p
	}
	var kust struct {
		Namespace string   `yaml:"namespace"`
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(data, &kust); err != nil {
		p.addf("%s/kustomization.yaml: %v", k8sDir, err)
		return nil, p
	}
	entries, err := os.ReadDir(filepath.Join(r.root, k8sDir))
	if err != nil {
		p.addf("%v", err)
		return nil, p
	}
	listed := map[string]bool{}
	for _, res := range kust.Resources {
		listed[res] = true
	}
	for _, e := range entries {
		if n := e.Name(); (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) && n != "kustomization.yaml" && !listed[n] {
			p.addf("%s/%s is not listed in kustomization.yaml resources", k8sDir, n)
		}
	}
	m := k8sManifests{}
	for _, res := range kust.Resources {
		file := path.Join(k8sDir, res)
		data, err := r.read(file)
		if err != nil {
			p.addf("kustomization.yaml: %v", err)
			continue
		}
		docs, err := yamlDocs(data)
		if err != nil {
			p.addf("%s: %v", file, err)
			continue
		}
		for _, d := range docs {
			o := k8sObject{file: file, kind: strAt(d, "kind"), name: strAt(d, "metadata", "name"), obj: d}
			if want, ok := wantAPIVersion[o.kind]; !ok {
				p.addf("%s: unexpected kind %q", o, o.kind)
			} else if got := strAt(d, "apiVersion"); got != want {
				p.addf("%s: apiVersion %s, want %s", o, got, want)
			}
			m[o.kind] = append(m[o.kind], o)
		}
	}
	for _, kind := range sortedKeys(wantKinds) {
		if got := len(m[kind]); got != wantKinds[kind] {
			p.addf("%s: %d %s, want %d", k8sDir, got, kind, wantKinds[kind])
		}
	}
	if len(m["Namespace"]) == 1 {
		ns := m["Namespace"][0].name
		if kust.Namespace != "" && kust.Namespace != ns {
			p.addf("kustomization.yaml: namespace %s, but the Namespace is %s", kust.Namespace, ns)
		}
		for _, kind := range sortedKeys(m) {
			for _, o := range m[kind] {
				if got := strAt(o.obj, "metadata", "namespace"); kind != "Namespace" && got != ns {
					p.addf("%s: namespace %q, want %s", o, got, ns)
				}
			}
		}
	}
	return m, p
}

// deployment is what the checks need of a Deployment's only container.
type deployment struct {
	k8sObject
	inv       invocation
	env       map[string]string // resolved: ConfigMaps first, then env; "" for valueFrom
	container map[string]any
	ports     map[string]string // container port name → number
	labels    map[string]any    // of the pod template
}

func (d deployment) portOf(p any) string {
	s := fmt.Sprint(p)
	if n, ok := d.ports[s]; ok {
		return n
	}
	return s
}

// setting returns the value the service sees for env: its own, or the
// option's default.
func (d deployment) setting(opts options, env string) string {
	if v, ok := d.env[env]; ok {
		return v
	}
	return opts.defaultOf(d.inv, env)
}

// selects reports whether a label selector selects the pod template.
func (d deployment) selects(selector map[string]any) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if fmt.Sprint(d.labels[k]) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

// checkDeployment checks one Deployment and returns what later checks need.
func checkDeployment(p *problems, m k8sManifests, opts options, o k8sObject) (deployment, bool) {
	d := deployment{k8sObject: o, env: map[string]string{}, ports: map[string]string{}}
	spec := mapAt(o.obj, "spec", "template", "spec")
	d.labels = mapAt(o.obj, "spec", "template", "metadata", "labels")
	if !d.selects(mapAt(o.obj, "spec", "selector", "matchLabels")) {
		p.addf("%s: spec.selector does not select its pod template", o)
	}
	containers := listAt(spec, "containers")
	if len(containers) != 1 {
		p.addf("%s: %d containers, want 1", o, len(containers))
		return d, false
	}
	c, _ := containers[0].(map[string]any)
	d.container = c
	var argv []string
	for _, a := range append(listAt(c, "command"), listAt(c, "args")...) {
		argv = append(argv, fmt.Sprint(a))
	}
	inv, err := opts.parseArgv(argv)
	if err != nil {
		p.addf("%s: command %q: %v", o, argv, err)
		return d, false
	}
	d.inv = inv
	for _, port := range listAt(c, "ports") {
		d.ports[strAt(port, "name")] = strAt(port, "containerPort")
	}

	// Settings: every METRICPIPE_* name, from a ConfigMap or the
	// container's env, must be an option of this service and command.
	for _, src := range listAt(c, "envFrom") {
		name := strAt(src, "configMapRef", "name")
		if name == "" {
			p.addf("%s: envFrom other than a configMapRef is not checked", o)
			continue
		}
		cm, ok := m.get("ConfigMap", name)
		if !ok {
			p.addf("%s: envFrom ConfigMap %s: no such ConfigMap", o, name)
			continue
		}
		data := mapAt(cm.obj, "data")
		keys := sortedKeys(data)
		for _, k := range keys {
			d.env[k] = strAt(data, k)
		}
		opts.checkEnv(p, fmt.Sprintf("%s (from ConfigMap %s)", o, name), inv, keys)
	}
	var own []string
	for _, e := range listAt(c, "env") {
		name := strAt(e, "name")
		own = append(own, name)
		d.env[name] = strAt(e, "value")
	}
	opts.checkEnv(p, o.String(), inv, own)

	// Probes and scrapes reach the port METRICPIPE_HTTP_ADDR listens on.
	httpPort, err := listenPort(d.setting(opts, "METRICPIPE_HTTP_ADDR"))
	if err != nil {
		p.addf("%s: METRICPIPE_HTTP_ADDR: %v", o, err)
	} else {
		for _, probe := range []struct{ key, path string }{{"livenessProbe", "/healthz"}, {"readinessProbe", "/readyz"}} {
			get := mapAt(c, probe.key, "httpGet")
			if get == nil {
				p.addf("%s: no %s httpGet", o, probe.key)
				continue
			}
			if got := strAt(get, "path"); got != probe.path {
				p.addf("%s: %s GET %s, want %s", o, probe.key, got, probe.path)
			}
			if got := d.portOf(get["port"]); got != httpPort {
				p.addf("%s: %s port %v is %s, but METRICPIPE_HTTP_ADDR listens on %s", o, probe.key, get["port"], got, httpPort)
			}
		}
		ann := mapAt(o.obj, "spec", "template", "metadata", "annotations")
		if strAt(ann, "prometheus.io/scrape") != "true" {
			p.addf("%s: pod template lacks the annotation prometheus.io/scrape: \"true\"", o)
		}
		if got := strAt(ann, "prometheus.io/port"); got != httpPort {
			p.addf("%s: prometheus.io/port %q, but METRICPIPE_HTTP_ADDR listens on %s", o, got, httpPort)
		}
		if got := strAt(ann, "prometheus.io/path"); got != "" && got != "/metrics" {
			p.addf("%s: prometheus.io/path %s, the services serve /metrics", o, got)
		}
	}

	// Hardening and resources.
	if strAt(spec, "securityContext", "runAsNonRoot") != "true" && strAt(c, "securityContext", "runAsNonRoot") != "true" {
		p.addf("%s: runAsNonRoot is not true", o)
	}
	for _, sc := range []map[string]any{mapAt(spec, "securityContext"), mapAt(c, "securityContext")} {
		if uid := strAt(sc, "runAsUser"); uid == "0" {
			p.addf("%s: runAsUser 0", o)
		}
	}
	if strAt(c, "securityContext", "readOnlyRootFilesystem") != "true" {
		p.addf("%s: readOnlyRootFilesystem is not true", o)
	}
	if strAt(c, "securityContext", "allowPrivilegeEscalation") != "false" {
		p.addf("%s: allowPrivilegeEscalation is not false", o)
	}
	dropsAll := false
	for _, cap := range listAt(c, "securityContext", "capabilities", "drop") {
		dropsAll = dropsAll || cap == "ALL"
	}
	if !dropsAll {
		p.addf("%s: capabilities do not drop ALL", o)
	}
	for _, k := range []string{"requests", "limits"} {
		for _, r := range []string{"cpu", "memory"} {
			if strAt(c, "resources", k, r) == "" {
				p.addf("%s: no resources.%s.%s", o, k, r)
			}
		}
	}

	// Files named by settings are mounted from a Secret or ConfigMap key.
	for _, name := range sortedKeys(d.env) {
		if v := d.env[name]; v != "" && (strings.HasSuffix(name, "_FILE") || name == "METRICPIPE_RULES") {
			content, ok := mountedKey(p, m, d, spec, name, v)
			if ok && name == "METRICPIPE_RULES" {
				set, err := rules.Parse(v, []byte(content))
				if err != nil {
					p.addf("%s: the rules of METRICPIPE_RULES do not load: %v", o, err)
				} else if len(set.Rules) == 0 {
					p.addf("%s: the rules of METRICPIPE_RULES define no rule", o)
				}
			}
		}
	}

	// Stopping drains within --drain-timeout; the kubelet must wait longer.
	if _, drains := opts.allowed(inv)["METRICPIPE_DRAIN_TIMEOUT"]; drains {
		drain, err := time.ParseDuration(d.setting(opts, "METRICPIPE_DRAIN_TIMEOUT"))
		grace := 30 // the Kubernetes default
		if g := strAt(spec, "terminationGracePeriodSeconds"); g != "" {
			grace, _ = strconv.Atoi(g)
		}
		if err == nil && time.Duration(grace)*time.Second <= drain {
			p.addf("%s: terminationGracePeriodSeconds %d, not more than --drain-timeout %s: the pod would be killed while it drains", o, grace, drain)
		}
	}
	return d, true
}

// mountedKey finds the volume mounted where a setting's file is, checks the
// file is a key of the Secret or ConfigMap behind it, and returns the key's
// content.
func mountedKey(p *problems, m k8sManifests, d deployment, spec map[string]any, env, file string) (string, bool) {
	var mountPath, volume string
	for _, vm := range listAt(d.container, "volumeMounts") {
		mp := strings.TrimSuffix(strAt(vm, "mountPath"), "/")
		if strings.HasPrefix(file, mp+"/") && len(mp) > len(mountPath) {
			mountPath, volume = mp, strAt(vm, "name")
		}
	}
	if volume == "" {
		p.addf("%s: %s %s: no volume is mounted there", d, env, file)
		return "", false
	}
	rel := strings.TrimPrefix(file, mountPath+"/")
	for _, v := range listAt(spec, "volumes") {
		if strAt(v, "name") != volume {
			continue
		}
		kind, name, src := "Secret", strAt(v, "secret", "secretName"), mapAt(v, "secret")
		if name == "" {
			kind, name, src = "ConfigMap", strAt(v, "configMap", "name"), mapAt(v, "configMap")
		}
		obj, ok := m.get(kind, name)
		if !ok {
			p.addf("%s: volume %s: no %s %s", d, volume, kind, name)
			return "", false
		}
		key := rel
		if items := listAt(src, "items"); items != nil {
			key = ""
			for _, it := range items {
				if strAt(it, "path") == rel {
					key = strAt(it, "key")
				}
			}
			if key == "" {
				p.addf("%s: %s %s: volume %s has no item with path %s", d, env, file, volume, rel)
				return "", false
			}
		}
		for _, field := range []string{"data", "stringData"} {
			if data := mapAt(obj.obj, field); data != nil {
				if _, ok := data[key]; ok {
					return strAt(data, key), true
				}
			}
		}
		p.addf("%s: %s %s: %s has no key %s", d, env, file, obj, key)
		return "", false
	}
	p.addf("%s: %s: volume %s is not defined", d, env, volume)
	return "", false
}

// checkK8s checks the manifests of deploy/k8s.
func checkK8s(r *repo, opts options) problems {
	m, p := loadK8s(r)
	if m == nil {
		return p
	}
	// A ConfigMap loaded with envFrom holds settings only.
	envFrom := map[string]bool{}
	for _, o := range m["Deployment"] {
		for _, c := range listAt(o.obj, "spec", "template", "spec", "containers") {
			for _, src := range listAt(c, "envFrom") {
				envFrom[strAt(src, "configMapRef", "name")] = true
			}
		}
	}
	for _, cm := range m["ConfigMap"] {
		for _, k := range sortedKeys(mapAt(cm.obj, "data")) {
			if envFrom[cm.name] && !strings.HasPrefix(k, "METRICPIPE_") {
				p.addf("%s: %s is not a METRICPIPE_ variable: no service reads it", cm, k)
			}
		}
	}
	deps := map[string]deployment{}
	for _, o := range m["Deployment"] {
		if d, ok := checkDeployment(&p, m, opts, o); ok {
			deps[o.name] = d
		}
	}

	// The Service reaches the producer's write endpoint and metrics.
	for _, svc := range m["Service"] {
		selector := mapAt(svc.obj, "spec", "selector")
		var target *deployment
		for _, name := range sortedKeys(deps) {
			if d := deps[name]; d.selects(selector) {
				if target != nil {
					p.addf("%s: selects both %s and %s", svc, target.name, d.name)
				}
				target = &d
			}
		}
		if target == nil {
			p.addf("%s: selects no Deployment", svc)
			continue
		}
		exposed := map[string]bool{}
		for _, port := range listAt(svc.obj, "spec", "ports") {
			tp := mapAt(port)["targetPort"]
			if tp == nil {
				tp = mapAt(port)["port"]
			}
			n := target.portOf(tp)
			if !containsValue(target.ports, n) {
				p.addf("%s: targetPort %v is not a port of %s's container", svc, tp, target.name)
			}
			exposed[n] = true
		}
		for _, env := range []string{"METRICPIPE_HTTP_ADDR", "METRICPIPE_LISTEN"} {
			if _, ok := target.env[env]; !ok {
				continue
			}
			if port, err := listenPort(target.setting(opts, env)); err == nil && !exposed[port] {
				p.addf("%s: does not expose port %s (%s of %s)", svc, port, env, target.name)
			}
		}
	}

	// Consumer group members get a PodDisruptionBudget and a KEDA
	// ScaledObject on their group's lag.
	members := map[string]bool{}
	for name, d := range deps {
		if _, ok := opts.allowed(d.inv)["METRICPIPE_GROUP"]; ok {
			members[name] = true
		}
	}
	pdbs := map[string]int{}
	for _, pdb := range m["PodDisruptionBudget"] {
		n := 0
		for _, name := range sortedKeys(deps) {
			if deps[name].selects(mapAt(pdb.obj, "spec", "selector", "matchLabels")) {
				pdbs[name]++
				n++
			}
		}
		if n != 1 {
			p.addf("%s: selects %d Deployments, want 1", pdb, n)
		}
		if strAt(pdb.obj, "spec", "maxUnavailable") == "" && strAt(pdb.obj, "spec", "minAvailable") == "" {
			p.addf("%s: neither maxUnavailable nor minAvailable", pdb)
		}
	}
	scaled := map[string]int{}
	for _, so := range m["ScaledObject"] {
		target := strAt(so.obj, "spec", "scaleTargetRef", "name")
		if kind := strAt(so.obj, "spec", "scaleTargetRef", "kind"); kind != "" && kind != "Deployment" {
			p.addf("%s: scaleTargetRef kind %s, want Deployment", so, kind)
		}
		d, ok := deps[target]
		if !ok {
			p.addf("%s: scaleTargetRef %s: no such Deployment", so, target)
			continue
		}
		scaled[target]++
		if !members[target] {
			p.addf("%s: scales %s, which is not a consumer group member", so, target)
			continue
		}
		if strAt(d.obj, "spec", "replicas") != "" {
			p.addf("%s: sets spec.replicas: every apply would reset the count %s sets", d, so)
		}
		if got := strAt(so.obj, "spec", "minReplicaCount"); got != "1" {
			p.addf("%s: minReplicaCount %q, want 1", so, got)
		}
		partitions := d.setting(opts, "METRICPIPE_PARTITIONS")
		if got := strAt(so.obj, "spec", "maxReplicaCount"); got != partitions {
			p.addf("%s: maxReplicaCount %s, but the topic has %s partitions (METRICPIPE_PARTITIONS): want them equal: members beyond the partition count sit idle, fewer cannot give each partition its own member", so, got, partitions)
		}
		var kafka map[string]any
		for _, tr := range listAt(so.obj, "spec", "triggers") {
			if strAt(tr, "type") == "kafka" {
				kafka = mapAt(tr, "metadata")
			}
		}
		if kafka == nil {
			p.addf("%s: no kafka trigger", so)
			continue
		}
		for _, want := range []struct{ key, env string }{
			{"consumerGroup", "METRICPIPE_GROUP"}, {"topic", "METRICPIPE_TOPIC"}, {"bootstrapServers", "METRICPIPE_KAFKA_BROKERS"},
		} {
			if got, set := strAt(kafka, want.key), d.setting(opts, want.env); got != set {
				p.addf("%s: %s %s, but Deployment %s's %s is %s", so, want.key, got, target, want.env, set)
			}
		}
		if n, err := strconv.Atoi(strAt(kafka, "lagThreshold")); err != nil || n <= 0 {
			p.addf("%s: lagThreshold %q, want a positive integer (a string)", so, strAt(kafka, "lagThreshold"))
		}
	}
	for _, name := range sortedKeys(members) {
		if pdbs[name] != 1 {
			p.addf("Deployment %s: %d PodDisruptionBudgets, want 1", name, pdbs[name])
		}
		if scaled[name] != 1 {
			p.addf("Deployment %s: %d ScaledObjects, want 1", name, scaled[name])
		}
	}
	return p
}

func containsValue(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

func TestKubernetes(t *testing.T) {
	opts := loadOptions(t)
	check := func(r *repo) problems { return checkK8s(r, opts) }
	const (
		config   = k8sDir + "/config.yaml"
		producer = k8sDir + "/producer.yaml"
		consumer = k8sDir + "/consumer.yaml"
		analyzer = k8sDir + "/analyzer.yaml"
	)
	runBreakages(t, newRepo(t), check, []breakage{
		{"a kind missing", consumer, "kind: PodDisruptionBudget", "kind: PodDisruptionBudgetX", "deploy/k8s: 1 PodDisruptionBudget, want 2"},
		{"a file not in kustomization", k8sDir + "/kustomization.yaml", "  - analyzer.yaml\n", "", "deploy/k8s/analyzer.yaml is not listed"},
		{"yaml error", analyzer, "kind: ScaledObject", "kind: [ScaledObject", "deploy/k8s/analyzer.yaml: yaml"},
		{"wrong namespace", producer, "  name: producer\n  namespace: metricpipe", "  name: producer\n  namespace: default", `Deployment producer: namespace "default"`},
		{"liveness path", consumer, "path: /healthz", "path: /health", "livenessProbe GET /health, want /healthz"},
		{"readiness path", producer, "path: /readyz", "path: /healthz", "readinessProbe GET /healthz, want /readyz"},
		{"probe port", analyzer, "containerPort: 9103", "containerPort: 9104", "readinessProbe port http is 9104, but METRICPIPE_HTTP_ADDR listens on 9103"},
		{"loopback http address", consumer, "value: 0.0.0.0:9102", "value: 127.0.0.1:9102", "listens on loopback only"},
		{"scrape port", consumer, `prometheus.io/port: "9102"`, `prometheus.io/port: "9101"`, `prometheus.io/port "9101"`},
		{"ConfigMap key of another service", config, "  METRICPIPE_LOG_LEVEL: info\n", "  METRICPIPE_LOG_LEVEL: info\n  METRICPIPE_INFLUX_TIMEOUT: 30s\n",
			"Deployment producer (from ConfigMap metricpipe-kafka): METRICPIPE_INFLUX_TIMEOUT is not an option of `producer http`"},
		{"ConfigMap key without prefix", config, "  METRICPIPE_LOG_LEVEL: info\n", "  METRICPIPE_LOG_LEVEL: info\n  LOG_LEVEL: info\n", "LOG_LEVEL is not a METRICPIPE_ variable"},
		{"env of another subcommand", producer, `args: ["http"]`, `args: ["host"]`, "Deployment producer: METRICPIPE_LISTEN is not an option of `producer host`"},
		{"secret key missing", k8sDir + "/secret.yaml", "  influx-token: CHANGE-ME", "  influxdb-token: CHANGE-ME", "has no key influx-token"},
		{"secret file not mounted", consumer, "mountPath: /etc/metricpipe/secrets", "mountPath: /etc/metricpipe/secret", "METRICPIPE_INFLUX_TOKEN_FILE /etc/metricpipe/secrets/influx-token: no volume is mounted there"},
		{"rules do not load", k8sDir + "/rules-configmap.yaml", "absence: {for: 5m}", "absence: {for: 5d}", "the rules of METRICPIPE_RULES do not load"},
		{"rules not mounted", analyzer, "mountPath: /etc/metricpipe/rules", "mountPath: /etc/rules", "METRICPIPE_RULES /etc/metricpipe/rules/rules.yaml: no volume is mounted there"},
		{"writable root", producer, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "Deployment producer: readOnlyRootFilesystem is not true"},
		{"root allowed", analyzer, "runAsNonRoot: true", "runAsNonRoot: false", "Deployment analyzer: runAsNonRoot is not true"},
		{"capabilities kept", consumer, `drop: ["ALL"]`, `drop: ["NET_RAW"]`, "capabilities do not drop ALL"},
		{"no limits", producer, "            limits:\n              cpu: \"1\"\n", "            limits:\n", "no resources.limits.cpu"},
		{"grace shorter than drain", consumer, "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds 20, not more than --drain-timeout 30s"},
		{"service target port", producer, "targetPort: write", "targetPort: writes", "targetPort writes is not a port of producer's container"},
		{"service misses the write port", producer, "    - name: write\n      port: 8186\n      targetPort: write\n", "", "does not expose port 8186 (METRICPIPE_LISTEN of producer)"},
		{"keda group", consumer, "consumerGroup: metricpipe-consumer", "consumerGroup: metricpipe-analyzer",
			"ScaledObject consumer: consumerGroup metricpipe-analyzer, but Deployment consumer's METRICPIPE_GROUP is metricpipe-consumer"},
		{"keda group follows the deployment", analyzer, "value: metricpipe-analyzer", "value: metricpipe-analyzer-v2",
			"consumerGroup metricpipe-analyzer, but Deployment analyzer's METRICPIPE_GROUP is metricpipe-analyzer-v2"},
		{"keda topic", analyzer, "topic: metrics", "topic: metric", "topic metric, but Deployment analyzer's METRICPIPE_TOPIC is metrics"},
		{"keda brokers", consumer, "bootstrapServers: kafka-bootstrap.kafka.svc:9092", "bootstrapServers: kafka:9092", "bootstrapServers kafka:9092"},
		{"keda target", analyzer, "    name: analyzer\n  minReplicaCount", "    name: analyser\n  minReplicaCount", "scaleTargetRef analyser: no such Deployment"},
		{"keda max replicas", config, `METRICPIPE_PARTITIONS: "8"`, `METRICPIPE_PARTITIONS: "12"`, "maxReplicaCount 8, but the topic has 12 partitions"},
		{"keda min replicas", consumer, "minReplicaCount: 1", "minReplicaCount: 0", `minReplicaCount "0", want 1`},
		{"keda lag threshold", consumer, `lagThreshold: "50000"`, `lagThreshold: "lots"`, `lagThreshold "lots"`},
		{"replicas on a scaled deployment", consumer, "  revisionHistoryLimit: 5", "  replicas: 2\n  revisionHistoryLimit: 5", "sets spec.replicas"},
		{"pdb selects nothing", analyzer, "AlwaysAllow\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: metricpipe\n      app.kubernetes.io/component: analyzer",
			"AlwaysAllow\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: metricpipe\n      app.kubernetes.io/component: analyser",
			"Deployment analyzer: 0 PodDisruptionBudgets, want 1"},
	})
}
