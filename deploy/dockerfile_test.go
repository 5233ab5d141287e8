package deploy

import (
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with its continuation lines
// joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ARG, …
	args string
	line int
}

// parseDockerfile splits a Dockerfile into instructions, dropping comments
// and parser directives.
func parseDockerfile(src string) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || cur.Len() == 0 && trimmed == "" {
			continue // comments may also sit inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(body)
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " "), start})
		cur.Reset()
	}
	return out
}

// stage is one FROM … section of a Dockerfile.
type stage struct {
	from, name string
	ins        []instruction
}

func dockerStages(ins []instruction) []stage {
	var out []stage
	for _, in := range ins {
		if in.cmd == "FROM" {
			var words []string
			for _, w := range strings.Fields(in.args) {
				if !strings.HasPrefix(w, "--") {
					words = append(words, w)
				}
			}
			s := stage{}
			if len(words) > 0 {
				s.from = words[0]
			}
			if len(words) == 3 && strings.EqualFold(words[1], "AS") {
				s.name = words[2]
			}
			out = append(out, s)
			continue
		}
		if len(out) > 0 {
			out[len(out)-1].ins = append(out[len(out)-1].ins, in)
		}
	}
	return out
}

// goDirective returns the major.minor of go.mod's go line ("1.26").
func goDirective(gomod string) string {
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	if m == nil {
		return ""
	}
	return m[1]
}

// modulePath returns go.mod's module path.
func modulePath(gomod string) string {
	m := regexp.MustCompile(`(?m)^module (\S+)`).FindStringSubmatch(gomod)
	if m == nil {
		return ""
	}
	return m[1]
}

// imageUser returns the uid a Dockerfile stage (the last) runs as, or a
// problem.
func imageUser(st stage) (uid int, problem string) {
	user := ""
	for _, in := range st.ins {
		if in.cmd == "USER" {
			user = in.args
		}
	}
	if user == "" {
		return 0, "the final stage has no USER: the container would run as root"
	}
	name, _, _ := strings.Cut(user, ":")
	uid, err := strconv.Atoi(name)
	if err != nil {
		return 0, "USER " + user + ": want a numeric uid, so Kubernetes' runAsNonRoot can verify it"
	}
	if uid == 0 {
		return 0, "USER " + user + ": runs as root"
	}
	return uid, ""
}

// checkDockerfile checks the image build: static binaries of the three
// services and the probe, a version stamp matching the Makefile's, a
// non-root user, and a .dockerignore that keeps what the build needs.
func checkDockerfile(r *repo) problems {
	var p problems
	read := func(name string) string {
		b, err := r.read(name)
		if err != nil {
			p.addf("%v", err)
		}
		return string(b)
	}
	gomod, makefile, src := read("go.mod"), read("Makefile"), read("Dockerfile")
	if len(p) > 0 {
		return p
	}
	stages := dockerStages(parseDockerfile(src))
	if len(stages) < 2 {
		p.addf("Dockerfile: %d stages, want a build stage and a runtime stage", len(stages))
		return p
	}
	build, final := stages[0], stages[len(stages)-1]
	if want := "golang:" + goDirective(gomod); build.from != want && !strings.HasPrefix(build.from, want+"-") && !strings.HasPrefix(build.from, want+".") {
		p.addf("Dockerfile: build stage FROM %s, but go.mod says go %s: want %s", build.from, goDirective(gomod), want)
	}

	// The symbol the Makefile stamps is the one the image must stamp.
	symbol := modulePath(gomod) + "/shared/service.version"
	if !strings.Contains(makefile, "-X "+symbol+"=") {
		p.addf("Makefile: LDFLAGS does not stamp %s", symbol)
	}
	var buildRun *instruction
	argVersion := false
	for i, in := range build.ins {
		if in.cmd == "ARG" && (in.args == "VERSION" || strings.HasPrefix(in.args, "VERSION=")) {
			argVersion = true
		}
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			buildRun = &build.ins[i]
			if !argVersion {
				p.addf("Dockerfile:%d: go build runs before ARG VERSION is declared in its stage: the stamp would be empty", in.line)
			}
		}
	}
	if buildRun == nil {
		p.addf("Dockerfile: the build stage has no RUN … go build")
		return p
	}
	run := buildRun.args
	if !strings.Contains(run, "CGO_ENABLED=0") {
		p.addf("Dockerfile:%d: go build without CGO_ENABLED=0: the binaries would need libc, which the distroless static image lacks", buildRun.line)
	}
	words := strings.Fields(run)
	for _, pkg := range []string{"./producer", "./consumer", "./analyzer", "./deploy/healthcheck"} {
		found := false
		for _, w := range words {
			found = found || w == pkg
		}
		if !found {
			p.addf("Dockerfile:%d: go build does not build %s", buildRun.line, pkg)
		}
	}
	stamp := regexp.MustCompile(`-ldflags\s+"[^"]*-X ` + regexp.QuoteMeta(symbol) + `=\$\{?VERSION\}?`)
	if !stamp.MatchString(run) {
		p.addf("Dockerfile:%d: -ldflags does not stamp -X %s=${VERSION}", buildRun.line, symbol)
	}

	if _, problem := imageUser(final); problem != "" {
		p.addf("Dockerfile: %s", problem)
	}
	copied := false
	labels := ""
	finalArgs := map[string]bool{}
	for _, in := range final.ins {
		switch in.cmd {
		case "COPY":
			copied = copied || strings.Contains(in.args, "--from="+build.name)
		case "LABEL":
			labels += " " + in.args
		case "ARG":
			n, _, _ := strings.Cut(in.args, "=")
			finalArgs[n] = true
		}
	}
	if !copied {
		p.addf("Dockerfile: the final stage does not COPY --from=%s", build.name)
	}
	for _, l := range []string{"org.opencontainers.image.title", "org.opencontainers.image.source", "org.opencontainers.image.version"} {
		if !strings.Contains(labels, l+"=") {
			p.addf("Dockerfile: no LABEL %s", l)
		}
	}
	if strings.Contains(labels, "${VERSION}") && !finalArgs["VERSION"] {
		p.addf("Dockerfile: a LABEL uses ${VERSION} but the final stage declares no ARG VERSION (ARGs are per stage): it would be empty")
	}

	// .dockerignore must keep what the build compiles.
	ignore := read(".dockerignore")
	for _, f := range []string{"go.mod", "go.sum", "producer/main.go", "consumer/main.go", "analyzer/main.go",
		"deploy/healthcheck/main.go", "shared/service/version.go"} {
		if dockerIgnored(ignore, f) {
			p.addf(".dockerignore excludes %s, which the build needs", f)
		}
	}
	if !dockerIgnored(ignore, ".git/HEAD") {
		p.addf(".dockerignore does not exclude .git")
	}
	return p
}

