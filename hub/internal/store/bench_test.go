package store

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// benchClusters is the fleet size of the benchmarks.
const benchClusters = 10_000

// benchStatus is a typical report: an app of ten objects, all healthy.
func benchStatus(app string, rev int) *apiv1alpha1.AppStatus {
	st := &apiv1alpha1.AppStatus{
		App:        app,
		Digest:     "sha256:4f9d1c0b6a7e3e2d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d",
		Revision:   "3c1e9f0a7b2d4c6e8f0a1b3c5d7e9f1a3b5c7d9e-" + strconv.Itoa(rev),
		Sync:       apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED,
		Health:     apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY,
		ObservedAt: timestamppb.New(t0),
	}
	for i := range 10 {
		st.Objects = append(st.Objects, &apiv1alpha1.ObjectStatus{
			Group: "apps", Version: "v1", Kind: "Deployment", Namespace: app, Name: fmt.Sprintf("%s-%d", app, i),
			Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, Health: apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY,
		})
	}
	return st
}

// BenchmarkPutStatus measures status writes from many goroutines at once,
// as from a fleet of agents, each write a changed status of one of
// benchClusters clusters. Every op is a durable write (fsync per batch).
func BenchmarkPutStatus(b *testing.B) {
	s := openTest(b)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		for c := range benchClusters {
			if err := putJSON(tx.Bucket(bucketClusters), fmt.Appendf(nil, "cluster-%05d", c), Cluster{Name: fmt.Sprintf("cluster-%05d", c)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.Logf("status value: %d bytes", proto.Size(benchStatus("guestbook", 1)))
	for _, perCPU := range []int{1, 8, 128, 512} {
		writers := perCPU * runtime.GOMAXPROCS(0)
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			var rev atomic.Int64
			b.SetParallelism(perCPU)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := int(rev.Add(1))
					cluster := fmt.Sprintf("cluster-%05d", rand.IntN(benchClusters))
					if err := s.PutStatus(b.Context(), cluster, benchStatus("guestbook", n)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}

// BenchmarkListStatus measures loading the whole fleet's status, as the hub
// does at start.
func BenchmarkListStatus(b *testing.B) {
	s := openTest(b)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		for c := range benchClusters {
			name := fmt.Sprintf("cluster-%05d", c)
			if err := putJSON(tx.Bucket(bucketClusters), []byte(name), Cluster{Name: name}); err != nil {
				return err
			}
			data, err := StatusMarshal.Marshal(benchStatus("guestbook", c))
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketStatus).Put(statusKey(name, "guestbook"), data); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		recs, err := s.ListStatus(b.Context(), "")
		if err != nil || len(recs) != benchClusters {
			b.Fatalf("ListStatus: %d records, err %v", len(recs), err)
		}
	}
}
