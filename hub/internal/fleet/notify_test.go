package fleet

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func TestAttachNotify(t *testing.T) {
	f := New()
	notified := 0
	s := f.AttachNotify("c1", map[string]string{"a": "a1"}, func() { notified++ })
	defer s.Close()
	step := func(what string, want int, do func()) {
		t.Helper()
		before := notified
		do()
		if got := notified - before; got != want {
			t.Fatalf("%s: notified %d times, want %d", what, got, want)
		}
	}
	if notified != 1 {
		t.Fatalf("attach notified %d times, want 1", notified)
	}
	if ds := s.Next(); ds != nil {
		t.Fatalf("before the fleet is ready: %v", ds)
	}

	a2 := &apiv1alpha1.Bundle{App: "a", Digest: "a2"}
	step("first desired state", 1, func() { f.SetAll(map[string]Desired{"c1": {"a": a2}}) })
	if ds := s.Next(); len(ds.GetBundles()) != 1 || ds.GetBundles()[0].GetDigest() != "a2" {
		t.Fatalf("delta %v; want bundle a2", ds)
	}
	step("same digests", 0, func() { f.SetAll(map[string]Desired{"c1": {"a": a2}, "c2": {"b": {App: "b", Digest: "b1"}}}) })
	step("another cluster's change", 0, func() { f.SetAll(map[string]Desired{"c1": {"a": a2}}) })
	step("rehello", 1, func() { s.Rehello(map[string]string{"a": "a1"}) })

	var sent []string
	step("commands", MaxQueuedCommands, func() {
		for i := range MaxQueuedCommands {
			id := fmt.Sprint(i)
			if err := f.SendCommand("c1", &apiv1alpha1.Command{Id: id}); err != nil {
				t.Fatalf("command %d: %v", i, err)
			}
			sent = append(sent, id)
		}
	})
	if err := f.SendCommand("c1", &apiv1alpha1.Command{Id: "one too many"}); !errors.Is(err, ErrCommandQueueFull) {
		t.Fatalf("command beyond the queue: %v; want %v", err, ErrCommandQueueFull)
	}
	var taken []string
	for _, c := range s.TakeCommands() {
		taken = append(taken, c.GetId())
	}
	if d := cmp.Diff(sent, taken); d != "" {
		t.Fatalf("commands taken (-sent +taken):\n%s", d)
	}
	if q := s.TakeCommands(); len(q) != 0 {
		t.Fatalf("taken twice: %v", q)
	}

	s2 := f.AttachNotify("c1", nil, func() {})
	defer s2.Close()
	if err := context.Cause(s.Context()); !errors.Is(err, ErrSuperseded) {
		t.Fatalf("older session ended with %v; want %v", err, ErrSuperseded)
	}
	if s2.Context().Err() != nil {
		t.Fatal("newer session ended")
	}
}