// dockerIgnored reports whether the .dockerignore patterns exclude file:
// the last matching pattern decides, ! re-includes, a pattern matching a
// directory excludes what is under it.
func dockerIgnored(patterns, file string) bool {
	ignored := false
	for _, line := range strings.Split(patterns, "\n") {
		pat := strings.TrimSpace(line)
		if pat == "" || strings.HasPrefix(pat, "#") {
			continue
		}
		negate := strings.HasPrefix(pat, "!")
		pat = path.Clean(strings.TrimPrefix(strings.TrimPrefix(pat, "!"), "/"))
		re := regexp.MustCompile("^" + globRegexp(pat) + "(/.*)?$")
		if re.MatchString(file) {
			ignored = !negate
		}
	}
	return ignored
}

// globRegexp translates a .dockerignore pattern: ** any number of
// directories, * and ? within one path element.
func globRegexp(pat string) string {
	var b strings.Builder
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; {
		case strings.HasPrefix(pat[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(pat[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}

func TestDockerfile(t *testing.T) {
	runBreakages(t, newRepo(t), checkDockerfile, []breakage{
		{"cgo", "Dockerfile", "CGO_ENABLED=0", "CGO_ENABLED=1", "without CGO_ENABLED=0"},
		{"a service not built", "Dockerfile", " ./analyzer ./deploy/healthcheck", " ./deploy/healthcheck", "does not build ./analyzer"},
		{"probe not built", "Dockerfile", " ./deploy/healthcheck\n", "\n", "does not build ./deploy/healthcheck"},
		{"root", "Dockerfile", "USER 65532:65532", "USER root", "USER root: want a numeric uid"},
		{"uid 0", "Dockerfile", "USER 65532:65532", "USER 0:0", "runs as root"},
		{"no user", "Dockerfile", "USER 65532:65532\n", "", "no USER"},
		{"wrong version symbol", "Dockerfile", "shared/service.version=${VERSION}", "shared/service.Version=${VERSION}", "-ldflags does not stamp"},
		{"VERSION not declared", "Dockerfile", "ARG VERSION=dev\nRUN --mount", "RUN --mount", "before ARG VERSION"},
		{"go version", "Dockerfile", "golang:1.26 AS build", "golang:1.25 AS build", "go.mod says go 1.26"},
		{"label", "Dockerfile", "org.opencontainers.image.version=", "org.opencontainers.image.versio=", "no LABEL org.opencontainers.image.version"},
		{"label version empty", "Dockerfile", "ARG VERSION=dev\nARG REVISION=", "ARG REVISION=", "declares no ARG VERSION"},
		{"dockerignore drops the probe", ".dockerignore", ".git\n", ".git\ndeploy\n", "excludes deploy/healthcheck/main.go"},
		{"dockerignore keeps .git", ".dockerignore", ".git\n", "", "does not exclude .git"},
	})
}

func TestDockerIgnored(t *testing.T) {
	f := func(patterns, file string, want bool) {
		t.Helper()
		if got := dockerIgnored(patterns, file); got != want {
			t.Errorf("dockerIgnored(%q, %q) = %v, want %v", patterns, file, got, want)
		}
	}
	f(".git", ".git/HEAD", true)
	f("bin", "bin/demo", true)
	f("bin", "shared/bin/x.go", false)
	f("**/testdata", "shared/rules/testdata/example.yaml", true)
	f("**/*.md", "README.md", true)
	f("**/*.md", "deploy/k8s/README.md", true)
	f("*.md", "deploy/k8s/README.md", false)
	f("deploy/k8s", "deploy/healthcheck/main.go", false)
	f("deploy\n!deploy/healthcheck", "deploy/healthcheck/main.go", false)
}
