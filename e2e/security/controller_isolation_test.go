//go:build !unit

package security

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// Finding 6, the controller part: one repo or render that never ends must
// not stop the fleet. A hub follows app B on a real git server and an app
// that hangs: A, whose repoURL points at a server that accepts connections
// and never answers, or spin, whose Helm template loops for ever. B keeps
// getting every commit, /readyz answers after a restart, and SIGTERM ends
// the hub promptly, all while the other app hangs.

// ctlSilentServer accepts TCP connections and never answers; it returns the
// URL of a repo on it and a channel signalled at each connection.
func ctlSilentServer(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	accepted := make(chan struct{}, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read or written
			mu.Unlock()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String() + "/stuck.git", accepted
}

const ctlAppTmpl = `apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: %s}
spec:
  source: {repoURL: %s, targetRevision: main, path: app}
  destination: {namespace: %s, clusterSelector: {matchLabels: {env: prod}}}
  syncPolicy: {automated: {prune: true}}
`

func ctlWriteApp(t *testing.T, dir, name, repoURL, ns string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(fmt.Sprintf(ctlAppTmpl, name, repoURL, ns)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func ctlPushConfigMap(t *testing.T, repo *gitserver.Repo, v string) string {
	t.Helper()
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {v: '" + v + "'}\n"
	if err := repo.Write(map[string][]byte{"app/cm.yaml": []byte(cm)}); err != nil {
		t.Fatal(err)
	}
	rev, err := repo.CommitAndPush("v" + v)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// rendered waits until app shows revision rev on cluster with a bundle and
// no error.
func ctlRendered(t *testing.T, h *harness.Hub, app, cluster, rev string) {
	t.Helper()
	eventually(t, 30*time.Second, app+" rendered at "+rev, func() error {
		a, err := h.App(t.Context(), app)
		if err != nil {
			return err
		}
		c := a.Cluster(cluster)
		if c == nil {
			return fmt.Errorf("app %s does not target %s", app, cluster)
		}
		if c.Revision != rev || c.Digest == "" || c.Error != "" {
			return fmt.Errorf("app %s on %s: revision %s digest %q error %q", app, cluster, c.Revision, c.Digest, c.Error)
		}
		return nil
	})
}

// ctlWaitingFor waits until app shows that it waits for repoURL.
func ctlWaitingFor(t *testing.T, h *harness.Hub, app, repoURL string) {
	t.Helper()
	eventually(t, 30*time.Second, app+" waiting for its repo", func() error {
		a, err := h.App(t.Context(), app)
		if err != nil {
			return err
		}
		if !strings.Contains(a.Error, "waiting for repository "+repoURL) {
			return fmt.Errorf("app %s: error %q", app, a.Error)
		}
		return nil
	})
}

// hungFleet is a hub following app B on a real git repo, with one
// registered cluster, and then apps that hang: A on a silent server (see
// addSilentApp), spin whose render never ends (see addSpinningApp).
type hungFleet struct {
	h       *harness.Hub
	repo    *gitserver.Repo
	appsDir string
	stuck   string          // A's repoURL
	dialed  <-chan struct{} // the hub connected to A's server
	cluster string          // the (simulated) cluster every app targets
}

// newFleet starts the hub with app B and waits until B is rendered.
func newFleet(t *testing.T) *hungFleet {
	t.Helper()
	_, repo := gitRepo(t, "b")
	rev := ctlPushConfigMap(t, repo, "1")
	appsDir := filepath.Join(t.TempDir(), "apps")
	if err := os.MkdirAll(appsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctlWriteApp(t, appsDir, "b", repo.URL, "b")
	// Git deadlines far beyond the test: A's repo stays slow within them.
	h := startHub(t, appsDir, "--git-list-timeout", "10m", "--git-fetch-timeout", "10m")
	// A cluster whose agent reported its capabilities: Helm charts
	// (the spinning one) render for it.
	c1 := reportingCluster(t, h, "c1", "env=prod")
	ctlRendered(t, h, "b", c1, rev)
	return &hungFleet{h: h, repo: repo, appsDir: appsDir, cluster: c1}
}

// addSilentApp adds app A on a silent server and waits until the hub
// connects to it.
func (f *hungFleet) addSilentApp(t *testing.T) {
	t.Helper()
	f.stuck, f.dialed = ctlSilentServer(t)
	ctlWriteApp(t, f.appsDir, "a", f.stuck, "a") // picked up at the next resync
	select {
	case <-f.dialed:
	case <-t.Context().Done():
	}
}

// commitReachesB pushes a commit to B's repo, sends the webhook and waits
// until B is rendered at it.
func (f *hungFleet) commitReachesB(t *testing.T, v string) {
	t.Helper()
	rev := ctlPushConfigMap(t, f.repo, v)
	if err := f.h.PushWebhook(t.Context(), f.repo.URL); err != nil {
		t.Fatal(err)
	}
	ctlRendered(t, f.h, "b", f.cluster, rev)
}

func TestControllerSilentRepoDoesNotStallOtherApps(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.addSilentApp(t)
	for i := 2; i <= 4; i++ {
		f.commitReachesB(t, fmt.Sprint(i))
	}
	// A still hangs: its first fetch has not answered.
	ctlWaitingFor(t, f.h, "a", f.stuck)
}

func TestControllerReadyAfterRestartWhileRepoHangs(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.addSilentApp(t)
	f.h.Stop()
	// Restart waits for /readyz (and fails if it never answers 200).
	if err := f.h.Restart(t.Context()); err != nil {
		t.Fatalf("restart while a repo hangs: %v", err)
	}
	f.commitReachesB(t, "after-restart")
	ctlWaitingFor(t, f.h, "a", f.stuck)
}

// spinChart is a Helm chart whose template loops 10^10 times: a render
// that does not end on its own.
var spinChart = map[string][]byte{
	"chart/Chart.yaml": []byte("apiVersion: v2\nname: spin\nversion: 0.1.0\n"),
	"chart/templates/spin.yaml": []byte(`{{- range $i := until 100000 }}{{- range $j := until 100000 }}{{- end }}{{- end }}
apiVersion: v1
kind: ConfigMap
metadata: {name: spin}
`),
}

// addSpinningApp adds app "spin", whose render never ends, on a repo of its
// own, and waits until the hub checked out its commit (its render starts
// right after).
func (f *hungFleet) addSpinningApp(t *testing.T) {
	t.Helper()
	_, repo := gitRepo(t, "spin")
	if err := repo.Write(spinChart); err != nil {
		t.Fatal(err)
	}
	rev, err := repo.CommitAndPush("spin")
	if err != nil {
		t.Fatal(err)
	}
	app := strings.Replace(fmt.Sprintf(ctlAppTmpl, "spin", repo.URL, "spin"), "path: app", "path: chart", 1)
	if err := os.WriteFile(filepath.Join(f.appsDir, "spin.yaml"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "spin checked out", func() error {
		m, _ := filepath.Glob(filepath.Join(f.h.StateDir, "git", "checkouts", "*", rev))
		if len(m) == 0 {
			return fmt.Errorf("no checkout of %s yet", rev)
		}
		return nil
	})
}

func TestControllerEndlessRenderDoesNotStallOtherApps(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.addSpinningApp(t)
	for i := 2; i <= 3; i++ {
		f.commitReachesB(t, fmt.Sprint(i))
	}
}

func TestControllerSIGTERMWhileRenderHangs(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	f.addSpinningApp(t)
	if err := syscall.Kill(f.h.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "hub exits after SIGTERM", func() error {
		if done, _ := f.h.Exited(); !done {
			return fmt.Errorf("hub still running")
		}
		return nil
	})
}
