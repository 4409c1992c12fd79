package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// The git flags: a token needs the URL prefix it is for; credentials over
// plain http, bad sizes and bad files are refused before the hub starts.
func TestGitOptionsValidate(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := func(body string) string {
		p := filepath.Join(t.TempDir(), "creds.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"defaults", nil, ""},
		{"token with its prefix", []string{"--git-token-file", token, "--git-token-url", "https://git.example.com/org/"}, ""},
		{"token without a prefix", []string{"--git-token-file", token}, "needs --git-token-url"},
		{"token for plain http", []string{"--git-token-file", token, "--git-token-url", "http://git.example.com/"}, "never sent over plain http"},
		{"prefix without a token", []string{"--git-token-url", "https://git.example.com/"}, "without --git-token-file"},
		{"credentials file", []string{"--git-credentials-file", creds("credentials:\n  - url: https://github.com/org/\n    tokenFile: " + token + "\n")}, ""},
		{"credentials file over http", []string{"--git-credentials-file", creds("credentials:\n  - url: http://github.com/org/\n    tokenFile: " + token + "\n")}, "plain http"},
		{"credentials file with an unknown field", []string{"--git-credentials-file", creds("credentials:\n  - url: https://github.com/org/\n    token: abc\n")}, "unknown field"},
		{"missing CA file", []string{"--git-ca-file", filepath.Join(dir, "none.pem")}, "git CA file"},
		{"CA file without certificates", []string{"--git-ca-file", token}, "no PEM certificate"},
		{"bad size", []string{"--git-max-fetch-size", "lots"}, "--git-max-fetch-size"},
		{"no size limit", []string{"--git-max-fetch-size", "0"}, ""},
		{"zero timeout", []string{"--git-list-timeout", "0s"}, "must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultGitOptions()
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			o.BindFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate: %v; want an error saying %q", err, tc.wantErr)
			}
		})
	}
}
