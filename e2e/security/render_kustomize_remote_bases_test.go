//go:build !unit

package security

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestRenderKustomizeRemoteBasesHostile replays, against a real hub
// started with --kustomize-remote-bases, what a repo writer may try once
// remote bases are on: a remote file (not a repository) in resources, a
// remote patch, credentials in a base's URL pointed at a server of the
// attacker's, a file:// base, and a base (in a real second repository)
// whose kustomization climbs out of its checkout with ../. Each app shows
// an error naming its kustomization file, the entry and the reason, and
// the attacker's server receives no request at all.
func TestRenderKustomizeRemoteBasesHostile(t *testing.T) {
	t.Parallel()
	lure, requests := countingServer(t)
	host := strings.TrimPrefix(lure.URL, "http://")

	srv, repo := gitRepo(t, "kz")
	lib, err := srv.NewRepo("lib", filepath.Join(t.TempDir(), "lib"))
	if err != nil {
		t.Fatal(err)
	}
	if err := lib.Write(map[string][]byte{"base/kustomization.yaml": []byte("resources:\n- ../../../../../../etc/hostname\n")}); err != nil {
		t.Fatal(err)
	}
	if _, err := lib.CommitAndPush("escaping base"); err != nil {
		t.Fatal(err)
	}

	cases := map[string]struct{ entry, field, why string }{
		"rawfile": {lure.URL + "/all.yaml", "resources", "not a git repository"},
		"patch":   {lure.URL + "/p.yaml", "patches[0].path", "remote loading is disabled"},
		"creds":   {"http://ci:stolen-token@" + host + "/org/r.git//x?ref=main", "resources", "credentials in the URL are refused"},
		"file":    {"file:///etc/kubernetes//x", "resources", "file:// URLs and local paths are not fetched"},
		"escape":  {lib.URL + "//base?ref=main", "resources", "outside the repository"},
	}
	files := map[string][]byte{}
	for name, c := range cases {
		k := fmt.Sprintf("resources:\n- %q\n", c.entry)
		if name == "patch" {
			k = fmt.Sprintf("resources: [cm.yaml]\npatches:\n- path: %q\n", c.entry)
		}
		files[name+"/kustomization.yaml"] = []byte(k)
		files[name+"/cm.yaml"] = []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: local\n")
	}
	h := hubWithKustomizations(t, repo, files, append(plainHTTPFlags(), "--kustomize-remote-bases")...)
	for name, c := range cases {
		msg := waitAppErrors(t, h, name, name+"/kustomization.yaml: "+c.field+": ", c.why)
		if strings.Contains(msg, "stolen-token") {
			t.Errorf("app %s error shows the token: %q", name, msg)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the attacker's server received %d requests, want none", n)
	}
}
