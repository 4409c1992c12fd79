package store

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPins(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, reopen := b.open(t, Options{})
		ctx := t.Context()
		for _, p := range []Pin{{App: "web", Cluster: "a", Revision: "r1"}, {App: "web", Cluster: "b", Revision: "r2"}, {App: "web", Revision: "r3"}, {App: "webx", Revision: "r4"}} {
			if err := s.PutPin(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutPin(ctx, Pin{App: "web", Cluster: "a", Revision: "r5"}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutPin(ctx, Pin{App: "web"}); err == nil {
			t.Fatal("pin without a revision accepted")
		}
		if err := s.DeletePins(ctx, "web", "b"); err != nil {
			t.Fatal(err)
		}
		// Pins survive a reopen.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		got, err := s.ListPins(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []Pin{{App: "web", Revision: "r3"}, {App: "web", Cluster: "a", Revision: "r5"}, {App: "webx", Revision: "r4"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("pins (-want +got):\n%s", diff)
		}
		if err := s.DeletePins(ctx, "web", ""); err != nil {
			t.Fatal(err)
		}
		got, _ = s.ListPins(ctx)
		if diff := cmp.Diff([]Pin{{App: "webx", Revision: "r4"}}, got); diff != "" {
			t.Fatalf("after unpinning web everywhere (-want +got):\n%s", diff)
		}
	})
}
