//go:build !unit

package security

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// cpuBombTemplate never ends in practice (10^10 iterations): Go's
// text/template cannot be interrupted, so in-process it held the hub's
// reconcile loop, /readyz and shutdown for hours.
const cpuBombTemplate = `apiVersion: v1
kind: ConfigMap
metadata:
  name: bomb
data:
  n: "{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}"
`

// bombRepo serves a repository with a chart "bomb" whose template is
// cpuBombTemplate and returns its URL.
func bombRepo(t *testing.T) string {
	t.Helper()
	_, repo := gitRepo(t, "charts")
	if err := repo.Write(map[string][]byte{
		"bomb/Chart.yaml":        []byte("apiVersion: v2\nname: bomb\nversion: 0.1.0\n"),
		"bomb/templates/cm.yaml": []byte(cpuBombTemplate),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CommitAndPush("a chart that never ends"); err != nil {
		t.Fatal(err)
	}
	return repo.URL
}

// addApp writes an Application into the hub's apps folder (read on every
// resync).
func addApp(t *testing.T, apps, name, doc string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(apps, name+".yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// cpuTicks returns the CPU time (user and system, in clock ticks) of pid
// and of its child processes (the render workers).
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	ticks := func(stat string) (ppid int, cpu int64, ok bool) {
		// Fields after the command, which is in parentheses.
		i := strings.LastIndexByte(stat, ')')
		if i < 0 {
			return 0, 0, false
		}
		f := strings.Fields(stat[i+1:])
		if len(f) < 13 {
			return 0, 0, false
		}
		ppid, _ = strconv.Atoi(f[1])
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		return ppid, u + s, true
	}
	var total int64
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue // ended meanwhile
		}
		ppid, cpu, ok := ticks(string(b))
		if ok && (p == pid || ppid == pid) {
			total += cpu
		}
	}
	return total
}

// waitIdle waits until the hub and its children use under a fifth of a
// core over a second.
func waitIdle(t *testing.T, pid int) {
	t.Helper()
	last, lastAt := cpuTicks(t, pid), time.Now()
	eventually(t, time.Minute, "the hub back to idle", func() error {
		if time.Since(lastAt) < time.Second {
			return fmt.Errorf("sampling")
		}
		now, at := cpuTicks(t, pid), time.Now()
		used := float64(now-last) / 100 / at.Sub(lastAt).Seconds() // USER_HZ is 100 on Linux
		last, lastAt = now, at
		if used > 0.2 {
			return fmt.Errorf("the hub and its workers use %.0f%% of a core", used*100)
		}
		return nil
	})
}

// TestRenderHelmCPUBombStopped replays finding 6 (render): a chart whose
// template nests `range until 100000` is rendered by a real hub from a
// real git repository. The render is killed at its time limit: the app
// shows an error naming the chart and the limit, the hub goes back to
// idle, keeps answering its API and still renders other apps.
func TestRenderHelmCPUBombStopped(t *testing.T) {
	t.Parallel()
	url := bombRepo(t)
	_, good := gitRepo(t, "good")
	if err := good.Write(map[string][]byte{"web/cm.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n")}); err != nil {
		t.Fatal(err)
	}
	if _, err := good.CommitAndPush("a good app"); err != nil {
		t.Fatal(err)
	}
	h := startHub(t, "", append(plainHTTPFlags(), "--render-timeout", "3s")...)
	apps := filepath.Join(filepath.Dir(h.StateDir), "apps")
	victim := reportingCluster(t, h, "victim")
	addApp(t, apps, "bomb", application("bomb", url, "bomb", "bomb", victim))

	msg := waitAppErrors(t, h, "bomb", "helm chart bomb", "time limit of 3s", "--render-timeout")
	t.Logf("bomb: %s", strings.TrimSpace(msg))
	waitIdle(t, h.PID())

	// The hub still answers and renders: a good app added now gets its
	// revision and no error.
	addApp(t, apps, "web", application("web", good.URL, "web", "web", victim))
	eventually(t, time.Minute, "app web rendered", func() error {
		a, err := h.App(t.Context(), "web")
		if err != nil {
			return err
		}
		if e := strings.TrimSpace(appErrors(a)); e != "" {
			return fmt.Errorf("app web: %s", e)
		}
		if a.Revision == "" {
			return fmt.Errorf("app web: no revision yet")
		}
		return nil
	})
}

