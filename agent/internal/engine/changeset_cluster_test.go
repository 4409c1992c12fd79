//go:build !unit

package engine

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// TestSyncChangeSet: each sync operation's change set says what it did to
// every object, and the operation's message sums it up. A resync of an
// unchanged bundle writes nothing.
func TestSyncChangeSet(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	e := startEngine(t, agentNS)
	key := func(name string) manifest.Key { return manifest.Key{Kind: "ConfigMap", Namespace: ns, Name: name} }
	lastChanges := func() map[manifest.Key]Action {
		e.mu.Lock()
		a := e.apps["cs"]
		e.mu.Unlock()
		out := map[manifest.Key]Action{}
		for _, c := range a.changes.Entries() {
			out[c.Key] = c.Action
		}
		return out
	}
	opDone := func(digest string) func(*apiv1alpha1.AppStatus) bool {
		return func(s *apiv1alpha1.AppStatus) bool {
			op := s.GetLastOperation()
			return synced(s) && op.GetDigest() == digest && op.GetFinishedAt() != nil
		}
	}
	first := bundle(t, "cs", ns, auto(false, true), nil, configMap("a", map[string]any{"v": "1"}), configMap("b", nil), configMap("c", nil))
	accept(t, e, first)
	st := waitStatus(t, e, "cs", 20*time.Second, opDone(first.GetDigest()))
	if d := cmp.Diff(map[manifest.Key]Action{key("a"): Created, key("b"): Created, key("c"): Created}, lastChanges()); d != "" {
		t.Errorf("first sync (-want +got):\n%s", d)
	}
	if got, want := st.GetLastOperation().GetMessage(), "synced 3 objects (3 created)"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}

	next := bundle(t, "cs", ns, auto(false, true), nil, configMap("a", map[string]any{"v": "2"}), configMap("b", nil))
	accept(t, e, next)
	st = waitStatus(t, e, "cs", 20*time.Second, opDone(next.GetDigest()))
	if d := cmp.Diff(map[manifest.Key]Action{key("a"): Configured, key("b"): Unchanged, key("c"): Pruned}, lastChanges()); d != "" {
		t.Errorf("second sync (-want +got):\n%s", d)
	}
	if got, want := st.GetLastOperation().GetMessage(), "synced 2 objects (1 configured, 1 unchanged, 1 pruned)"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if res := e.Do(ctx, &apiv1alpha1.Command{Id: "1", App: "cs", Type: apiv1alpha1.Command_TYPE_SYNC, InitiatedBy: "test"}); !res.GetOk() {
		t.Fatalf("manual sync: %s", res.GetMessage())
	}
	if d := cmp.Diff(map[manifest.Key]Action{key("a"): Unchanged, key("b"): Unchanged}, lastChanges()); d != "" {
		t.Errorf("resync of the same bundle (-want +got):\n%s", d)
	}
}
