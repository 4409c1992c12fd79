package cluster

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvSkipMissingBins, when "1", makes Start and StartAll skip the test
// instead of failing it when the control-plane binaries are missing.
const EnvSkipMissingBins = "FLOTILLA_E2E_SKIP_MISSING_BINS"

// stopTimeout bounds the Stop that Start registers with t.Cleanup.
const stopTimeout = time.Minute

// Start creates one cluster with p; see StartAll.
func Start(t testing.TB, p Provider, name string) Cluster {
	t.Helper()
	return StartAll(t, p, name)[0]
}

// StartAll creates clusters with the given names concurrently and registers
// their Stop with t.Cleanup; when the test has failed, the cleanup first
// logs each cluster's Dump. If any creation fails the test fails (clusters
// that did start are still stopped). Missing control-plane binaries fail the
// test with the hint to run `make bins`, or skip it when
// FLOTILLA_E2E_SKIP_MISSING_BINS=1. Under `go test -short` the test is
// skipped.
func StartAll(t testing.TB, p Provider, names ...string) []Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real clusters; run without -short")
	}
	ctx := t.Context()
	clusters := make([]Cluster, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { clusters[i], errs[i] = p.Create(ctx, name) })
	}
	wg.Wait()

	for _, c := range clusters {
		if c == nil {
			continue
		}
		t.Cleanup(func() {
			if t.Failed() {
				var b strings.Builder
				c.Dump(&b)
				t.Log(b.String())
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
			defer cancel()
			if err := c.Stop(ctx); err != nil {
				t.Errorf("stop cluster %s: %v", c.Name(), err)
			}
		})
	}
	if err := errors.Join(errs...); err != nil {
		if errors.Is(err, ErrMissingBinaries) && os.Getenv(EnvSkipMissingBins) == "1" {
			t.Skipf("skipping: %v (%s=1)", err, EnvSkipMissingBins)
		}
		t.Fatalf("start clusters: %v", err)
	}
	return clusters
}
