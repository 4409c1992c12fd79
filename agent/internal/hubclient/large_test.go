//go:build !unit

package hubclient_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/agent/internal/hubclient"
)

// TestLargeBundleThroughTheHub: twelve ConfigMaps of random data (12 MiB of
// objects that gzip barely shrinks) go from git through the hub's render
// to an agent, which verifies and decodes them.
func TestLargeBundleThroughTheHub(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	files := map[string][]byte{}
	for i := range 12 {
		b := make([]byte, 768<<10)
		rand.Read(b)
		files[fmt.Sprintf("apps/cfg/big-%02d.yaml", i)] = fmt.Appendf(nil, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big-%02d}\ndata:\n  blob: %s\n", i, base64.StdEncoding.EncodeToString(b))
	}
	if err := f.repo.Write(files); err != nil {
		t.Fatal(err)
	}
	rev, err := f.repo.CommitAndPush("12 MiB of random ConfigMaps")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.api(ctx, "POST", "/api/v1/refresh", nil, nil); err != nil {
		t.Fatal(err)
	}

	a, err := f.enroll(ctx, "big", hubclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a.run(ctx, &wg)
	digest := waitSynced(t, f, rev, 1, 3*time.Minute)
	a.engine.mu.Lock()
	b := a.engine.held["cfg"]
	a.engine.mu.Unlock()
	if b.GetDigest() != digest {
		t.Fatalf("agent holds %s, hub wants %s", b.GetDigest(), digest)
	}
	if n := len(b.GetObjectsGzip()); n < 8<<20 {
		t.Fatalf("bundle is %d bytes compressed; not large enough to prove anything", n)
	}
	t.Logf("bundle of %.1f MiB compressed delivered", float64(len(b.GetObjectsGzip()))/(1<<20))
}
