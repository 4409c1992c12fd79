package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// TestCancelledContext: every method refuses to start with a cancelled
// context and says so with context.Canceled.
func TestCancelledContext(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		noop := func(*Cluster) error { return nil }
		ops := map[string]func() error{
			"CreateCluster": func() error { return s.CreateCluster(ctx, Cluster{Name: "a"}) },
			"PutCluster":    func() error { return s.PutCluster(ctx, Cluster{Name: "a"}) },
			"GetCluster":    func() error { _, err := s.GetCluster(ctx, "a"); return err },
			"ListClusters":  func() error { _, _, err := s.ListClusters(ctx, Page{}); return err },
			"DeleteCluster": func() error { return s.DeleteCluster(ctx, "a") },
			"UpdateCluster": func() error { return s.UpdateCluster(ctx, "a", noop) },
			"CreateJoinToken": func() error {
				_, err := s.CreateJoinToken(ctx, "a", time.Hour, t0)
				return err
			},
			"ConsumeJoinToken": func() error { return s.ConsumeJoinToken(ctx, "a", "x", t0) },
			"EnrollCluster":    func() error { return s.EnrollCluster(ctx, "a", "x", t0, noop) },
			"GetJoinToken":     func() error { _, err := s.GetJoinToken(ctx, "a"); return err },
			"GetCA":            func() error { _, _, err := s.GetCA(ctx); return err },
			"PutCA":            func() error { return s.PutCA(ctx, []byte("c"), []byte("k")) },
			"CreateAPIToken": func() error {
				_, _, err := s.CreateAPIToken(ctx, "n", RoleAdmin, t0)
				return err
			},
			"LookupAPIToken": func() error {
				_, err := s.LookupAPIToken(ctx, "flt_0123456789abcdef_x")
				return err
			},
			"ListAPITokens":  func() error { _, _, err := s.ListAPITokens(ctx, Page{}); return err },
			"DeleteAPIToken": func() error { return s.DeleteAPIToken(ctx, "x") },
			"PutStatus": func() error {
				return s.PutStatus(ctx, "a", &apiv1alpha1.AppStatus{App: "web"})
			},
			"DeleteStatus":  func() error { return s.DeleteStatus(ctx, "a", "web") },
			"ListStatus":    func() error { _, err := s.ListStatus(ctx, ""); return err },
			"AppendHistory": func() error { _, err := s.AppendHistory(ctx, histEntry("web", "a", 1)); return err },
			"GetHistory":    func() error { _, err := s.GetHistory(ctx, 1); return err },
			"ListHistory":   func() error { _, _, err := s.ListHistory(ctx, "", "", Page{}); return err },
			"AppendAudit":   func() error { return s.AppendAudit(ctx, AuditEntry{Actor: "x"}) },
			"ListAudit":     func() error { _, _, err := s.ListAudit(ctx, Page{}); return err },
			"Backup":        func() error { return s.Backup(ctx, &bytes.Buffer{}) },
		}
		for name, op := range ops {
			t.Run(name, func(t *testing.T) {
				if err := op(); !errors.Is(err, context.Canceled) {
					t.Errorf("err %v, want context.Canceled", err)
				}
			})
		}
	})
}
