package fleet

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestSessionCoalescesToNewest changes the desired state thousands of times
// while a slow receiver reads. The receiver applies every delta it gets to
// what its agent holds; it must end holding exactly the newest state, in
// far fewer messages than changes, and never go back to an older version
// of an app.
func TestSessionCoalescesToNewest(t *testing.T) {
	const changes = 5000
	apps := []string{"a", "b", "c", "d", "e"}
	rng := rand.New(rand.NewPCG(1, 2))
	states := make([]map[string]Desired, changes)
	for i := range states {
		d := Desired{}
		for _, app := range apps {
			switch rng.IntN(4) {
			case 0: // not targeted
			case 1:
				if i != changes-1 {
					d[app] = nil // render error: hold what the agent has
					continue
				}
				fallthrough
			default:
				d[app] = &apiv1alpha1.Bundle{App: app, Digest: fmt.Sprintf("%s@%06d", app, i)}
			}
		}
		states[i] = map[string]Desired{"c1": d, "other": {"x": {App: "x", Digest: fmt.Sprint(i)}}}
	}
	final := map[string]string{}
	for app, b := range states[changes-1]["c1"] {
		final[app] = b.GetDigest()
	}

	f := New()
	s := f.Attach("c1", map[string]string{"a": "a@stale"})
	defer s.Close()

	gate := make(chan struct{}, 1) // the receiver reads only when let through
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i, st := range states {
			f.SetAll(st)
			if i%97 == 0 {
				select {
				case gate <- struct{}{}:
				default:
				}
			}
		}
	}()

	held := map[string]string{"a": "a@stale"}
	messages := 0
	deadline := time.After(30 * time.Second)
	done := writerDone
	for {
		if done != nil { // while the writer runs, read only when let through
			select {
			case <-gate:
			case <-done:
				done = nil
			case <-deadline:
				t.Fatalf("writer still running after %d messages", messages)
			}
		}
		select {
		case <-s.Woken():
		case <-deadline:
			t.Fatalf("not woken: after %d messages the agent holds %v, want %v", messages, held, final)
		}
		ds := s.Next()
		if ds == nil {
			if maps.Equal(held, final) {
				break
			}
			continue
		}
		messages++
		for _, b := range ds.GetBundles() {
			if old, ok := held[b.GetApp()]; ok && old != "a@stale" && old >= b.GetDigest() {
				t.Fatalf("app %s went from %s back to %s", b.GetApp(), old, b.GetDigest())
			}
			held[b.GetApp()] = b.GetDigest()
		}
		for _, app := range ds.GetRemovedApps() {
			delete(held, app)
		}
		if maps.Equal(held, final) {
			// Nothing more may come: the newest state is held.
			if ds := s.Next(); ds != nil {
				t.Fatalf("sent %v after the newest state", ds)
			}
			break
		}
	}
	if d := cmp.Diff(final, held); d != "" {
		t.Fatalf("agent holds (-newest +held):\n%s", d)
	}
	if messages >= changes/10 {
		t.Errorf("%d messages for %d changes: wake-ups did not coalesce", messages, changes)
	}
	t.Logf("%d changes reached the agent in %d messages", changes, messages)
}
