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
	// Per new app: the index Secret (bundle inline) written by Accept,
	// before the sync writes anything and after it (the inventory with
	// the objects' fingerprints); the namespace; a dry-run of every
	// object in its step (the namespace did not exist before) but the
	// probe (the ConfigMap, first in the step), and the applies. Reads:
	// the index (not known yet), the chunks of other digests (none), the
	// namespace.
	want := map[string]int{
		"PATCH secrets": 3, "PATCH namespaces": 1,
		"DRYRUN deployments": 1, "DRYRUN services": 1,
		"PATCH configmaps": 1, "PATCH deployments": 1, "PATCH services": 1,
		"GET secrets": 1, "LIST secrets": 1, "GET namespaces": 1,
	}
	for k := range want {
		want[k] *= apps
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests for %d new apps (-want +got):\n%s", apps, diff)
	}
}
