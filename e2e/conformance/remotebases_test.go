//go:build !unit

package conformance

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKustomizeRemoteBase: an Argo CD Application whose kustomization is
// built from two folders of a second repository, as Argo CD users write
// remote bases: one pinned by tag (https://host/org/repo.git//base?ref=v1.0.0),
// one following a branch (git::...//extra?ref=main). The hub, started
// with --kustomize-remote-bases, fetches them through its own git mirror;
// the app converges on the cluster. Then a commit on the second
// repository's main, with no commit in the app's repository and no
// webhook: after `flotilla app refresh` the branch folder rolls out, the
// tagged one stays as tagged.
func TestKustomizeRemoteBase(t *testing.T) {
	c := NewCase(t, "remote-base")
	lib, err := c.S.Git.NewRepo(c.Name+"-lib", filepath.Join(t.TempDir(), "lib"))
	if err != nil {
		t.Fatal(err)
	}
	cm := func(name, from string) []byte {
		return []byte(fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\ndata: {from: %s}\n", name, from))
	}
	write := func(files map[string][]byte) string {
		t.Helper()
		if err := lib.Write(files); err != nil {
			t.Fatal(err)
		}
		rev, err := lib.CommitAndPush("lib")
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	write(map[string][]byte{
		"base/kustomization.yaml":  []byte("resources: [cm.yaml]\n"),
		"base/cm.yaml":             cm("base", "tag-v1.0.0"),
		"extra/kustomization.yaml": []byte("resources: [cm.yaml]\n"),
		"extra/cm.yaml":            cm("extra", "main-1"),
	})
	if err := lib.TagAndPush("v1.0.0"); err != nil {
		t.Fatal(err)
	}
	c.Commit(map[string]string{"overlay/kustomization.yaml": fmt.Sprintf("namePrefix: app-\nresources:\n- %s//base?ref=v1.0.0\n- git::%s//extra?ref=main\n", lib.URL, lib.URL)})
	c.Define(c.ArgoApplication("overlay", ""))

	ctx := t.Context()
	data := func() (string, error) {
		out := ""
		for _, name := range []string{"app-base", "app-extra"} {
			got, err := c.S.Kube.CoreV1().ConfigMaps(c.Namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return "", err
			}
			out += name + "=" + got.Data["from"] + " "
		}
		return out, nil
	}
	want := "app-base=tag-v1.0.0 app-extra=main-1 "
	c.Eventually(3*time.Minute, "remote bases deployed", func() error {
		if got, err := data(); err != nil || got != want {
			a, aerr := c.S.Hub.App(ctx, c.Name)
			return fmt.Errorf("%q: %v, want %q (app %s/%s %q %v)", got, err, want, a.Sync, a.Health, Errors(a), aerr)
		}
		return nil
	})
	c.WaitSynced("", true)

	write(map[string][]byte{"base/cm.yaml": cm("base", "main-2"), "extra/cm.yaml": cm("extra", "main-2")})
	if _, err := c.S.Hub.CLI(ctx, "app", "refresh", c.Name); err != nil {
		t.Fatal(err)
	}
	want = "app-base=tag-v1.0.0 app-extra=main-2 "
	c.Eventually(3*time.Minute, "the branch base rolled out on refresh", func() error {
		if got, err := data(); err != nil || got != want {
			return fmt.Errorf("%q: %v, want %q", got, err, want)
		}
		if a := c.App(); a.Sync != "Synced" {
			return fmt.Errorf("app %s", a.Sync)
		}
		return nil
	})
}
