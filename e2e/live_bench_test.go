//go:build !unit

package e2e

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/cluster"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// Live-view benchmark rows. They run only with FLOTILLA_BENCH_LIVE=1, log
// their figures (with the machine's load average, which other work on the
// machine moves) and assert nothing about time; the figures are recorded in
// docs/protocol.md and docs/benchmarks.md. FLOTILLA_BENCH_PROFILE_DIR, when
// set, receives CPU profiles of the hub and the agent taken during each
// measurement.

func benchLive(t *testing.T) {
	t.Helper()
	if os.Getenv("FLOTILLA_BENCH_LIVE") != "1" {
		t.Skip("benchmark row: set FLOTILLA_BENCH_LIVE=1")
	}
}

// loadAvg is /proc/loadavg's 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// pct is the nearest-rank percentile p (0..100) of sorted samples.
func pct(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// benchHub starts the hub with its pprof handlers and an agent for cluster
// with extra flags and pprof; it returns the agent.
func (e *env) benchHub(cluster string, hubExtra, agentExtra []string) (hubDebug string, agent *harness.Agent) {
	e.t.Helper()
	addr, err := harness.FreeAddr()
	if err != nil {
		e.t.Fatal(err)
	}
	o := hubDefaults()
	o.Extra = append([]string{"--debug-listen", addr, "--log-level", "info"}, hubExtra...)
	e.startHub(o)
	j, err := e.hub.AddCluster(e.t.Context(), cluster, "env=live")
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := harness.StartAgent(binDir, e.dir, e.clusters[cluster].Kubeconfig(), j, append([]string{"--pprof", "--log-level", "info"}, agentExtra...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.agents[cluster] = a
	e.root.Cleanup(func() { e.agents[cluster].Stop() })
	e.waitConnected(e.hub, cluster, true)
	return "http://" + addr, a
}

// profile takes CPU profiles of the hub and the agent for d into
// FLOTILLA_BENCH_PROFILE_DIR (when set) as hub-LABEL.pprof and
// agent-LABEL.pprof; wait for them with the returned func.
func profile(t *testing.T, hubDebug string, agent *harness.Agent, label string, d time.Duration) (wait func()) {
	dir := os.Getenv("FLOTILLA_BENCH_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	var wg sync.WaitGroup
	for name, base := range map[string]string{"hub": hubDebug, "agent": agent.MetricsURL} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(d.Seconds()))
			resp, err := http.Get(url)
			if err != nil {
				t.Logf("profile %s: %v", name, err)
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Logf("profile %s: %v %s", name, err, resp.Status)
				return
			}
			p := filepath.Join(dir, name+"-"+label+".pprof")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Logf("profile %s: %v", name, err)
			}
		}()
	}
	return wg.Wait
}

// bigApp is an app of n objects: deployments Deployments of one replica
// (kwok runs their Pods), as many Services, and ConfigMaps for the rest.
func bigApp(n, deployments int) map[string]string {
	files := map[string]string{}
	for i := range deployments {
		name := fmt.Sprintf("web-%03d", i)
		files[fmt.Sprintf("big/%s.yaml", name)] = deployment(name, 1, "registry.k8s.io/pause:3.10") + "---\n" + service(name)
	}
	var b strings.Builder
	for i := range n - 2*deployments {
		if i > 0 {
			b.WriteString("---\n")
		}
		b.WriteString(configMap(fmt.Sprintf("cm-%04d", i), "v1"))
	}
	files["big/configmaps.yaml"] = b.String()
	return files
}

