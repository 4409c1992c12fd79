package store

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestTouchCluster: many agents recorded at once all land, and an unknown
// cluster is ErrNotFound.
func TestTouchCluster(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		const n = 300
		for i := range n {
			if err := s.CreateCluster(ctx, Cluster{Name: fmt.Sprintf("c%03d", i), CertSerial: "s"}); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.TouchCluster(ctx, fmt.Sprintf("c%03d", i), t0.Add(time.Duration(i)*time.Second), "v1.2.3")
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			errIs(t, "touch", err, nil)
		}
		for i := range n {
			c, err := s.GetCluster(ctx, fmt.Sprintf("c%03d", i))
			errIs(t, "get", err, nil)
			if !c.LastSeen.Equal(t0.Add(time.Duration(i)*time.Second)) || c.AgentVersion != "v1.2.3" || c.CertSerial != "s" {
				t.Fatalf("cluster %s after touch: %+v", c.Name, c)
			}
		}
		errIs(t, "touch unknown", s.TouchCluster(ctx, "nope", t0, "v"), ErrNotFound)
	})
}
