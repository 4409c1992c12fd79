package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// logEvent is one line of a hub or agent JSON log (hclog --log-json).
type logEvent struct {
	At     time.Time
	Msg    string
	Fields map[string]any
}

// readLog parses a JSON log file; lines that are not JSON are skipped.
func readLog(path string) ([]logEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []logEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal(line, &m); err != nil {
			continue
		}
		ts, _ := m["@timestamp"].(string)
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		msg, _ := m["@message"].(string)
		out = append(out, logEvent{At: at, Msg: msg, Fields: m})
	}
	return out, sc.Err()
}

// dur reads a duration field: hclog writes a time.Duration as a number of
// nanoseconds in JSON, or as a string.
func (e logEvent) dur(key string) time.Duration {
	switch v := e.Fields[key].(type) {
	case float64:
		return time.Duration(v)
	case string:
		d, _ := time.ParseDuration(v)
		return d
	}
	return 0
}

func (e logEvent) field(key string) string {
	s, _ := e.Fields[key].(string)
	return s
}

// firstAfter returns the first event at or after t with message msg for
// which match (nil: any) holds.
func firstAfter(evs []logEvent, t time.Time, msg string, match func(logEvent) bool) (logEvent, bool) {
	for _, e := range evs {
		if !e.At.Before(t) && e.Msg == msg && (match == nil || match(e)) {
			return e, true
		}
	}
	return logEvent{}, false
}

// stageNames are the stages of commit → Synced, in order.
var stageNames = []string{
	"webhook sent → received by the hub",
	"received → git poll started",
	"git: fetch (ref listing first unless the webhook names its commit; \"repo moved\" duration)",
	"fetched → publishing reconcile pass started (render jobs, earlier passes)",
	"publishing reconcile pass (until its end or the send)",
	"pass ended → desired state sent to the cluster",
	"sent → bundle loaded by the app's engine (received, decoded, planned)",
	"loaded → agent accepted the desired state (bundle persisted; the dry-run runs meanwhile)",
	"accepted → synced (rest of the dry-run, apply)",
	"agent synced → hub API shows Synced (status over the stream, hub, ≤ 10 ms API poll)",
}

// sampleWindow is one commit → Synced measurement.
type sampleWindow struct {
	t0, end time.Time
}

// splitStages splits each sample into stageNames from the hub's and the
// agent's JSON debug logs; app and cluster select the lines. Samples whose
// lines are not all found are reported, not split.
func splitStages(hubLog, agentLog []logEvent, app, cluster string, wins []sampleWindow) ([]samples, []string) {
	out := make([]samples, len(stageNames))
	var problems []string
	for i, w := range wins {
		recv, ok0 := firstAfter(hubLog, w.t0, "webhook", nil)
		moved, ok1 := firstAfter(hubLog, w.t0, "repo moved", nil)
		sent, ok2 := firstAfter(hubLog, moved.At, "desired state sent", func(e logEvent) bool { return e.field("cluster") == cluster })
		if !ok0 || !ok1 || !ok2 || sent.At.After(w.end) {
			problems = append(problems, fmt.Sprintf("sample %d: hub lines missing", i))
			continue
		}
		// The pass that published the desired state is the last one
		// that started before the send; the send may come before the
		// pass logs "reconciled".
		var pass logEvent
		found := false
		for _, e := range hubLog {
			if e.Msg == "reconciled" && !e.At.Before(moved.At) && !e.At.Add(-e.dur("duration")).After(sent.At) {
				pass, found = e, true
			}
		}
		// The agent persists the bundle while the app's engine loads and
		// dry-runs it (an older agent persisted it first): "accepted"
		// may come before or after "loaded bundle"; a stage that the
		// other covers counts zero.
		acc, ok3 := firstAfter(agentLog, sent.At, "desired state accepted", nil)
		loaded, ok4 := firstAfter(agentLog, sent.At, "loaded bundle", func(e logEvent) bool { return e.field("app") == app })
		persisted := acc.At
		if persisted.Before(loaded.At) {
			persisted = loaded.At
		}
		synced, ok5 := firstAfter(agentLog, persisted, "synced", func(e logEvent) bool { return e.field("app") == app })
		if !found || !ok3 || !ok4 || !ok5 || synced.At.After(w.end) {
			problems = append(problems, fmt.Sprintf("sample %d: reconcile or agent lines missing", i))
			continue
		}
		passEnd := pass.At
		if sent.At.Before(passEnd) {
			passEnd = sent.At
		}
		marks := []time.Time{w.t0, recv.At, moved.At.Add(-moved.dur("duration")), moved.At, pass.At.Add(-pass.dur("duration")), passEnd,
			sent.At, loaded.At, persisted, synced.At, w.end}
		for s := range stageNames {
			out[s] = append(out[s], marks[s+1].Sub(marks[s]))
		}
	}
	return out, problems
}

