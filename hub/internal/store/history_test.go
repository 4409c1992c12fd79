package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func histEntry(app, cluster string, i int) HistoryEntry {
	return HistoryEntry{
		App: app, Cluster: cluster, Revision: fmt.Sprintf("rev%d", i), Digest: fmt.Sprintf("sha256:%d", i),
		StartedAt: t0.Add(time.Duration(i) * time.Second), FinishedAt: t0.Add(time.Duration(i)*time.Second + 500*time.Millisecond),
		InitiatedBy: "automated", Result: ResultSucceeded,
	}
}

// seedHistory appends, round-robin, entries for apps {web, db} × clusters
// {a, b} and returns them with their IDs, oldest first.
func seedHistory(t *testing.T, s Store, n int) []HistoryEntry {
	t.Helper()
	var out []HistoryEntry
	apps, clusters := []string{"web", "db"}, []string{"a", "b"}
	for i := range n {
		e := histEntry(apps[i%2], clusters[(i/2)%2], i)
		e.ID = 999 // ignored
		id, err := s.AppendHistory(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		e.ID = id
		out = append(out, e)
	}
	return out
}

// newestFirst filters entries by app and cluster ("" = any), newest first.
func newestFirst(all []HistoryEntry, app, cluster string) []HistoryEntry {
	var out []HistoryEntry
	for i := len(all) - 1; i >= 0; i-- {
		e := all[i]
		if (app == "" || e.App == app) && (cluster == "" || e.Cluster == cluster) {
			out = append(out, e)
		}
	}
	return out
}

func TestListHistory(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		all := seedHistory(t, s, 41)
		for i := 1; i < len(all); i++ {
			if all[i].ID <= all[i-1].ID {
				t.Fatalf("entry %d got ID %d after %d; IDs must grow", i, all[i].ID, all[i-1].ID)
			}
		}
		filters := []struct{ app, cluster string }{{"", ""}, {"web", ""}, {"", "b"}, {"db", "a"}, {"web", "b"}, {"nope", ""}, {"web", "nope"}}
		for _, f := range filters {
			for _, limit := range []int{1, 3, 10, 11, 0} {
				t.Run(fmt.Sprintf("app=%q cluster=%q limit=%d", f.app, f.cluster, limit), func(t *testing.T) {
					var got []HistoryEntry
					p := Page{Limit: limit}
					for pages := 0; ; pages++ {
						if pages > 50 {
							t.Fatal("no end of pages")
						}
						es, next, err := s.ListHistory(t.Context(), f.app, f.cluster, p)
						if err != nil {
							t.Fatal(err)
						}
						if limit > 0 && len(es) > limit {
							t.Fatalf("page of %d entries, limit %d", len(es), limit)
						}
						got = append(got, es...)
						if next == "" {
							break
						}
						p.After = next
					}
					if diff := cmp.Diff(newestFirst(all, f.app, f.cluster), got); diff != "" {
						t.Errorf("entries (-want +got):\n%s", diff)
					}
				})
			}
		}
	})
}

func TestHistoryErrors(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		seedHistory(t, s, 3)
		tests := []struct {
			name    string
			op      func() error
			wantErr error
		}{
			{"append without app", func() error { _, err := s.AppendHistory(t.Context(), HistoryEntry{Cluster: "a"}); return err }, ErrInvalid},
			{"append without cluster", func() error { _, err := s.AppendHistory(t.Context(), HistoryEntry{App: "web"}); return err }, ErrInvalid},
			{"get missing", func() error { _, err := s.GetHistory(t.Context(), 42); return err }, ErrNotFound},
			{"cursor not base64", func() error { _, _, err := s.ListHistory(t.Context(), "", "", Page{After: "%%"}); return err }, ErrBadCursor},
			{"cursor wrong length", func() error {
				_, _, err := s.ListHistory(t.Context(), "", "", Page{After: EncodeCursor([]byte("abc"))})
				return err
			}, ErrBadCursor},
			{"audit cursor wrong length", func() error {
				_, _, err := s.ListAudit(t.Context(), Page{After: EncodeCursor([]byte("abc"))})
				return err
			}, ErrBadCursor},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { errIs(t, tt.name, tt.op(), tt.wantErr) })
		}
	})
}

func TestGetHistory(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		all := seedHistory(t, s, 5)
		for _, want := range all {
			got, err := s.GetHistory(t.Context(), want.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("entry %d (-want +got):\n%s", want.ID, diff)
			}
		}
	})
}

// TestHistoryLimit: each (app, cluster) keeps its newest entries only, and
// the indexes drop the old ones too.
func TestHistoryLimit(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, _ := b.open(t, Options{HistoryLimit: 3})
		all := seedHistory(t, s, 40) // 10 per (app, cluster)
		var kept []HistoryEntry
		for i, e := range all {
			if i >= 40-12 { // the last 3 of each of the 4 pairs
				kept = append(kept, e)
			}
		}
		for _, f := range []struct{ app, cluster string }{{"", ""}, {"web", ""}, {"", "a"}, {"db", "b"}} {
			got, next, err := s.ListHistory(t.Context(), f.app, f.cluster, Page{})
			if err != nil || next != "" {
				t.Fatalf("ListHistory: next %q, err %v", next, err)
			}
			if diff := cmp.Diff(newestFirst(kept, f.app, f.cluster), got); diff != "" {
				t.Errorf("app %q cluster %q (-want +got):\n%s", f.app, f.cluster, diff)
			}
		}
		if _, err := s.GetHistory(t.Context(), all[0].ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("dropped entry: err %v, want ErrNotFound", err)
		}
		// A cursor pointing at a dropped entry still pages on.
		got, _, err := s.ListHistory(t.Context(), "", "", Page{After: EncodeCursor(IDKey(all[5].ID))})
		if err != nil || len(got) != 0 {
			t.Errorf("cursor at dropped entry: %d entries, err %v; want none", len(got), err)
		}
	})
}

func TestAudit(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		var all []AuditEntry
		for i := range 23 {
			e := AuditEntry{Time: t0.Add(time.Duration(i) * time.Second), Actor: "admin", Action: "cluster.add",
				Target: fmt.Sprintf("cluster/c%d", i), Detail: "labels env=prod"}
			if err := s.AppendAudit(t.Context(), e); err != nil {
				t.Fatal(err)
			}
			all = append([]AuditEntry{e}, all...)
		}
		for _, limit := range []int{1, 5, 23, 0} {
			var got []AuditEntry
			p := Page{Limit: limit}
			for {
				es, next, err := s.ListAudit(t.Context(), p)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, es...)
				if next == "" {
					break
				}
				p.After = next
			}
			for i := 1; i < len(got); i++ {
				if got[i].ID >= got[i-1].ID {
					t.Fatalf("limit %d: entry %d has ID %d after %d, want newest (highest) first", limit, i, got[i].ID, got[i-1].ID)
				}
			}
			if diff := cmp.Diff(all, got, cmpopts.IgnoreFields(AuditEntry{}, "ID")); diff != "" {
				t.Errorf("limit %d (-want +got):\n%s", limit, diff)
			}
		}
	})
}
