package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func testStatus(app, rev string) *apiv1alpha1.AppStatus {
	return &apiv1alpha1.AppStatus{
		App:      app,
		Digest:   "sha256:" + app + rev,
		Revision: rev,
		Sync:     apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED,
		Health:   apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY,
		Objects: []*apiv1alpha1.ObjectStatus{
			{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: app, Name: app,
				Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, Health: apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY},
		},
		ObservedAt: timestamppb.New(t0),
	}
}

func TestStatus(t *testing.T) {
	type put struct {
		cluster string
		st      *apiv1alpha1.AppStatus
	}
	type del struct{ cluster, app string }
	tests := []struct {
		name    string
		puts    []put
		dels    []del
		list    string // cluster to list
		want    []StatusRecord
		wantErr error // of the last put
	}{
		{
			name: "one cluster",
			puts: []put{{"a", testStatus("web", "r1")}, {"a", testStatus("db", "r1")}, {"b", testStatus("web", "r1")}},
			list: "a",
			want: []StatusRecord{{"a", testStatus("db", "r1")}, {"a", testStatus("web", "r1")}},
		},
		{
			name: "all clusters",
			puts: []put{{"b", testStatus("web", "r1")}, {"a", testStatus("web", "r1")}, {"ab", testStatus("x", "r1")}},
			list: "",
			want: []StatusRecord{{"a", testStatus("web", "r1")}, {"ab", testStatus("x", "r1")}, {"b", testStatus("web", "r1")}},
		},
		{
			name: "newer replaces",
			puts: []put{{"a", testStatus("web", "r1")}, {"a", testStatus("web", "r2")}},
			list: "a",
			want: []StatusRecord{{"a", testStatus("web", "r2")}},
		},
		{
			name: "prefix cluster not mixed in",
			puts: []put{{"a", testStatus("web", "r1")}, {"ab", testStatus("web", "r1")}},
			list: "a",
			want: []StatusRecord{{"a", testStatus("web", "r1")}},
		},
		{
			name: "delete",
			puts: []put{{"a", testStatus("web", "r1")}, {"a", testStatus("db", "r1")}},
			dels: []del{{"a", "web"}, {"a", "missing"}},
			list: "a",
			want: []StatusRecord{{"a", testStatus("db", "r1")}},
		},
		{
			name:    "unknown cluster",
			puts:    []put{{"zzz", testStatus("web", "r1")}},
			list:    "",
			wantErr: ErrNotFound,
		},
		{
			name:    "nil status",
			puts:    []put{{"a", nil}},
			wantErr: ErrInvalid,
		},
		{
			name:    "empty app",
			puts:    []put{{"a", &apiv1alpha1.AppStatus{}}},
			wantErr: ErrInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, s Store) {
				ctx := t.Context()
				for _, c := range []string{"a", "ab", "b"} {
					if err := s.CreateCluster(ctx, Cluster{Name: c}); err != nil {
						t.Fatal(err)
					}
				}
				var err error
				for _, p := range tt.puts {
					err = s.PutStatus(ctx, p.cluster, p.st)
				}
				errIs(t, "PutStatus", err, tt.wantErr)
				for _, d := range tt.dels {
					if err := s.DeleteStatus(ctx, d.cluster, d.app); err != nil {
						t.Fatal(err)
					}
				}
				got, err := s.ListStatus(ctx, tt.list)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
					t.Errorf("ListStatus(%q) (-want +got):\n%s", tt.list, diff)
				}
			})
		})
	}
}

// TestPutStatusConcurrent: many writers at once (as agents report) all land,
// each with its last value.
func TestPutStatusConcurrent(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		const clusters, apps, rounds = 50, 4, 5
		for c := range clusters {
			if err := s.CreateCluster(ctx, Cluster{Name: fmt.Sprintf("c%03d", c)}); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, clusters*apps)
		for c := range clusters {
			for a := range apps {
				wg.Go(func() {
					for r := range rounds {
						if err := s.PutStatus(ctx, fmt.Sprintf("c%03d", c), testStatus(fmt.Sprintf("app%d", a), fmt.Sprint(r))); err != nil {
							errs <- err
							return
						}
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		var want []StatusRecord
		for c := range clusters {
			for a := range apps {
				want = append(want, StatusRecord{fmt.Sprintf("c%03d", c), testStatus(fmt.Sprintf("app%d", a), fmt.Sprint(rounds-1))})
			}
		}
		got, err := s.ListStatus(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
	})
}

func TestPutStatusCancelled(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.PutStatus(ctx, "a", testStatus("web", "r1")); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled context: err %v, want context.Canceled", err)
		}
	})
}
