package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/testing/protocmp"
)

// fill writes one of everything and returns the raw tokens.
func fill(t *testing.T, s *Bolt) (join, api string) {
	t.Helper()
	ctx := t.Context()
	if err := s.CreateCluster(ctx, Cluster{Name: "a", Labels: map[string]string{"env": "prod"}, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	join, err := s.CreateJoinToken(ctx, "a", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	api, _, err = s.CreateAPIToken(ctx, "admin", RoleAdmin, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutCA(ctx, []byte("cert"), []byte("key")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutStatus(ctx, "a", testStatus("web", "r1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendHistory(ctx, histEntry("web", "a", 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, AuditEntry{Time: t0, Actor: "admin", Action: "cluster.add", Target: "cluster/a"}); err != nil {
		t.Fatal(err)
	}
	return join, api
}

// checkFilled checks that s holds what fill wrote, and that its tokens work.
func checkFilled(t *testing.T, s *Bolt, join, api string) {
	t.Helper()
	ctx := t.Context()
	c, err := s.GetCluster(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Cluster{Name: "a", Labels: map[string]string{"env": "prod"}, CreatedAt: t0}, c); diff != "" {
		t.Errorf("cluster (-want +got):\n%s", diff)
	}
	if cert, key, err := s.GetCA(ctx); err != nil || string(cert) != "cert" || string(key) != "key" {
		t.Errorf("GetCA: %q %q %v", cert, key, err)
	}
	if tok, err := s.LookupAPIToken(ctx, api); err != nil || tok.Name != "admin" {
		t.Errorf("LookupAPIToken: %+v %v", tok, err)
	}
	st, err := s.ListStatus(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]StatusRecord{{"a", testStatus("web", "r1")}}, st, protocmp.Transform()); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	h, _, err := s.ListHistory(ctx, "web", "a", Page{})
	if err != nil || len(h) != 1 || h[0].Revision != "rev1" {
		t.Errorf("history: %+v %v", h, err)
	}
	au, _, err := s.ListAudit(ctx, Page{})
	if err != nil || len(au) != 1 || au[0].Target != "cluster/a" {
		t.Errorf("audit: %+v %v", au, err)
	}
	if err := s.ConsumeJoinToken(ctx, "a", join, t0.Add(time.Minute)); err != nil {
		t.Errorf("ConsumeJoinToken: %v", err)
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := Open(path, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	join, api := fill(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkFilled(t, s, join, api)
}

// TestBackupRestore: a backup taken while writers run opens as a store
// (the restore procedure) holding everything committed before it.
func TestBackupRestore(t *testing.T) {
	s := openTest(t)
	join, api := fill(t, s)

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if _, err := s.AppendHistory(ctx, histEntry(fmt.Sprintf("busy%d", w), "a", i)); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		})
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Backup(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	cancel()
	wg.Wait()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	restored, err := Open(path, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	checkFilled(t, restored, join, api)
	checkConsistent(t, restored)
}

func TestOpenErrors(t *testing.T) {
	t.Run("held by another opener", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hub.db")
		s, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s2, err := OpenWithOptions(path, nil, Options{LockTimeout: 50 * time.Millisecond}); err == nil {
			s2.Close()
			t.Fatal("second Open of a held file succeeded")
		}
	})
	t.Run("newer schema", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hub.db")
		s, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keySchema, []byte(fmt.Sprint(schemaVersion+1)))
		}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if s, err := Open(path, nil); err == nil {
			s.Close()
			t.Fatal("Open of a newer schema succeeded")
		}
	})
	t.Run("not a store file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hub.db")
		if err := os.WriteFile(path, []byte("definitely not bbolt, but long enough to have a header......"), 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := Open(path, nil); err == nil {
			s.Close()
			t.Fatal("Open of a garbage file succeeded")
		}
	})
	t.Run("closed", func(t *testing.T) {
		s, err := Open(filepath.Join(t.TempDir(), "hub.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := s.GetCluster(t.Context(), "a"); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("GetCluster after Close: err %v, want a closed-database error", err)
		}
	})
}

// checkConsistent runs bbolt's page-level consistency check.
func checkConsistent(t *testing.T, s *Bolt) {
	t.Helper()
	if err := s.db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		return first
	}); err != nil {
		t.Errorf("store file %s is inconsistent: %v", s.Path(), err)
	}
}
