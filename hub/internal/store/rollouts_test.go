package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRollouts: one record per app, replaced by the next put, removed by
// delete (also when absent), kept across a reopen, listed in app order;
// a state that is not JSON is refused.
func TestRollouts(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, reopen := b.open(t, Options{})
		ctx := t.Context()
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		for _, r := range []RolloutRecord{
			{App: "web", State: json.RawMessage(`{"to":"r1"}`), UpdatedAt: at},
			{App: "api", State: json.RawMessage(`{"to":"r7"}`), UpdatedAt: at},
			{App: "web", State: json.RawMessage(`{"step":1,"to":"r2"}`), UpdatedAt: at.Add(time.Second)},
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
		if err := s.DeleteRollout(ctx, "never"); err != nil {
			t.Fatalf("DeleteRollout of an app without a record: %v", err)
		}
		// A restarted hub reads them back.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		got, err := s.ListRollouts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []RolloutRecord{
			{App: "api", State: json.RawMessage(`{"to":"r7"}`), UpdatedAt: at},
			{App: "web", State: json.RawMessage(`{"step":1,"to":"r2"}`), UpdatedAt: at.Add(time.Second)},
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("rollouts after reopen (-want +got):\n%s", d)
		}
	})
}

// TestUpdateRollout: concurrent read-modify-writes of one record lose
// none of them; fn sees nil for a new app, its error writes nothing, and
// a nil record writes nothing.
func TestUpdateRollout(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		type counter struct {
			N int `json:"n"`
		}
		bump := func(cur *RolloutRecord) (*RolloutRecord, error) {
			var c counter
			if cur != nil {
				if err := json.Unmarshal(cur.State, &c); err != nil {
					return nil, err
				}
			}
			c.N++
			b, _ := json.Marshal(c)
			return &RolloutRecord{App: "web", State: b}, nil
		}
		const n = 12
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() { errs <- s.UpdateRollout(ctx, "web", bump) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		refused := errors.New("refused")
		if err := s.UpdateRollout(ctx, "web", func(*RolloutRecord) (*RolloutRecord, error) {
			return &RolloutRecord{App: "web", State: json.RawMessage(`{"n":-1}`)}, refused
		}); !errors.Is(err, refused) {
			t.Fatalf("UpdateRollout whose fn fails: %v, want its error", err)
		}
		if err := s.UpdateRollout(ctx, "none", func(cur *RolloutRecord) (*RolloutRecord, error) {
			if cur != nil {
				t.Errorf("fn of an app without a record got %+v, want nil", cur)
			}
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListRollouts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []RolloutRecord{{App: "web", State: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("rollouts after %d concurrent updates (-want +got):\n%s", n, d)
		}
	})
}
