//go:build !unit

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
)

// TestLiveLogBundleLatency is a benchmark row, not a timed assertion (it
// runs only with FLOTILLA_BENCH_LIVE=1 and asserts nothing about time): the
// time from a commit's webhook to the hub showing the app Synced at it,
// with no log followed, then while followers stream a chatty pod's log
// over the same agent stream. Recorded in docs/protocol.md.
func TestLiveLogBundleLatency(t *testing.T) {
	if os.Getenv("FLOTILLA_BENCH_LIVE") != "1" {
		t.Skip("benchmark row: set FLOTILLA_BENCH_LIVE=1")
	}
	e := newEnv(t, "alpha")
	e.startHub(hubDefaults())
	e.enroll("alpha", "env=live")
	e.waitConnected(e.hub, "alpha", true)
	rev := e.commit("live app", liveFiles)
	e.writeApp("live", appSpec{name: "live", path: "live", ns: "live", clusters: []string{"alpha"}, prune: true, selfHeal: true}.yaml(e.repo.URL))
	e.waitSynced("live", rev, "alpha")
	pc, ok := e.clusters["alpha"].(*cluster.ProcessCluster)
	if !ok {
		t.Skip("needs a process cluster")
	}
	const rounds = 10
	measure := func(label string) {
		var took []time.Duration
		for i := range rounds {
			begin := time.Now()
			r := e.commit(label, map[string]string{"live/bench.yaml": cmManifest("bench", map[string]string{"round": fmt.Sprintf("%s-%d", label, i)})})
			e.waitSynced("live", r, "alpha")
			took = append(took, time.Since(begin))
		}
		slices.Sort(took)
		t.Logf("%s: commit to Synced p50 %v, max %v (%d rounds)", label, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), rounds)
	}
	measure("no log followed")

	for _, followers := range []int{1, 10} {
		ctx, cancel := context.WithCancel(t.Context())
		var bytes atomic.Int64
		done := make(chan struct{}, followers+1)
		for range followers {
			go func() {
				defer func() { done <- struct{}{} }()
				req, _ := http.NewRequestWithContext(ctx, "GET", e.hub.HTTPURL+"/api/v1/apps/live/logs?follow=true&tail=0&group=apps&kind=Deployment&name=web", nil)
				req.Header.Set("Authorization", "Bearer "+e.hub.Token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				defer resp.Body.Close()
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					bytes.Add(int64(len(sc.Bytes()) + 1))
				}
			}()
		}
		go func() {
			defer func() { done <- struct{}{} }()
			line := strings.Repeat("x", 200)
			for i := 0; ctx.Err() == nil; i++ {
				appendPodLog(t, pc.PodLogFile(), fmt.Sprintf("chatter %d %s", i, line))
				if i%50 == 0 {
					select {
					case <-ctx.Done():
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
		}()
		e.eventually("followers receive", func() error {
			if bytes.Load() < 1<<20 {
				return fmt.Errorf("%d bytes so far", bytes.Load())
			}
			return nil
		})
		begin, b0 := time.Now(), bytes.Load()
		measure(fmt.Sprintf("%d chatty log followers", followers))
		t.Logf("%d followers: %.1f MiB/s through the hub meanwhile", followers, float64(bytes.Load()-b0)/(1<<20)/time.Since(begin).Seconds())
		cancel()
		for range followers + 1 {
			<-done
		}
	}
}
