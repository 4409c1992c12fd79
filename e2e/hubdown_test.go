//go:build !unit

package e2e

import (
	"fmt"
	"time"
)

// scenarioHubDown: with the hub killed (kill -9), agents keep enforcing
// their last bundles (an out-of-band scale and edit are reverted), and a
// commit pushed while the hub is down is applied once it is back, without
// a webhook (the hub fetches its repositories when it starts).
func scenarioHubDown(e *env) {
	const cl = "alpha"
	rev1 := e.commit("hd v1", map[string]string{
		"hd/deployment.yaml": deployment("hd", 2, "nginx:1.27"),
		"hd/config.yaml":     cmManifest("hd", map[string]string{"release": "v1"}),
	})
	e.writeApp("hd", appSpec{name: "hd", path: "hd", ns: "hd", clusters: []string{cl}, prune: true, selfHeal: true}.yaml(e.repo.URL))
	e.waitSynced("hd", rev1, cl)
	e.waitDeployment(cl, "hd", "hd", 2, true)

	e.hub.Kill()
	e.t.Log("hub killed (SIGKILL)")

	start := time.Now()
	e.kubectl(cl, "-n", "hd", "scale", "deployment/hd", "--replicas=5")
	e.waitDeployment(cl, "hd", "hd", 2, false)
	e.kubectl(cl, "-n", "hd", "patch", "configmap/hd", "--type=merge", "-p", `{"data":{"release":"hacked"}}`)
	e.waitConfig(cl, "hd", "v1")
	e.t.Logf("drift reverted with the hub down, within %s", time.Since(start).Round(time.Millisecond))

	// A push while the hub is down: no webhook can reach it.
	if err := e.repo.Write(map[string][]byte{"hd/config.yaml": []byte(cmManifest("hd", map[string]string{"release": "v2"}))}); err != nil {
		e.t.Fatal(err)
	}
	rev2, err := e.repo.CommitAndPush("hd v2 (hub down)")
	if err != nil {
		e.t.Fatal(err)
	}
	if got, _ := e.configMapData(cl, "hd", "hd"); got["release"] != "v1" {
		e.t.Fatalf("configmap hd/hd changed with the hub down: %v", got)
	}

	restart := time.Now()
	if err := e.hub.Restart(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	e.waitConfig(cl, "hd", "v2")
	e.waitSynced("hd", rev2, cl)
	e.t.Logf("commit made while the hub was down applied %s after the hub restarted", time.Since(restart).Round(time.Millisecond))
	// Every agent is back.
	for name := range e.agents {
		e.waitConnected(e.hub, name, true)
	}
}

// waitConfig waits until ConfigMap name/name (namespace and name alike)
// on cluster has release want.
func (e *env) waitConfig(cl, name, want string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("%s: configmap %s/%s release=%s", cl, name, name, want), func() error {
		d, err := e.configMapData(cl, name, name)
		if err != nil {
			return err
		}
		if d["release"] != want {
			return fmt.Errorf("release=%q", d["release"])
		}
		return nil
	})
}