// TestLiveTreeLatency: the time of GET /api/v1/apps/APP/resources through
// the hub, from the request to the decoded answer, for an app of 1,000
// objects on a real process cluster (50 Deployments whose Pods kwok runs,
// 50 Services, 900 ConfigMaps), so the tree holds the app's 1,000 objects
// plus 50 ReplicaSets, 50 Pods and 50 EndpointSlices.
func TestLiveTreeLatency(t *testing.T) {
	benchLive(t)
	const objects, deployments, samples = 1000, 50, 200
	e := newEnv(t, "alpha")
	if _, ok := e.clusters["alpha"].(*cluster.ProcessCluster); !ok {
		t.Skip("needs a process cluster")
	}
	hubDebug, agent := e.benchHub("alpha", nil, nil)
	rev := e.commit("1,000 objects", bigApp(objects, deployments))
	e.writeApp("big", appSpec{name: "big", path: "big", ns: "big", clusters: []string{"alpha"}, prune: true}.yaml(e.repo.URL))
	e.waitSynced("big", rev, "alpha")
	want := objects + 3*deployments
	e.eventually(fmt.Sprintf("a tree of %d nodes", want), func() error {
		var rr api.ResourcesResponse
		if err := e.hub.DoJSON(t.Context(), "GET", "/api/v1/apps/big/resources", nil, &rr); err != nil {
			return err
		}
		if len(rr.Clusters) != 1 || rr.Clusters[0].Error != "" {
			return fmt.Errorf("clusters %+v", rr.Clusters)
		}
		inApp := 0
		for _, n := range rr.Clusters[0].Nodes {
			if n.InApp {
				inApp++
			}
		}
		if len(rr.Clusters[0].Nodes) != want || inApp != objects {
			return fmt.Errorf("%d nodes, %d of the app, want %d and %d", len(rr.Clusters[0].Nodes), inApp, want, objects)
		}
		return nil
	})

	load0, cpu0, begin := loadAvg(), cpuTimes(), time.Now()
	wait := profile(t, hubDebug, agent, "tree", 20*time.Second)
	var took []time.Duration
	size := 0
	for range samples {
		begin := time.Now()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", e.hub.HTTPURL+"/api/v1/apps/big/resources", nil)
		req.Header.Set("Authorization", "Bearer "+e.hub.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		var rr api.ResourcesResponse
		if err == nil {
			err = json.Unmarshal(body, &rr)
		}
		took = append(took, time.Since(begin))
		if err != nil || resp.StatusCode != http.StatusOK || len(rr.Clusters) != 1 || len(rr.Clusters[0].Nodes) != want {
			t.Fatalf("tree request: %v %s", err, resp.Status)
		}
		size = len(body)
	}
	secs := time.Since(begin).Seconds()
	cpu := cpuRates(cpu0, cpuTimes(), secs)
	wait()
	slices.Sort(took)
	t.Logf("BENCH tree of %d nodes (%d objects in the app), %d KiB of JSON: p50 %v, p99 %v, max %v (n=%d, sequential); load average before %s, after %s; CPU s/s: %s",
		want, objects, size>>10, pct(took, 50).Round(time.Millisecond), pct(took, 99).Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), samples, load0, loadAvg(), cpu)
}

// followerLevel is one level of TestLiveLogBundleLatency: n followers
// through the hub, or (direct) n followers of the pod at the cluster's
// API server itself, sharing a 1 MiB/s reader as the agent's do: the
// cluster's own cost of serving the logs, without Flotilla's stream.
// The shared reader's rate is the agent's.
type followerLevel struct {
	n      int
	direct bool
}

// followerLevels are the levels (FLOTILLA_BENCH_LIVE_FOLLOWERS,
// comma-separated, "100d" for direct; default 0,1,10,100,100d).
func followerLevels(t *testing.T) []followerLevel {
	s := os.Getenv("FLOTILLA_BENCH_LIVE_FOLLOWERS")
	if s == "" {
		s = "0,1,10,100,100d"
	}
	var out []followerLevel
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		l := followerLevel{direct: strings.HasSuffix(f, "d")}
		n, err := strconv.Atoi(strings.TrimSuffix(f, "d"))
		if err != nil {
			t.Fatalf("FLOTILLA_BENCH_LIVE_FOLLOWERS: %v", err)
		}
		l.n = n
		out = append(out, l)
	}
	return out
}

// cpuTimes are the CPU seconds used so far by this test process and each
// process it started (and theirs), summed by command name.
func cpuTimes() map[string]float64 {
	const hz = 100 // USER_HZ on Linux
	type proc struct {
		ppid int
		comm string
		cpu  float64
	}
	procs := map[int]proc{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		f := strings.Fields(s[closing+1:]) // f[0] is the state (field 3)
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		procs[pid] = proc{ppid: ppid, comm: s[open+1 : closing], cpu: (ut + st) / hz}
	}
	self := os.Getpid()
	out := map[string]float64{}
	for pid, p := range procs {
		for at := pid; at > 1; at = procs[at].ppid {
			if at == self {
				name := p.comm
				if pid == self {
					name = "test"
				}
				out[name] += p.cpu
				break
			}
			if _, ok := procs[at]; !ok {
				break
			}
		}
	}
	return out
}

