package service

import (
	"errors"
	"fmt"
	"slices"

	"github.com/urfave/cli/v2"
)

// Options lists every flag of app and its subcommands with its environment
// variables, keyed by "command flag" ("synthetic rate"; top-level flags have
// no command). Docs generation and tests use it so they cannot drift from the
// CLI definitions.
func Options(app *cli.App) map[string][]string {
	out := map[string][]string{}
	var walk func(prefix string, flags []cli.Flag, cmds []*cli.Command)
	walk = func(prefix string, flags []cli.Flag, cmds []*cli.Command) {
		for _, f := range flags {
			name := f.Names()[0]
			var env []string
			if ef, ok := f.(interface{ GetEnvVars() []string }); ok {
				env = ef.GetEnvVars()
			}
			out[prefix+name] = env
		}
		for _, c := range cmds {
			walk(prefix+c.Name+" ", c.Flags, c.Subcommands)
		}
	}
	walk("", app.Flags, app.Commands)
	return out
}

// CheckFlagEnv reports every flag of app whose environment variable is not
// the one EnvVars derives from its name. --help and --version are exempt.
func CheckFlagEnv(app *cli.App) error {
	var errs []error
	for key, env := range Options(app) {
		name := key[lastSpace(key)+1:]
		if name == "help" || name == "version" {
			continue
		}
		if want := EnvVars(name); !slices.Equal(env, want) {
			errs = append(errs, fmt.Errorf("flag %q: environment %v, want %v", key, env, want))
		}
	}
	return errors.Join(errs...)
}

func lastSpace(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ' ' {
			return i
		}
	}
	return -1
}