// breakdown measures commit (webhook) → Synced on one real cluster with
// the hub and agent logging at debug level in JSON, and splits every
// sample into stages from their log lines.
func (b *Bench) breakdown(ctx context.Context) error {
	w, err := b.newWorld("breakdown")
	if err != nil {
		return err
	}
	defer w.close()
	w.hubArgs = []string{"--log-level", "debug", "--log-json"}
	repo, err := w.repo("config")
	if err != nil {
		return err
	}
	const app = "one"
	rev, _, err := commit(repo, "one app", merge(under("apps/src/one", webApp(app, 2, "0")), map[string]string{
		"apps/defs/one.yaml": appDef(app, repo.URL, "apps/src/one", app, toSelector("bench", "breakdown"), true),
	}))
	if err != nil {
		return err
	}
	cls, err := w.clusters(ctx, false, "c01")
	if err != nil {
		return err
	}
	hub, err := w.hub(ctx, repo, time.Hour)
	if err != nil {
		return err
	}
	j, err := hub.AddCluster(ctx, cls[0].Name(), "bench=breakdown")
	if err != nil {
		return err
	}
	agent, err := harness.StartAgent(b.cfg.BinDir, w.dir, cls[0].Kubeconfig(), j, "--log-level", "debug", "--log-json")
	if err != nil {
		return err
	}
	w.stops = append(w.stops, agent.Stop)
	if _, err := waitApps(ctx, hub, 3*time.Minute, 100*time.Millisecond, syncedAt(app, rev, 1, nil)); err != nil {
		return fmt.Errorf("breakdown: initial sync: %w", err)
	}
	n := b.cfg.BreakdownCommits
	var wins []sampleWindow
	var total samples
	load0 := loadAvg()
	for i := range n {
		apps, err := listApps(ctx, hub)
		if err != nil {
			return err
		}
		old := digests(apps, app)
		r, _, err := commit(repo, fmt.Sprintf("breakdown change %d", i), map[string]string{
			"apps/src/one/configmap.yaml": configMap("one-config", fmt.Sprintf("breakdown-%d", i)),
		})
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := hub.PushWebhookAt(ctx, repo.URL, r); err != nil {
			return err
		}
		at, err := waitApps(ctx, hub, time.Minute, 10*time.Millisecond, syncedAt(app, r, 1, old))
		if err != nil {
			return fmt.Errorf("breakdown commit %d: %w", i, err)
		}
		wins = append(wins, sampleWindow{t0: t0, end: at})
		total = append(total, at.Sub(t0))
		// The next sample starts after the hub's shortest time between
		// two ref listings (--git-refresh-interval, 1 s), so that no
		// sample waits for it.
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	load1 := loadAvg()
	hubLog, err := readLog(hub.LogPath)
	if err != nil {
		return err
	}
	agentLog, err := readLog(agent.LogPath)
	if err != nil {
		return err
	}
	stages, problems := splitStages(hubLog, agentLog, app, cls[0].Name(), wins)
	var sb strings.Builder
	fmt.Fprintf(&sb, `One cluster (etcd + kube-apiserver), one agent, one hub, both logging at debug level in JSON (timestamps in
microseconds; the logging itself costs a little). %d commits to app "one", each followed by a webhook, 1 s apart
(the hub's --git-refresh-interval, so no sample waits for it); each sample is split at the log lines of the hub
("webhook", "repo moved" with its duration, "reconciled" with its duration, "desired state sent") and of the agent
("desired state accepted", "loaded bundle", "synced"). Load average (1, 5, 15 min) before: %s; after: %s.
Total webhook → Synced: p50 %s, p90 %s (n=%d).

| stage | p50 | p90 | max |
|---|---|---|---|
`, n, load0, load1, secs(total.pct(50)), secs(total.pct(90)), len(total))
	for s, name := range stageNames {
		st := stages[s]
		if len(st) == 0 {
			continue
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s |\n", name, ms1(st.pct(50)), ms1(st.pct(90)), ms1(st.pct(100)))
	}
	if len(problems) > 0 {
		fmt.Fprintf(&sb, "\nSamples not split: %s.\n", strings.Join(problems, "; "))
	}
	b.detail("Commit → Synced, stage by stage (1 cluster)", sb.String())
	b.logf("breakdown:\n%s", sb.String())
	return nil
}

// ms1 prints a duration in milliseconds with one decimal (stages can be
// far below a millisecond).
func ms1(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