// cpuRates are the CPU seconds per second each process name used between
// two cpuTimes, the busiest first.
func cpuRates(before, after map[string]float64, secs float64) string {
	type use struct {
		name string
		rate float64
	}
	var uses []use
	for name, v := range after {
		if r := (v - before[name]) / secs; r >= 0.005 {
			uses = append(uses, use{name, r})
		}
	}
	slices.SortFunc(uses, func(a, b use) int { return cmp.Compare(b.rate, a.rate) })
	var parts []string
	for _, u := range uses {
		parts = append(parts, fmt.Sprintf("%s %.2f", u.name, u.rate))
	}
	return strings.Join(parts, ", ")
}

// TestLiveLogBundleLatency: with 0, 1, 10 and 100 followers (`logs -f`
// HTTP streams of deploy/web through the hub, all served by one agent
// over its one stream) of a pod that writes about 1.2 MiB/s of 200-byte
// lines, the log bytes the followers receive per second and the time from
// a commit's webhook to the hub showing the app Synced at it (10 commits
// per level, polled every 20 ms). The hub and agent allow 128 log streams
// (defaults 16); the agent's log rate is its default 1 MiB/s unless
// FLOTILLA_BENCH_LIVE_AGENT_BPS sets it.
func TestLiveLogBundleLatency(t *testing.T) {
	benchLive(t)
	e := newEnv(t, "alpha")
	pc, ok := e.clusters["alpha"].(*cluster.ProcessCluster)
	if !ok {
		t.Skip("needs a process cluster")
	}
	agentBPS := 1 << 20 // the agent's default
	if v := os.Getenv("FLOTILLA_BENCH_LIVE_AGENT_BPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("FLOTILLA_BENCH_LIVE_AGENT_BPS: %v", err)
		}
		agentBPS = n
	}
	agentExtra := []string{"--live-max-logs", "128", "--live-max-requests", "160", "--live-log-bytes-per-second", strconv.Itoa(agentBPS)}
	hubDebug, agent := e.benchHub("alpha", []string{"--live-max-logs-per-agent", "128", "--live-max-requests-per-agent", "160"}, agentExtra)
	rev := e.commit("live app", liveFiles)
	e.writeApp("live", appSpec{name: "live", path: "live", ns: "live", clusters: []string{"alpha"}, prune: true, selfHeal: true}.yaml(e.repo.URL))
	e.waitSynced("live", rev, "alpha")

	// The pod writes 60 lines of 210 bytes every 10 ms through one open
	// file: about 1.2 MiB/s, more than the agent's default rate, at little
	// CPU cost to this test.
	logFile, err := os.OpenFile(pc.PodLogFile(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	writerCtx, stopWriter := context.WithCancel(t.Context())
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		pad := strings.Repeat("x", 150)
		var b strings.Builder
		for i := 0; ; i++ {
			select {
			case <-writerCtx.Done():
				return
			case <-tick.C:
			}
			b.Reset()
			ts := time.Now().UTC().Format(time.RFC3339Nano)
			for j := range 60 {
				fmt.Fprintf(&b, "%s stdout F chatter %d.%d %s\n", ts, i, j, pad)
			}
			if _, err := logFile.WriteString(b.String()); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { stopWriter(); <-writerDone }()

	round := 0
	measure := func(label string) []time.Duration {
		var took []time.Duration
		for range 10 {
			round++
			if err := e.repo.Write(map[string][]byte{"live/bench.yaml": []byte(cmManifest("bench", map[string]string{"round": strconv.Itoa(round)}))}); err != nil {
				t.Fatal(err)
			}
			r, err := e.repo.CommitAndPush(fmt.Sprintf("%s round %d", label, round))
			if err != nil {
				t.Fatal(err)
			}
			begin := time.Now()
			e.webhook()
			err = harness.Eventually(t.Context(), waitTimeout, 20*time.Millisecond, func() error {
				apps, err := e.hub.Apps(t.Context())
				if err != nil {
					return err
				}
				for _, a := range apps {
					if a.Name == "live" && a.Revision == r && len(a.Clusters) == 1 && a.Clusters[0].Sync == "Synced" {
						return nil
					}
				}
				return fmt.Errorf("live not Synced at %s", r)
			})
			if err != nil {
				t.Fatal(err)
			}
			took = append(took, time.Since(begin))
		}
		slices.Sort(took)
		return took
	}

	var podName string
	for _, level := range followerLevels(t) {
		followers := level.n
		ctx, cancel := context.WithCancel(t.Context())
		direct := rate.NewLimiter(rate.Limit(agentBPS), 64<<10)
		if level.direct && podName == "" {
			pods, err := e.clients["alpha"].CoreV1().Pods("live").List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil || len(pods.Items) == 0 {
				t.Fatalf("pods of web: %v", err)
			}
			podName = pods.Items[0].Name
		}
		var total atomic.Int64
		per := make([]atomic.Int64, followers)
		var wg sync.WaitGroup
		var refused atomic.Int64
		for i := range followers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if level.direct {
					var none int64
					rc, err := e.clients["alpha"].CoreV1().Pods("live").GetLogs(podName, &corev1.PodLogOptions{Follow: true, TailLines: &none}).Stream(ctx)
					if err != nil {
						refused.Add(1)
						t.Logf("direct follower %d: %v", i, err)
						return
					}
					defer rc.Close()
					buf := make([]byte, 32<<10)
					for {
						n, err := rc.Read(buf)
						total.Add(int64(n))
						per[i].Add(int64(n))
						if err != nil || direct.WaitN(ctx, max(n, 1)) != nil {
							return
						}
					}
				}
				req, _ := http.NewRequestWithContext(ctx, "GET", e.hub.HTTPURL+"/api/v1/apps/live/logs?follow=true&tail=0&group=apps&kind=Deployment&name=web", nil)
				req.Header.Set("Authorization", "Bearer "+e.hub.Token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					refused.Add(1)
					b, _ := io.ReadAll(resp.Body)
					t.Logf("follower %d: %s %s", i, resp.Status, b)
					return
				}
				r := bufio.NewReaderSize(resp.Body, 64<<10)
				buf := make([]byte, 32<<10)
				for {
					n, err := r.Read(buf)
					total.Add(int64(n))
					per[i].Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
		e.eventually(fmt.Sprintf("every one of %d followers receives", followers), func() error {
			if n := refused.Load(); n > 0 {
				t.Fatalf("%d followers refused", n)
			}
			for i := range per {
				if per[i].Load() == 0 {
					return fmt.Errorf("follower %d has nothing yet", i)
				}
			}
			return nil
		})
		label := fmt.Sprintf("%d followers", followers)
		if level.direct {
			label = fmt.Sprintf("%d followers at the API server, not through Flotilla", followers)
		}
		cpu0 := cpuTimes()
		load0, b0, begin := loadAvg(), total.Load(), time.Now()
		p0 := make([]int64, followers)
		for i := range per {
			p0[i] = per[i].Load()
		}
		profLabel := strconv.Itoa(followers)
		if level.direct {
			profLabel += "d"
		}
		wait := profile(t, hubDebug, agent, profLabel, 15*time.Second)
		took := measure(label)
		wait()
		secs := time.Since(begin).Seconds()
		mibps := float64(total.Load()-b0) / (1 << 20) / secs
		minPer := int64(-1)
		for i := range per {
			if d := per[i].Load() - p0[i]; minPer < 0 || d < minPer {
				minPer = d
			}
		}
		perText := "–"
		if followers > 0 {
			perText = fmt.Sprintf("%.1f KiB/s", float64(minPer)/1024/secs)
		}
		t.Logf("BENCH %s: commit → Synced p50 %v, max %v (n=%d); log bytes to the followers %.2f MiB/s (least per follower %s) over %.0f s; load average before %s, after %s; CPU s/s: %s",
			label, pct(took, 50).Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), len(took), mibps, perText, secs, load0, loadAvg(), cpuRates(cpu0, cpuTimes(), secs))
		cancel()
		wg.Wait()
	}
}
