package service

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func optionsApp(out *bytes.Buffer) *cli.App {
	app := NewApp("svc", "test", out, out)
	app.Flags = []cli.Flag{
		&cli.StringFlag{Name: "topic", Value: "metrics", Usage: "the topic", EnvVars: EnvVars("topic"), Category: "Kafka"},
		&cli.BoolFlag{Name: "json", Usage: "a | pipe", EnvVars: EnvVars("json")},
	}
	app.Commands = []*cli.Command{{Name: "tail", Flags: []cli.Flag{
		&cli.DurationFlag{Name: "wait", Value: time.Second, Usage: "how long", EnvVars: EnvVars("wait")},
	}}, {Name: "secret", Hidden: true, Flags: []cli.Flag{&cli.IntFlag{Name: "n"}}}}
	return app
}

func TestOptionsCommand(t *testing.T) {
	var out bytes.Buffer
	if code := Main(optionsApp(&out), []string{"svc", "options"}); code != 0 {
		t.Fatalf("options: code %d: %s", code, out.String())
	}
	var got []Option
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := []Option{
		{Flag: "topic", Env: []string{"METRICPIPE_TOPIC"}, Default: "metrics", Usage: "the topic", Category: "Kafka"},
		{Flag: "json", Env: []string{"METRICPIPE_JSON"}, Default: "false", Usage: "a | pipe"},
		{Command: "tail", Flag: "wait", Env: []string{"METRICPIPE_WAIT"}, Default: "1s", Usage: "how long"},
	}
	if len(got) != len(want) {
		t.Fatalf("options %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Command != w.Command || g.Flag != w.Flag || strings.Join(g.Env, ",") != strings.Join(w.Env, ",") ||
			g.Default != w.Default || g.Usage != w.Usage || g.Category != w.Category {
			t.Errorf("option %d = %+v, want %+v", i, g, w)
		}
	}
	out.Reset()
	if code := Main(optionsApp(&out), []string{"svc", "options", "--format", "markdown"}); code != 0 {
		t.Fatalf("options --format markdown: code %d", code)
	}
	for _, line := range []string{"### `svc`", "| `--topic` | `METRICPIPE_TOPIC` | `metrics` | the topic |", `| a \| pipe |`,
		"### `svc tail`", "| `--wait` | `METRICPIPE_WAIT` | `1s` | how long |"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("markdown lacks %q:\n%s", line, out.String())
		}
	}
}
