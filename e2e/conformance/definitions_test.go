//go:build !unit

package conformance

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestBrokenApplicationStandsAlone: Argo CD evaluates each Application on
// its own. One change adds a good Application and one with a field Flotilla
// cannot honour (a config management plugin): the good one syncs to the
// cluster, the broken one shows its error in `flotilla app list` and in the
// API the UI draws from, and `flotilla definitions` exits non-zero so that
// CI can gate on it.
func TestBrokenApplicationStandsAlone(t *testing.T) {
	good := NewCase(t, "defs-good")
	rev := good.Commit(map[string]string{"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {k: v}\n"})
	bad := NewCase(t, "defs-broken")
	bad.Commit(map[string]string{"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"})
	bad.Define(strings.Replace(bad.ArgoApplication("app", ""), "    path: app\n", "    path: app\n    plugin: {name: my-cmp}\n", 1))
	good.Define(good.ArgoApplication("app", ""))

	good.WaitSynced(rev, true)
	if _, err := good.S.Kube.CoreV1().ConfigMaps(good.Namespace).Get(t.Context(), "settings", metav1.GetOptions{}); err != nil {
		t.Fatalf("the good app's ConfigMap: %v", err)
	}

	var msg string
	bad.Eventually(time.Minute, "the broken app shows its error", func() error {
		apps, err := bad.S.Hub.Apps(t.Context())
		if err != nil {
			return err
		}
		for _, a := range apps {
			if a.Name == bad.Name && strings.Contains(a.Error, "plugin") {
				msg = a.Error
				return nil
			}
		}
		return errors.New("app defs-broken is not listed with its error")
	})
	for _, want := range []string{"defs-broken.yaml", "spec.source.plugin", "not supported"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	// The table of `flotilla app list` shows it too.
	if out, err := bad.S.Hub.CLI(t.Context(), "app", "list"); err != nil || !strings.Contains(out, "defs-broken") {
		t.Errorf("app list: %v\n%s", err, out)
	}
	if _, err := bad.S.Hub.CLI(t.Context(), "definitions"); err == nil {
		t.Error("`flotilla definitions` exited 0 with a broken definition")
	} else if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) {
		t.Errorf("`flotilla definitions`: %v, want a non-zero exit", err)
	}
	if _, err := bad.S.Kube.CoreV1().ConfigMaps(bad.Namespace).Get(t.Context(), "settings", metav1.GetOptions{}); err == nil {
		t.Error("the broken app's objects reached the cluster")
	}
}

// TestUnknownDestinationClusterWarned: an Application whose destination
// names a cluster the hub does not know is not silently ignored: it shows
// a warning naming the cluster, in the API and in `flotilla app list`.
func TestUnknownDestinationClusterWarned(t *testing.T) {
	c := NewCase(t, "defs-unknown-cluster")
	c.Commit(map[string]string{"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"})
	c.Define(strings.Replace(c.ArgoApplication("app", ""), "    name: "+ClusterName+"\n", "    name: prod-eu-9\n", 1))
	c.Eventually(time.Minute, "the app warns about the cluster", func() error {
		out, err := c.S.Hub.CLI(t.Context(), "app", "list")
		if err != nil {
			return err
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, c.Name+" ") && strings.Contains(l, "prod-eu-9") && strings.Contains(l, "not registered") {
				return nil
			}
		}
		return errors.New("no warning line in app list:\n" + out)
	})
}
