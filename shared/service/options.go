package service

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// Option is one flag of a service as the docs and deployment checks see
// it.
type Option struct {
	Command  string   `json:"command,omitempty"` // "" for the service's own flags, else "synthetic", "alerts tail", …
	Flag     string   `json:"flag"`
	Env      []string `json:"env,omitempty"`
	Default  string   `json:"default,omitempty"`
	Usage    string   `json:"usage"`
	Category string   `json:"category,omitempty"`
}

// ListOptions returns every flag of app and of its commands, in definition
// order, without --help and --version.
func ListOptions(app *cli.App) []Option {
	var out []Option
	var walk func(cmd string, flags []cli.Flag, cmds []*cli.Command)
	walk = func(cmd string, flags []cli.Flag, cmds []*cli.Command) {
		for _, f := range flags {
			o := Option{Command: cmd, Flag: f.Names()[0]}
			if o.Flag == "help" || o.Flag == "version" {
				continue
			}
			if df, ok := f.(cli.DocGenerationFlag); ok {
				o.Usage = df.GetUsage()
				o.Env = df.GetEnvVars()
				if df.TakesValue() {
					o.Default = df.GetValue()
				}
				if t := df.GetDefaultText(); t != "" {
					o.Default = t
				}
				// String defaults come quoted.
				o.Default = strings.Trim(o.Default, `"`)
			}
			if cf, ok := f.(cli.CategorizableFlag); ok {
				o.Category = cf.GetCategory()
			}
			out = append(out, o)
		}
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			walk(strings.TrimSpace(cmd+" "+c.Name), c.Flags, c.Subcommands)
		}
	}
	walk("", app.Flags, app.Commands)
	return out
}

// optionsCommand prints ListOptions of the running app as JSON or as a
// Markdown table. It is hidden: the reference docs (`make docs`) and the
// deployment tests call it, so neither can drift from the flags.
func optionsCommand() *cli.Command {
	return &cli.Command{
		Name:   "options",
		Usage:  "print every option with its environment variable and default",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "json", Usage: "json or markdown", EnvVars: EnvVars("format")},
		},
		Action: func(c *cli.Context) error {
			opts := ListOptions(c.App)
			switch c.String("format") {
			case "json":
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(opts)
			case "markdown":
				return writeMarkdown(c.App.Writer, c.App.Name, opts)
			}
			return fmt.Errorf("--format %q: want json or markdown", c.String("format"))
		},
	}
}

// writeMarkdown writes one table per command of the service.
func writeMarkdown(w io.Writer, service string, opts []Option) error {
	var b strings.Builder
	cmd := "\x00"
	for _, o := range opts {
		if o.Command != cmd {
			cmd = o.Command
			fmt.Fprintf(&b, "\n### `%s`\n\n", strings.TrimSpace(service+" "+cmd))
			b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
		}
		def := o.Default
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", o.Flag, strings.Join(o.Env, "`, `"), def, strings.ReplaceAll(o.Usage, "|", `\|`))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
