package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func TestClusters(t *testing.T) {
	eu := Cluster{Name: "prod-eu-1", Labels: map[string]string{"env": "prod", "region": "eu"}, CreatedAt: t0}
	us := Cluster{Name: "prod-us-1", Labels: map[string]string{"env": "prod"}, CreatedAt: t0}
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		seed    []Cluster
		op      func(s Store) error
		wantErr error
		want    []Cluster // all clusters afterwards
	}{
		{
			name: "create",
			op:   func(s Store) error { return s.CreateCluster(t.Context(), eu) },
			want: []Cluster{eu},
		},
		{
			name:    "create taken name",
			seed:    []Cluster{eu},
			op:      func(s Store) error { return s.CreateCluster(t.Context(), Cluster{Name: eu.Name}) },
			wantErr: ErrConflict,
			want:    []Cluster{eu},
		},
		{
			name:    "create empty name",
			op:      func(s Store) error { return s.CreateCluster(t.Context(), Cluster{}) },
			wantErr: ErrInvalid,
		},
		{
			name:    "create name with NUL",
			op:      func(s Store) error { return s.CreateCluster(t.Context(), Cluster{Name: "a\x00b"}) },
			wantErr: ErrInvalid,
		},
		{
			name: "put replaces",
			seed: []Cluster{eu, us},
			op: func(s Store) error {
				return s.PutCluster(t.Context(), Cluster{Name: us.Name, Labels: map[string]string{"env": "staging"}})
			},
			want: []Cluster{eu, {Name: us.Name, Labels: map[string]string{"env": "staging"}}},
		},
		{
			name: "put creates",
			op:   func(s Store) error { return s.PutCluster(t.Context(), us) },
			want: []Cluster{us},
		},
		{
			name: "get",
			seed: []Cluster{eu},
			op: func(s Store) error {
				got, err := s.GetCluster(t.Context(), eu.Name)
				if diff := cmp.Diff(eu, got); diff != "" {
					t.Errorf("GetCluster (-want +got):\n%s", diff)
				}
				return err
			},
			want: []Cluster{eu},
		},
		{
			name: "get missing",
			op: func(s Store) error {
				_, err := s.GetCluster(t.Context(), "nope")
				return err
			},
			wantErr: ErrNotFound,
		},
		{
			name: "update",
			seed: []Cluster{eu},
			op: func(s Store) error {
				return s.UpdateCluster(t.Context(), eu.Name, func(c *Cluster) error {
					c.CertSerial, c.LastSeen, c.AgentVersion = "0a1b", t0.Add(time.Minute), "v0.1.0"
					return nil
				})
			},
			want: []Cluster{{Name: eu.Name, Labels: eu.Labels, CreatedAt: t0, CertSerial: "0a1b",
				LastSeen: t0.Add(time.Minute), AgentVersion: "v0.1.0"}},
		},
		{
			name: "update missing",
			op: func(s Store) error {
				return s.UpdateCluster(t.Context(), "nope", func(*Cluster) error { return nil })
			},
			wantErr: ErrNotFound,
		},
		{
			name: "update fn error writes nothing",
			seed: []Cluster{eu},
			op: func(s Store) error {
				return s.UpdateCluster(t.Context(), eu.Name, func(c *Cluster) error {
					c.Revoked = true
					return errBoom
				})
			},
			wantErr: errBoom,
			want:    []Cluster{eu},
		},
		{
			name: "update rename refused",
			seed: []Cluster{eu},
			op: func(s Store) error {
				return s.UpdateCluster(t.Context(), eu.Name, func(c *Cluster) error { c.Name = "other"; return nil })
			},
			wantErr: ErrConflict,
			want:    []Cluster{eu},
		},
		{
			name:    "delete",
			seed:    []Cluster{eu, us},
			op:      func(s Store) error { return s.DeleteCluster(t.Context(), eu.Name) },
			want:    []Cluster{us},
			wantErr: nil,
		},
		{
			name:    "delete missing",
			seed:    []Cluster{us},
			op:      func(s Store) error { return s.DeleteCluster(t.Context(), eu.Name) },
			wantErr: ErrNotFound,
			want:    []Cluster{us},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, s Store) {
				for _, c := range tt.seed {
					if err := s.CreateCluster(t.Context(), c); err != nil {
						t.Fatal(err)
					}
				}
				errIs(t, tt.name, tt.op(s), tt.wantErr)
				got, next, err := s.ListClusters(t.Context(), Page{})
				if err != nil || next != "" {
					t.Fatalf("ListClusters: next %q, err %v", next, err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("clusters afterwards (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestDeleteClusterDeletesTokenAndStatuses(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		for _, name := range []string{"a", "ab", "b"} {
			if err := s.CreateCluster(ctx, Cluster{Name: name}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateJoinToken(ctx, name, time.Hour, t0); err != nil {
				t.Fatal(err)
			}
			for _, app := range []string{"web", "db"} {
				if err := s.PutStatus(ctx, name, &apiv1alpha1.AppStatus{App: app}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.DeleteCluster(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetJoinToken(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("join token of deleted cluster: err %v, want ErrNotFound", err)
		}
		if _, err := s.GetJoinToken(ctx, "ab"); err != nil {
			t.Errorf("join token of cluster ab: %v", err)
		}
		recs, err := s.ListStatus(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range recs {
			got = append(got, r.Cluster+"/"+r.Status.GetApp())
		}
		if diff := cmp.Diff([]string{"ab/db", "ab/web", "b/db", "b/web"}, got); diff != "" {
			t.Errorf("statuses after delete (-want +got):\n%s", diff)
		}
		// A late status for the deleted cluster is refused, not resurrected.
		if err := s.PutStatus(ctx, "a", &apiv1alpha1.AppStatus{App: "web"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("PutStatus on deleted cluster: err %v, want ErrNotFound", err)
		}
	})
}

func TestListClustersPages(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		var want []string
		for i := range 25 {
			name := fmt.Sprintf("cluster-%02d", i)
			want = append(want, name)
			if err := s.CreateCluster(t.Context(), Cluster{Name: name}); err != nil {
				t.Fatal(err)
			}
		}
		for _, limit := range []int{1, 7, 24, 25, 26, 0} {
			var got []string
			pages := 0
			p := Page{Limit: limit}
			for {
				cs, next, err := s.ListClusters(t.Context(), p)
				if err != nil {
					t.Fatalf("limit %d: %v", limit, err)
				}
				pages++
				for _, c := range cs {
					got = append(got, c.Name)
				}
				if next == "" {
					break
				}
				p.After = next
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("limit %d: names (-want +got):\n%s", limit, diff)
			}
			wantPages := 1
			if limit > 0 && limit < 25 {
				wantPages = (25 + limit - 1) / limit
			}
			if pages != wantPages {
				t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
			}
		}
		if _, _, err := s.ListClusters(t.Context(), Page{After: "!!not base64"}); !errors.Is(err, ErrBadCursor) {
			t.Errorf("bad cursor: err %v, want ErrBadCursor", err)
		}
	})
}
