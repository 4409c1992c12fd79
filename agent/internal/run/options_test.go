package run

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"github.com/flotilla-cd/flotilla/shared/envflag"
)

func TestWatchNamespacesOption(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     string
		want    []string
		wantErr string
	}{
		{name: "default: all namespaces", want: nil},
		{name: "flag", args: []string{"--watch-namespaces", "team-a,team-b"}, want: []string{"team-a", "team-b"}},
		{name: "environment", env: "team-a,team-b", want: []string{"team-a", "team-b"}},
		{name: "flag wins over environment", args: []string{"--watch-namespaces=team-c"}, env: "team-a", want: []string{"team-c"}},
		{name: "not a namespace name", args: []string{"--watch-namespaces", "team-a,Team_B"}, want: []string{"team-a", "Team_B"}, wantErr: `"Team_B" is not a namespace name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("FLOTILLA_WATCH_NAMESPACES", tc.env)
			}
			o := DefaultOptions()
			o.Hub, o.Cluster, o.Kubeconfig = "hub:443", "c1", "/dev/null"
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			o.BindFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if err := envflag.Apply(fs, "FLOTILLA"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, o.WatchNamespaces); diff != "" {
				t.Errorf("WatchNamespaces (-want +got):\n%s", diff)
			}
			err := o.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate() = %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}
