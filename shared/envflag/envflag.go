// Package envflag lets every command-line flag also be set from an
// environment variable: --apps-dir from FLOTILLA_APPS_DIR, and so on. A flag
// given on the command line wins over the environment.
package envflag

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// Name returns the environment variable for flag name under prefix
// ("FLOTILLA", "apps-dir" → "FLOTILLA_APPS_DIR").
func Name(prefix, flag string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Apply sets every flag of fs that was not given on the command line from
// its environment variable, if that is set. Call it after fs.Parse.
func Apply(fs *pflag.FlagSet, prefix string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		v, ok := os.LookupEnv(Name(prefix, f.Name))
		if !ok {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("environment %s: %w", Name(prefix, f.Name), serr)
		}
	})
	return err
}