// TestRenderHelmCPUBombSIGTERM: a hub stopped with SIGTERM while the bomb
// renders (its time limit far away) ends promptly, and its render worker
// with it.
func TestRenderHelmCPUBombSIGTERM(t *testing.T) {
	t.Parallel()
	url := bombRepo(t)
	h := startHub(t, "", append(plainHTTPFlags(), "--render-timeout", "1h", "--render-cpu-limit", "1h")...)
	apps := filepath.Join(filepath.Dir(h.StateDir), "apps")
	victim := reportingCluster(t, h, "victim")
	addApp(t, apps, "bomb", application("bomb", url, "bomb", "bomb", victim))

	// Wait until the bomb burns CPU (in a worker, or in the hub itself).
	start := cpuTicks(t, h.PID())
	eventually(t, time.Minute, "the bomb rendering", func() error {
		if used := cpuTicks(t, h.PID()) - start; used < 200 {
			return fmt.Errorf("%d ticks of CPU so far", used)
		}
		return nil
	})
	workers := childPIDs(t, h.PID())
	if err := syscall.Kill(h.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the hub to exit after SIGTERM", func() error {
		if done, _ := h.Exited(); !done {
			return fmt.Errorf("still running")
		}
		return nil
	})
	for _, pid := range workers {
		eventually(t, 10*time.Second, "render worker gone", func() error {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil || strings.Contains(string(b), ") Z ") {
				return nil // gone, or a zombie whose parent is gone
			}
			return fmt.Errorf("worker %d still running", pid)
		})
	}
}

// childPIDs lists the processes whose parent is pid.
func childPIDs(t *testing.T, pid int) []int {
	t.Helper()
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(pid) {
				out = append(out, p)
			}
		}
	}
	return out
}

// waitAppErrors waits until app name's errors (its own and its clusters')
// contain every part, and returns them.
func waitAppErrors(t *testing.T, h *harness.Hub, name string, parts ...string) string {
	t.Helper()
	var msg string
	eventually(t, 2*time.Minute, "render error on app "+name, func() error {
		a, err := h.App(t.Context(), name)
		if err != nil {
			return err
		}
		msg = appErrors(a)
		for _, p := range parts {
			if !strings.Contains(msg, p) {
				return fmt.Errorf("app %s errors %q do not say %q", name, msg, p)
			}
		}
		return nil
	})
	return msg
}

// TestRenderHelmCPUBombKeepsLastGood: an app that deployed, then got a
// commit turning its chart into the bomb, shows the limit error while its
// cluster keeps the last good objects (real agent, real API server).
func TestRenderHelmCPUBombKeepsLastGood(t *testing.T) {
	t.Parallel()
	_, repo := gitRepo(t, "charts")
	good := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: good\n"
	if err := repo.Write(map[string][]byte{
		"web/Chart.yaml":        []byte("apiVersion: v2\nname: web\nversion: 0.1.0\n"),
		"web/templates/cm.yaml": []byte(good),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CommitAndPush("a good chart"); err != nil {
		t.Fatal(err)
	}
	kc := startCluster(t, "victim")
	apps := filepath.Join(t.TempDir(), "apps")
	if err := os.MkdirAll(apps, 0o755); err != nil {
		t.Fatal(err)
	}
	addApp(t, apps, "web", application("web", repo.URL, "web", "web", "victim"))
	h := startHub(t, apps, append(plainHTTPFlags(), "--render-timeout", "3s", "--poll-interval", "1s")...)
	startAgent(t, h, "victim", kc)
	cs := clientset(t, kc)
	if err := h.WaitSynced(t.Context(), 2*time.Minute, "web", "", false, "victim"); err != nil {
		t.Fatalf("web did not sync: %v", err)
	}

	if err := repo.Write(map[string][]byte{"web/templates/cm.yaml": []byte(cpuBombTemplate)}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CommitAndPush("the bomb"); err != nil {
		t.Fatal(err)
	}
	waitAppErrors(t, h, "web", "helm chart web", "time limit of 3s", "--render-timeout")
	cm, err := cs.CoreV1().ConfigMaps("web").Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the last good ConfigMap is gone: %v", err)
	}
	if v := cm.Data["version"]; v != "good" {
		t.Errorf("ConfigMap web/web version %q, want the last good one", v)
	}
	waitIdle(t, h.PID())
}
