package service

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// Options lists every flag of app and its subcommands with its environment
// variables, keyed by "command flag" ("synthetic rate"; top-level flags have
// no command).
func Options(app *cli.App) map[string][]string {
	out := map[string][]string{}
	for _, o := range ListOptions(app) {
		out[strings.TrimSpace(o.Command+" "+o.Flag)] = o.Env
	}
	return out
}

// CheckFlagEnv reports every flag of app whose environment variable is not
// the one EnvVars derives from its name.
func CheckFlagEnv(app *cli.App) error {
	var errs []error
	for _, o := range ListOptions(app) {
		if want := EnvVars(o.Flag); !slices.Equal(o.Env, want) {
			errs = append(errs, fmt.Errorf("flag %q: environment %v, want %v", strings.TrimSpace(o.Command+" "+o.Flag), o.Env, want))
		}
	}
	return errors.Join(errs...)
}
