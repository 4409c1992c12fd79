//go:build !unit

package engine

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/flotilla-cd/flotilla/agent/internal/inventory"
	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// storeGate sits in the engine's client: it can hold or fail the writes
// of Secrets in the agent's namespace (the persisted bundles), and it
// records the requests to the destination namespace.
type storeGate struct {
	agentNS, destNS string

	mu   sync.Mutex
	hold chan struct{} // non-nil: Secret writes wait until it is closed
	// holdApplied, when non-nil, holds the Secret writes that come after
	// a write to destNS (not a dry-run), until it is closed.
	holdApplied chan struct{}
	applied     bool     // a write to destNS was seen
	fail        bool     // Secret writes fail
	held        int      // Secret writes waiting
	dryRuns     int      // dry-run requests in destNS
	writes      []string // other writes in destNS
}

func (g *storeGate) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		write := r.Method != http.MethodGet
		switch {
		case write && strings.Contains(r.URL.Path, "/namespaces/"+g.agentNS+"/secrets"):
			g.mu.Lock()
			hold, fail := g.hold, g.fail
			if hold == nil && g.holdApplied != nil && g.applied {
				hold = g.holdApplied
			}
			if hold != nil {
				g.held++
			}
			g.mu.Unlock()
			if hold != nil {
				<-hold
			}
			if fail {
				return &http.Response{StatusCode: http.StatusInternalServerError, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
			}
		case write && strings.Contains(r.URL.Path, "/namespaces/"+g.destNS+"/"):
			g.mu.Lock()
			if strings.Contains(r.URL.RawQuery, "dryRun=All") {
				g.dryRuns++
			} else {
				g.writes = append(g.writes, r.Method+" "+r.URL.Path)
				g.applied = true
			}
			g.mu.Unlock()
		}
		return rt.RoundTrip(r)
	})
}

// TestAcceptPersistsBeforeWriting: the worker loads and dry-runs a new
// bundle while Accept persists it, but writes nothing of it to the cluster
// and never reports it Synced before it is persisted; when persisting fails,
// nothing of it is applied and the app stays on the persisted bundle.
func TestAcceptPersistsBeforeWriting(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	g := &storeGate{agentNS: agentNS, destNS: ns}
	cfg := rest.CopyConfig(restCfg)
	cfg.Wrap(g.wrap)
	e, _ := runEngineWith(t, cfg, Options{Namespace: agentNS})
	cm := func(v string) *apiv1alpha1.Bundle {
		return bundle(t, "web", ns, auto(true, true), nil, configMap("conf", map[string]any{"k": v}))
	}
	first, second, third := cm("1"), cm("2"), cm("3")
	accept(t, e, first)
	waitStatus(t, e, "web", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && s.GetDigest() == first.GetDigest() })

	// Persisting the second bundle is held: the worker dry-runs it
	// meanwhile, and writes nothing.
	release := make(chan struct{})
	g.mu.Lock()
	g.hold, g.dryRuns, g.writes = release, 0, nil
	g.mu.Unlock()
	accepted := make(chan error, 1)
	go func() { accepted <- e.Accept(context.Background(), []*apiv1alpha1.Bundle{second}, nil) }()
	testenv.Eventually(t, 20*time.Second, func(context.Context) (bool, string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.held > 0 && g.dryRuns > 0, fmt.Sprintf("%d held Secret writes, %d dry-runs", g.held, g.dryRuns)
	})
	g.mu.Lock()
	writes := g.writes
	g.hold = nil
	g.mu.Unlock()
	if len(writes) > 0 {
		t.Errorf("written before the bundle was persisted: %v", writes)
	}
	if s := statusOf(e, "web"); s.GetDigest() == second.GetDigest() && s.GetSync() == apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED {
		t.Errorf("reported Synced before the bundle was persisted: %v", s)
	}
	close(release)
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, "web", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && s.GetDigest() == second.GetDigest() })
	if got, _ := get(t, gvrConfigMap, ns, "conf"); got.Object["data"].(map[string]any)["k"] != "2" {
		t.Fatalf("configmap after the second bundle: %v", got.Object["data"])
	}

	// Persisting the third bundle fails: Accept says so, nothing of it is
	// written, and the app goes back to the second.
	g.mu.Lock()
	g.fail, g.writes = true, nil
	g.mu.Unlock()
	if err := e.Accept(context.Background(), []*apiv1alpha1.Bundle{third}, nil); err == nil {
		t.Fatal("Accept succeeded while the bundle could not be persisted")
	}
	g.mu.Lock()
	g.fail = false
	g.mu.Unlock()
	waitStatus(t, e, "web", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && s.GetDigest() == second.GetDigest() })
	g.mu.Lock()
	writes = g.writes
	g.mu.Unlock()
	if len(writes) > 0 {
		t.Errorf("written although the bundle was not persisted: %v", writes)
	}
	if got, _ := get(t, gvrConfigMap, ns, "conf"); got.Object["data"].(map[string]any)["k"] != "2" {
		t.Fatalf("configmap after the failed accept: %v", got.Object["data"])
	}
	if held := e.Held(); held["web"] != second.GetDigest() {
		t.Errorf("Held() = %v, want the second bundle", held)
	}

	// Accepted again (as after the reconnect), it is applied.
	accept(t, e, third)
	waitStatus(t, e, "web", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && s.GetDigest() == third.GetDigest() })
}

