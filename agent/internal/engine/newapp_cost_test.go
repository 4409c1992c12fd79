//go:build !unit

package engine

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/rest"

	"github.com/flotilla-cd/flotilla/agent/internal/inventory"
)

// apiCounter counts the engine's requests by verb and resource: a write is
// every method but GET (a dry-run counted apart), a read GET of one object,
// a list GET of a collection (watches left out).
type apiCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *apiCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Query().Get("watch") == "" {
			c.add(requestKind(r))
		}
		return rt.RoundTrip(r)
	})
}

func (c *apiCounter) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[k]++
}

// requestKind names a request "VERB resource", e.g. "PATCH configmaps",
// "DRYRUN services", "GET namespaces", "LIST secrets".
func requestKind(r *http.Request) string {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	// /api/v1/namespaces/ns/configmaps/name, /apis/g/v/namespaces/ns/r/name,
	// /api/v1/namespaces/name, /api/v1/namespaces/ns/secrets
	if parts[0] == "apis" && len(parts) > 1 {
		parts = parts[1:]
	}
	if len(parts) < 3 {
		return "DISCOVERY"
	}
	parts = parts[2:] // version, group/version
	res, named := "", false
	switch {
	case len(parts) >= 3 && parts[0] == "namespaces":
		res, named = parts[2], len(parts) >= 4
	case len(parts) >= 1:
		res, named = parts[0], len(parts) >= 2
	}
	verb := r.Method
	switch {
	case r.URL.Query().Get("dryRun") != "":
		verb = "DRYRUN"
	case r.Method == http.MethodGet && !named:
		verb = "LIST"
	}
	return verb + " " + res
}

func (c *apiCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.n
	c.n = map[string]int{}
	return out
}

func (c *apiCounter) writes(m map[string]int) int {
	n := 0
	for k, v := range m {
		if !strings.HasPrefix(k, "GET ") && !strings.HasPrefix(k, "LIST ") {
			n += v
		}
	}
	return n
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d\n", k, m[k])
	}
	return b.String()
}

// TestNewAppRequests counts the API requests a new app costs in the shape
// of the bench's new-apps rows: CreateNamespace=true into a namespace that
// does not exist yet, with a Deployment, a Service and a ConfigMap.
func TestNewAppRequests(t *testing.T) {
	_, agentNS := testNamespaces(t)
	counter := &apiCounter{n: map[string]int{}}
	cfg := rest.CopyConfig(restCfg)
	cfg.Wrap(counter.wrap)
	e, _ := runEngineWith(t, cfg, Options{Namespace: agentNS})
	newApp := func(i int) {
		t.Helper()
		name := fmt.Sprintf("newapp-%d", i)
		dest := fmt.Sprintf("%s-%d", agentNS, i)
		accept(t, e, bundle(t, name, dest, auto(true, true, "CreateNamespace=true"), nil,
			deployment("web", 1, nil), service("web"), configMap("conf", map[string]any{"k": "v"})))
		waitStatus(t, e, name, 30*time.Second, synced)
	}
	newApp(0) // the engine's start: discovery, the watches' lists
	if err := e.store.Settle(t.Context()); err != nil {
		t.Fatal(err)
	}
	counter.take()
	const apps = 4
	for i := 1; i <= apps; i++ {
		newApp(i)
	}
	if err := e.store.Settle(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := counter.take()
	t.Logf("requests for %d new apps:\n%s", apps, formatCounts(got))
	t.Logf("writes per new app: %.1f", float64(counter.writes(got))/apps)
	// Per new app: the index Secret (bundle inline and the objects'
	// entries) written by Accept, and after the sync (the inventory with
	// the objects' fingerprints); the namespace; a dry-run of every
	// object in its step (the namespace did not exist before) but the
	// probe (the ConfigMap, first in the step), and the applies. Reads:
	// the namespace only (the store, loaded at the start, knows the app
	// has no index and no chunks yet).
	want := map[string]int{
		"PATCH secrets": 2, "PATCH namespaces": 1,
		"DRYRUN deployments": 1, "DRYRUN services": 1,
		"PATCH configmaps": 1, "PATCH deployments": 1, "PATCH services": 1,
		"GET namespaces": 1,
	}
	for k := range want {
		want[k] *= apps
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests for %d new apps (-want +got):\n%s", apps, diff)
	}
}

// TestObjectsRecordedBeforeWritten: crash safety of a new app's inventory,
// now that Accept records the objects with the bundle. At each write of an
// object, the persisted record (read as a restarted agent reads it) already
// lists the object, so an agent that crashes right after the write prunes
// or deletes it later; and the sync writes the record only once more, after
// the objects (with their fingerprints).
func TestObjectsRecordedBeforeWritten(t *testing.T) {
	_, agentNS := testNamespaces(t)
	dest := agentNS + "-dest"
	var (
		mu       sync.Mutex
		problems []string
		written  []string
	)
	check := func(r *http.Request) {
		parts := strings.Split(r.URL.Path, "/")
		name := parts[len(parts)-1]
		recs, err := inventory.New(dyn, agentNS, "reader").Load(r.Context())
		mu.Lock()
		defer mu.Unlock()
		written = append(written, name)
		if err != nil || len(recs) != 1 {
			problems = append(problems, fmt.Sprintf("write of %s: persisted records %v, %v", r.URL.Path, recs, err))
			return
		}
		for _, e := range recs[0].Inventory {
			if e.Name == name && e.Namespace == dest {
				return
			}
		}
		problems = append(problems, fmt.Sprintf("write of %s: not in the persisted inventory %v", r.URL.Path, recs[0].Inventory))
	}
	counter := &apiCounter{n: map[string]int{}}
	cfg := rest.CopyConfig(restCfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodGet && r.URL.Query().Get("dryRun") == "" && strings.Contains(r.URL.Path, "/namespaces/"+dest+"/") {
				check(r)
			}
			return rt.RoundTrip(r)
		})
	})
	cfg.Wrap(counter.wrap)
	e, _ := runEngineWith(t, cfg, Options{Namespace: agentNS})
	accept(t, e, bundle(t, "web", dest, auto(true, true, "CreateNamespace=true"), nil,
		deployment("web", 1, nil), service("web"), configMap("conf", map[string]any{"k": "v"})))
	waitStatus(t, e, "web", 30*time.Second, synced)
	mu.Lock()
	defer mu.Unlock()
	if len(written) != 3 {
		t.Errorf("objects written: %v, want 3", written)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if n := counter.take()["PATCH secrets"]; n != 2 {
		t.Errorf("%d writes of the app's record, want 2 (bundle and objects; fingerprints after the sync)", n)
	}
}
