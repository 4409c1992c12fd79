//go:build !unit

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// haRolloutApp is the app "hro" of TestHighAvailability: its own
// repository (the commits of "ha" do not move it), on the three clusters
// by their wave label, canary first, then wave1 and wave2 each after an
// approval.
func haRolloutApp(repo string) string {
	return fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: hro}
spec:
  source: {repoURL: %s, targetRevision: main, path: hro}
  destination:
    namespace: hro
    clusterSelector: {matchExpressions: [{key: wave, operator: Exists}]}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true]
  rollout:
    stepDeadline: 2m
    steps:
    - {name: canary, clusterSelector: {matchLabels: {wave: canary}}}
    - {name: wave1, clusterSelector: {matchLabels: {wave: wave1}}, approval: true}
    - {name: wave2, clusterSelector: {matchLabels: {wave: wave2}}, approval: true}
`, repo)
}

// commitRepo pushes files to repo and sends its webhook to h only.
func commitRepo(t *testing.T, repo *gitserver.Repo, h *harness.Hub, files map[string]string, msg string) string {
	t.Helper()
	b := map[string][]byte{}
	for k, v := range files {
		b[k] = []byte(v)
	}
	if err := repo.Write(b); err != nil {
		t.Fatal(err)
	}
	rev, err := repo.CommitAndPush(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.PushWebhook(t.Context(), repo.URL); err != nil {
		t.Fatal(err)
	}
	return rev
}

// rolloutOn is `flotilla rollout status hro` on h.
func rolloutOn(ctx context.Context, h *harness.Hub) (api.RolloutView, error) {
	var v api.RolloutView
	out, err := h.CLI(ctx, "rollout", "status", "hro", "-o", "json")
	if err != nil {
		return v, err
	}
	return v, json.Unmarshal([]byte(out), &v)
}

// rolloutGist is what every replica must answer alike about a rollout.
func rolloutGist(v api.RolloutView) string {
	var steps []string
	for _, s := range v.Steps {
		var cls []string
		for _, c := range s.Clusters {
			cls = append(cls, fmt.Sprintf("%s reached=%v", c.Cluster, c.Reached))
		}
		steps = append(steps, fmt.Sprintf("%s:%s%v", s.Name, s.State, cls))
	}
	return fmt.Sprintf("to=%.12s phase=%s paused=%v step=%d steps=%v", v.To, v.Phase, v.Paused, v.CurrentStep, steps)
}

// waitRolloutEverywhere waits until every replica in hubs answers the
// same rollout of hro and cond holds for it.
func waitRolloutEverywhere(t *testing.T, hubs []*harness.Hub, what string, cond func(api.RolloutView) error) {
	t.Helper()
	err := harness.Eventually(t.Context(), 90*time.Second, 100*time.Millisecond, func() error {
		var first string
		for i, h := range hubs {
			v, err := rolloutOn(t.Context(), h)
			if err != nil {
				return fmt.Errorf("%s: %w", h.HTTPURL, err)
			}
			if err := cond(v); err != nil {
				return fmt.Errorf("%s: %s: %w", h.HTTPURL, rolloutGist(v), err)
			}
			if g := rolloutGist(v); i == 0 {
				first = g
			} else if g != first {
				return fmt.Errorf("replicas differ: %s answers %s, %s answers %s", hubs[0].HTTPURL, first, h.HTTPURL, g)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("rollout of hro %s: %v", what, err)
	}
}

// rolloutAt checks a rollout's phase, revision, step (0: any) and pause.
func rolloutAt(phase, to string, step int, paused bool) func(api.RolloutView) error {
	return func(v api.RolloutView) error {
		if v.Phase != phase || v.To != to || (step > 0 && v.CurrentStep != step) || v.Paused != paused {
			return fmt.Errorf("want %s at step %d to %.12s, paused %v", phase, step, to, paused)
		}
		return nil
	}
}

// leaseHolder returns the replica holding the hubs' Lease.
func leaseHolder(t *testing.T, c kubernetes.Interface, ns string, hubs []*harness.Hub) (*harness.Hub, int) {
	t.Helper()
	var idx int
	err := harness.Eventually(t.Context(), 60*time.Second, 100*time.Millisecond, func() error {
		l, err := c.CoordinationV1().Leases(ns).Get(t.Context(), "flotilla-hub", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil {
			return fmt.Errorf("no holder")
		}
		for i := range hubs {
			if *l.Spec.HolderIdentity == fmt.Sprintf("hub%d", i+1) {
				idx = i
				return nil
			}
		}
		return fmt.Errorf("holder %q", *l.Spec.HolderIdentity)
	})
	if err != nil {
		t.Fatal(err)
	}
	return hubs[idx], idx
}

// releaseOf reads the release in hro's ConfigMap on a workload cluster.
func releaseOf(t *testing.T, c kubernetes.Interface) string {
	cm, err := c.CoreV1().ConfigMaps("hro").Get(t.Context(), "hro", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return cm.Data["release"]
}

// sseReader reads a hub's event stream (/api/v1/events) and keeps its
// rollout events.
type sseReader struct {
	mu       sync.Mutex
	rollouts []api.RolloutEvent
	changes  int
}

func readEvents(t *testing.T, h *harness.Hub) *sseReader {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.HTTPURL+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.Token)
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event stream of %s answered %d", h.HTTPURL, resp.StatusCode)
	}
	r := &sseReader{}
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				r.mu.Lock()
				switch event {
				case "rollout":
					var e api.RolloutEvent
					if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e) == nil {
						r.rollouts = append(r.rollouts, e)
					}
				case "change":
					r.changes++
				}
				r.mu.Unlock()
			}
		}
	}()
	return r
}

// has reports whether the stream carried a rollout event of typ for app
// at step.
func (r *sseReader) has(app, typ string, step int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.rollouts {
		if e.App == app && e.Type == typ && e.Step == step {
			return true
		}
	}
	return false
}

func (r *sseReader) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, e := range r.rollouts {
		s = append(s, fmt.Sprintf("%s/%s/%d", e.App, e.Type, e.Step))
	}
	return fmt.Sprintf("%d change events, rollout events %v", r.changes, s)
}

// syncedLine is an agent's log line for one sync it ran (apply of a
// bundle), with its app and digest.
var syncedLine = regexp.MustCompile(`synced: .*\bapp=(\S+) .*\bdigest=(\S+)`)

// appliedTwice returns the (app, digest) pairs the agent's log shows
// synced more than once, among apps.
func appliedTwice(t *testing.T, logPath string, apps ...string) ([]string, int) {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		m := syncedLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, a := range apps {
			if m[1] == a {
				n[m[1]+" "+m[2]]++
			}
		}
	}
	var twice []string
	for k, c := range n {
		if c > 1 {
			twice = append(twice, fmt.Sprintf("%s ×%d", k, c))
		}
	}
	return twice, len(n)
}

// haRollout runs a rollout of hro across the replicas: the Lease holder
// decides it, every replica answers its status alike and renders every
// cluster by it (agents are attached to any replica); a pause, approval
// and resume on the other replicas take effect; the holder's event
// stream events reach another replica's stream; kill -9 of the holder
// while the rollout waits, an approval on a survivor, and the new holder
// finishes it from the stored state.
func haRollout(t *testing.T, hubs []*harness.Hub, mgmt kubernetes.Interface, ns string, roRepo *gitserver.Repo, roV1 string, wl map[string]kubernetes.Interface) {
	ctx := t.Context()
	leader, li := leaseHolder(t, mgmt, ns, hubs)
	a, b := hubs[(li+1)%len(hubs)], hubs[(li+2)%len(hubs)]
	t.Logf("rollout: the Lease holder is %s; pause, approve and resume go to %s and %s", leader.HTTPURL, a.HTTPURL, b.HTTPURL)
	events := readEvents(t, a)
	v2 := commitRepo(t, roRepo, b, map[string]string{"hro/config.yaml": cmManifest("hro", map[string]string{"release": "v2"})}, "hro v2")
	waitRolloutEverywhere(t, hubs, "waits for the approval of wave1", rolloutAt("WaitingApproval", v2, 2, false))
	// Every replica renders wave1 and wave2 at the previous revision,
	// whichever replica holds their agents.
	for _, h := range hubs {
		av, err := h.App(ctx, "hro")
		if err != nil {
			t.Fatal(err)
		}
		for cl, want := range map[string]string{"w1": v2, "w2": roV1, "w3": roV1} {
			c := av.Cluster(cl)
			if c == nil || c.Revision != want || (want == roV1) != strings.HasPrefix(c.Rollout, "waiting for step") {
				t.Errorf("%s: hro on %s: %+v; want revision %.12s", h.HTTPURL, cl, c, want)
			}
		}
	}
	if err := harness.Eventually(ctx, 60*time.Second, 100*time.Millisecond, func() error {
		if r := releaseOf(t, wl["w1"]); r != "v2" {
			return fmt.Errorf("canary w1 runs release %q", r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []string{"w2", "w3"} {
		if r := releaseOf(t, wl[cl]); r != "v1" {
			t.Errorf("%s runs release %q before its step, want v1", cl, r)
		}
	}

	if _, err := a.CLI(ctx, "rollout", "pause", "hro"); err != nil {
		t.Fatal(err)
	}
	waitRolloutEverywhere(t, hubs, "paused on another replica", rolloutAt("WaitingApproval", v2, 2, true))
	if _, err := b.CLI(ctx, "rollout", "approve", "hro"); err != nil {
		t.Fatal(err)
	}
	waitRolloutEverywhere(t, hubs, "approved while paused", rolloutAt("Progressing", v2, 2, true))
	for _, h := range hubs {
		v, err := rolloutOn(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range v.Steps[1].Clusters {
			if c.Reached {
				t.Errorf("%s: paused rollout reached %s", h.HTTPURL, c.Cluster)
			}
		}
	}
	if _, err := a.CLI(ctx, "rollout", "resume", "hro"); err != nil {
		t.Fatal(err)
	}
	waitRolloutEverywhere(t, hubs, "waits for the approval of wave2", rolloutAt("WaitingApproval", v2, 3, false))
	if err := harness.Eventually(ctx, 30*time.Second, 100*time.Millisecond, func() error {
		// ClustersReached is made by the Lease holder, Approved by b.
		if !events.has("hro", "ClustersReached", 2) || !events.has("hro", "Approved", 2) || !events.has("hro", "Paused", 2) {
			return fmt.Errorf("event stream of %s: %s", a.HTTPURL, events.summary())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// kill -9 of the Lease holder while the rollout waits; a survivor
	// takes the approval and the next holder resumes from the store.
	start := time.Now()
	leader.Kill()
	if _, err := b.CLI(ctx, "rollout", "approve", "hro"); err != nil {
		t.Fatal(err)
	}
	rest := []*harness.Hub{a, b}
	waitRolloutEverywhere(t, rest, "completed after the holder's kill", rolloutAt("Completed", v2, 0, false))
	for _, h := range rest {
		if err := h.WaitSynced(ctx, 90*time.Second, "hro", v2, true, "w1", "w2", "w3"); err != nil {
			t.Fatalf("%s: %v", h.HTTPURL, err)
		}
	}
	t.Logf("rollout: completed %s after kill -9 of the Lease holder", time.Since(start).Round(time.Millisecond))
	for _, cl := range []string{"w1", "w2", "w3"} {
		if r := releaseOf(t, wl[cl]); r != "v2" {
			t.Errorf("%s runs release %q after the rollout, want v2", cl, r)
		}
	}
	if err := leader.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitRolloutEverywhere(t, hubs, "completed, on the restarted replica too", rolloutAt("Completed", v2, 0, false))
}

// commitLoad makes a commit of ha and sends its webhook every second,
// to the replicas in turn (one that is down refuses it: the next commit
// goes to another), until stopped.
type commitLoad struct {
	mu     sync.Mutex
	revs   []string
	cancel context.CancelFunc
	done   chan struct{}
}

func startCommitLoad(t *testing.T, repo *gitserver.Repo, hubs []*harness.Hub) *commitLoad {
	ctx, cancel := context.WithCancel(t.Context())
	l := &commitLoad{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			if err := repo.Write(map[string][]byte{"ha/config.yaml": []byte(cmManifest("ha", map[string]string{"release": fmt.Sprintf("load-%d", i)}))}); err != nil {
				t.Errorf("commit load: %v", err)
				return
			}
			rev, err := repo.CommitAndPush(fmt.Sprintf("ha load-%d", i))
			if err != nil {
				t.Errorf("commit load: %v", err)
				return
			}
			if req, err := hubs[i%len(hubs)].WebhookRequest(ctx, repo.URL); err == nil {
				if resp, err := httpClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			l.mu.Lock()
			l.revs = append(l.revs, rev)
			l.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return l
}

// wait returns the newest commit once at least n were made.
func (l *commitLoad) wait(t *testing.T, n int) string {
	t.Helper()
	var rev string
	if err := harness.Eventually(t.Context(), 30*time.Second, 50*time.Millisecond, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.revs) < n {
			return fmt.Errorf("%d commits made", len(l.revs))
		}
		rev = l.revs[len(l.revs)-1]
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return rev
}

// stop ends the load and returns how many commits it made.
func (l *commitLoad) stop() int {
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.revs)
}

// waitPresence waits until every replica in hubs answers, for each
// cluster, connected as want says, with the same last-seen time once
// disconnected (the stream's holder recorded it).
func waitPresence(t *testing.T, hubs []*harness.Hub, want map[string]bool) {
	t.Helper()
	err := harness.Eventually(t.Context(), 90*time.Second, 100*time.Millisecond, func() error {
		seen := map[string]time.Time{}
		for _, h := range hubs {
			out, err := h.CLI(t.Context(), "cluster", "list", "-o", "json")
			if err != nil {
				return err
			}
			var cs []api.ClusterView
			if err := json.Unmarshal([]byte(out), &cs); err != nil {
				return err
			}
			got := map[string]api.ClusterView{}
			for _, c := range cs {
				got[c.Name] = c
			}
			for name, conn := range want {
				c, ok := got[name]
				if !ok || c.Connected != conn || c.LastSeen.IsZero() {
					return fmt.Errorf("%s: cluster %s connected %v last seen %v, want connected %v", h.HTTPURL, name, c.Connected, c.LastSeen, conn)
				}
				if conn {
					continue
				}
				if s, ok := seen[name]; ok && !s.Equal(c.LastSeen) {
					return fmt.Errorf("%s: disconnected cluster %s last seen %v; another replica says %v", h.HTTPURL, name, c.LastSeen, s)
				}
				seen[name] = c.LastSeen
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