// TestFingerprintsStoredAfterReport: when a sync changes only the
// fingerprints of the inventory (the same objects), the app is reported
// Synced without waiting for the index write, which follows.
func TestFingerprintsStoredAfterReport(t *testing.T) {
	t.Parallel() // its own namespaces only, namespaced kinds only
	ns, agentNS := testNamespaces(t)
	g := &storeGate{agentNS: agentNS, destNS: ns}
	cfg := rest.CopyConfig(restCfg)
	cfg.Wrap(g.wrap)
	e, _ := runEngineWith(t, cfg, Options{Namespace: agentNS})
	cm := func(v string) *apiv1alpha1.Bundle {
		return bundle(t, "web", ns, auto(true, true), nil, configMap("conf", map[string]any{"k": v}))
	}
	first, second := cm("1"), cm("2")
	store := inventory.New(dyn, agentNS, "test")
	storedFP := func() string {
		recs, err := store.Load(context.Background())
		if err != nil || len(recs) != 1 || len(recs[0].Inventory) != 1 {
			return fmt.Sprintf("no record (%v)", err)
		}
		return recs[0].Inventory[0].FP
	}
	accept(t, e, first)
	waitStatus(t, e, "web", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && s.GetDigest() == first.GetDigest() })
	var fp1 string
	testenv.Eventually(t, 20*time.Second, func(context.Context) (bool, string) {
		fp1 = storedFP()
		return fp1 != "" && !strings.HasPrefix(fp1, "no record"), "stored fingerprint " + fp1
	})

	// The second bundle is persisted as usual; the Secret writes after
	// its ConfigMap was applied are held.
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before the engine stops, should the test fail
	g.mu.Lock()
	g.holdApplied, g.applied = release, false
	g.mu.Unlock()
	accept(t, e, second)
	waitStatus(t, e, "web", 20*time.Second, func(s *apiv1alpha1.AppStatus) bool { return synced(s) && s.GetDigest() == second.GetDigest() })
	testenv.Eventually(t, 20*time.Second, func(context.Context) (bool, string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.held > 0, "no held Secret write"
	})
	if got := storedFP(); got != fp1 {
		t.Fatalf("stored fingerprint %q while the write was held, want the first one %q", got, fp1)
	}
	free()
	testenv.Eventually(t, 20*time.Second, func(context.Context) (bool, string) {
		got := storedFP()
		return got != fp1 && got != "" && !strings.HasPrefix(got, "no record"), "stored fingerprint " + got
	})
}
