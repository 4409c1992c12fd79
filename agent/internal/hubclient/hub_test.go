//go:build !unit

package hubclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/agent/internal/hubclient"
	"github.com/flotilla-cd/flotilla/agent/internal/identity"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// These tests run the real hub as a process (built from this tree, or
// taken from $FLOTILLA_E2E_BIN_DIR as `make test` passes it) with a real
// git server, and agents in this process: hubclient with its real TLS,
// enrolment and reconnect logic, over a memEngine.

var (
	binOnce  sync.Once
	binDir   string
	binErr   error
	builtBin string // a temporary folder this process built into
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(builtBin)
	}
	os.Exit(code)
}

func hubBinaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the hub as a process")
	}
	binOnce.Do(func() {
		if binDir = os.Getenv("FLOTILLA_E2E_BIN_DIR"); binDir != "" {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..", "..")
		binDir, binErr = os.MkdirTemp("", "flotilla-hubclient-bin-")
		builtBin = binDir
		if binErr == nil {
			binErr = harness.BuildBinaries(context.Background(), root, binDir)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// fixture is a hub process following one git repo with one app, "cfg",
// a ConfigMap sent to every cluster labelled env=sim.
type fixture struct {
	t    *testing.T
	dir  string
	repo *gitserver.Repo
	hub  *harness.Hub
}

func newFixture(t *testing.T, extra ...string) *fixture {
	t.Helper()
	bin := hubBinaries(t)
	dir := t.TempDir()
	gs, err := gitserver.Start(filepath.Join(dir, "git"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gs.Close() })
	repo, err := gs.NewRepo("config", filepath.Join(dir, "work"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: dir, repo: repo}
	f.commit("v1")
	apps := filepath.Join(dir, "apps")
	if err := os.MkdirAll(apps, 0o755); err != nil {
		t.Fatal(err)
	}
	app := fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: cfg}
spec:
  source: {repoURL: %s, targetRevision: main, path: apps/cfg}
  destination:
    namespace: cfg
    clusterSelector: {matchLabels: {env: sim}}
  syncPolicy: {automated: {prune: true, selfHeal: true}}
`, repo.URL)
	if err := os.WriteFile(filepath.Join(apps, "cfg.yaml"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := harness.StartHub(t.Context(), bin, dir, harness.HubOptions{AppsDir: apps, PollInterval: time.Hour, Extra: append([]string{"--log-level", "info"}, extra...)})
	if err != nil {
		t.Fatal(err)
	}
	f.hub = h
	t.Cleanup(func() {
		h.Stop()
		if t.Failed() {
			t.Logf("hub log (tail):\n%s", h.Tail(8000))
		}
	})
	return f
}

// commit pushes the ConfigMap with value v and returns the revision.
func (f *fixture) commit(v string) string {
	f.t.Helper()
	cm := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {version: %q}\n", v)
	if err := f.repo.Write(map[string][]byte{"apps/cfg/cm.yaml": []byte(cm)}); err != nil {
		f.t.Fatal(err)
	}
	rev, err := f.repo.CommitAndPush("cfg " + v)
	if err != nil {
		f.t.Fatal(err)
	}
	return rev
}

// api calls the hub's HTTP API as admin.
func (f *fixture) api(ctx context.Context, method, path string, body, out any) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, f.hub.HTTPURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+f.hub.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e bytes.Buffer
		_, _ = e.ReadFrom(resp.Body)
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(e.String()))
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// simAgent is one enrolled agent in this process.
type simAgent struct {
	name     string
	ids      *memIdentities
	engine   *memEngine
	client   *hubclient.Client
	mu       sync.Mutex
	welcomes int
	downs    []time.Time // when each session ended (or failed to start)
}

func (a *simAgent) ended() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.downs...)
}

func (a *simAgent) welcomed() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.welcomes
}

// enroll adds cluster name (env=sim) through the API, enrols it as the
// agent does (key made here, CA pinned by hash) and returns its agent,
// not yet running.
func (f *fixture) enroll(ctx context.Context, name string, opts hubclient.Options) (*simAgent, error) {
	var j harness.Join
	if err := f.api(ctx, "POST", "/api/v1/clusters", map[string]any{"name": name, "labels": map[string]string{"env": "sim"}}, &j); err != nil {
		return nil, err
	}
	id, err := identity.Enroll(ctx, identity.EnrollOptions{HubAddr: j.HubAddr, Cluster: name, Token: j.Token, CAHash: j.CAHash, AgentVersion: "sim"})
	if err != nil {
		return nil, err
	}
	a := &simAgent{name: name, ids: &memIdentities{id: id}, engine: newMemEngine()}
	opts.HubAddr = j.HubAddr
	opts.OnConnected = func(up bool) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if up {
			a.welcomes++
		} else {
			a.downs = append(a.downs, time.Now())
		}
	}
	log := hclog.NewNullLogger()
	if testing.Verbose() && os.Getenv("FLOTILLA_SIM_LOG") != "" {
		log = hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug})
	}
	a.client = hubclient.New(opts, a.ids, a.engine, log)
	return a, nil
}

// run runs the agent until the test ends.
func (a *simAgent) run(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = a.client.Run(ctx)
	}()
}

// appCluster is one cluster of an app as GET /api/v1/apps shows it.
type appView struct {
	Name     string `json:"name"`
	Revision string `json:"revision"`
	Clusters []struct {
		Cluster        string `json:"cluster"`
		Digest         string `json:"digest"`
		Sync           string `json:"sync"`
		ObservedDigest string `json:"observedDigest"`
		Connected      bool   `json:"connected"`
	} `json:"clusters"`
}

// synced returns how many of the clusters of app cfg are Synced at rev.
func (f *fixture) synced(ctx context.Context, rev string) (int, string, error) {
	var apps struct {
		Items []appView `json:"items"`
	}
	if err := f.api(ctx, "GET", "/api/v1/apps", nil, &apps); err != nil {
		return 0, "", err
	}
	for _, a := range apps.Items {
		if a.Name != "cfg" {
			continue
		}
		if a.Revision != rev {
			return 0, "", nil
		}
		n, digest := 0, ""
		for _, c := range a.Clusters {
			digest = c.Digest
			if c.Sync == "Synced" {
				n++
			}
		}
		return n, digest, nil
	}
	return 0, "", fmt.Errorf("app cfg not listed")
}

// cpuTime returns the user+system CPU time the process pid used so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %v %v", pid, err1, err2)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// rssKiB returns the resident set of pid in KiB.
func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return -1
}

func numCPU() int { return runtime.NumCPU() }
