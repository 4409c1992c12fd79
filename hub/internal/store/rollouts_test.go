package store

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
)

func TestRollouts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := Open(path, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, r := range []RolloutRecord{
		{App: "web", State: json.RawMessage(`{"to":"r1"}`), UpdatedAt: at},
		{App: "api", State: json.RawMessage(`{"to":"r7"}`), UpdatedAt: at},
		{App: "web", State: json.RawMessage(`{"to":"r2","step":1}`), UpdatedAt: at.Add(time.Second)},
		{App: "gone", State: json.RawMessage(`{}`)},
	} {
		if err := s.PutRollout(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutRollout(ctx, RolloutRecord{App: "bad", State: json.RawMessage(`{`)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PutRollout of a state that is not JSON: %v, want ErrInvalid", err)
	}
	if err := s.DeleteRollout(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	// A restarted hub reads them back.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.ListRollouts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []RolloutRecord{
		{App: "api", State: json.RawMessage(`{"to":"r7"}`), UpdatedAt: at},
		{App: "web", State: json.RawMessage(`{"to":"r2","step":1}`), UpdatedAt: at.Add(time.Second)},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("rollouts after reopen (-want +got):\n%s", d)
	}
}
