package bench

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Row is one line of the result table.
type Row struct {
	ID       string
	Figure   string
	Goal     string
	Argo     string
	Measured string
	// Verdict is "met", "MISSED" or "" (not run).
	Verdict string
}

// Row IDs, in table order; every row of the design's goals table is here.
const (
	rowWebhook1   = "webhook-1"
	rowWebhook10  = "webhook-10"
	rowFan100     = "fanout-100"
	rowFan1k      = "fanout-1k"
	rowPolling    = "polling"
	rowNewApps    = "new-apps"
	rowSelfHeal   = "selfheal"
	rowConnected  = "connected"
	rowFan10k     = "fanout-10k"
	rowHubPerAg   = "hub-per-agent"
	rowMem100     = "mem-100-apps"
	rowAgentRSS   = "agent-rss"
	rowApply      = "apply-1000"
	rowNoWrites   = "no-writes"
	rowDisasterRe = "disaster"
	rowFleet10k   = "fleet-10k"
	rowFleet50k   = "fleet-50k"
	rowBulk       = "bulk-1000"
	rowBulkHealth = "bulk-1000-healthy"
	rowIdleCPU    = "idle-cpu"
)

func newRows() []*Row {
	return append([]*Row{
		{ID: rowWebhook1, Figure: "commit (webhook) → Synced, 1 cluster", Goal: "p50 < 100 ms", Argo: "0.9 s (1 app)"},
		{ID: rowWebhook10, Figure: "commit (webhook) → every cluster Synced, 10 real clusters", Goal: "p50 < 200 ms, p99 < 400 ms", Argo: "1.1 s (100 apps, 1 cluster)"},
		{ID: rowFan100, Figure: "commit (webhook) → every agent Synced, 100 simulated agents", Goal: "p99 < 2 s (as at 1,000)", Argo: "—"},
		{ID: rowFan1k, Figure: "commit (webhook) → every agent Synced, 1,000 simulated agents", Goal: "p99 < 2 s", Argo: "—"},
		{ID: rowPolling, Figure: "commit without webhook → picked up", Goal: "within poll interval + jitter (default 30 s + 10 %)", Argo: "120 s + up to 60 s jitter"},
		{ID: rowNewApps, Figure: "100 new apps → all Synced on one cluster", Goal: "< 3 s", Argo: "19.5 s"},
		{ID: rowSelfHeal, Figure: "out-of-band change → reverted (selfHeal), repeated", Goal: "p50 < 150 ms, also on repeats", Argo: "0.55 s, then backoff 2 s, 6 s, 18 s"},
		{ID: rowConnected, Figure: "one hub, 2 cores: connected agents", Goal: "10,000", Argo: "—"},
		{ID: rowFan10k, Figure: "one commit fanned out to 10,000 agents", Goal: "< 10 s", Argo: "—"},
		{ID: rowHubPerAg, Figure: "hub memory per connected agent", Goal: "< 100 KiB", Argo: "—"},
		{ID: rowMem100, Figure: "memory, 100 apps on one cluster (hub + agent RSS)", Goal: "< 100 MB", Argo: "≈ 350 MB (controller, repo-server, redis)"},
		{ID: rowAgentRSS, Figure: "agent RSS managing 1,000 objects", Goal: "< 50 MiB", Argo: "—"},
		{ID: rowApply, Figure: "1,000 new objects applied (agent vs kubectl, same API server)", Goal: "< 4 s", Argo: "kubectl apply -f 46 s, --server-side 43 s"},
		{ID: rowNoWrites, Figure: "re-applying an unchanged bundle", Goal: "no writes", Argo: "—"},
		{ID: rowDisasterRe, Figure: "disaster recovery: fresh cluster's agent converges 100 apps", Goal: "< 30 s", Argo: "—"},
		{ID: rowFleet10k, Figure: "fleet scale: 10,000 apps over 500 simulated agents, one commit → all Synced", Goal: "< 60 s on one 2-core hub", Argo: "9–11 min (CNOE: 10,000 apps, 500 clusters, 10 controller shards, 8 vCPU)"},
		{ID: rowFleet50k, Figure: "fleet scale: 50,000 apps over 500 simulated agents, one commit → all Synced", Goal: "< 5 min", Argo: "21 min (CNOE: 50,000 apps, 500 clusters, 3 nodes)"},
		{ID: rowBulk, Figure: "1,000 new apps on one real cluster → all Synced", Goal: "< 15 s", Argo: "— (100 apps: 19.5 s)"},
		{ID: rowBulkHealth, Figure: "1,000 new apps: all Healthy reported after the cluster's own readiness", Goal: "within 5 s", Argo: "—"},
		{ID: rowIdleCPU, Figure: "steady state, 10,000 connected agents, no changes: hub CPU", Goal: "< 5 % of one core", Argo: "—"},
	}, append(capRows(), haRows()...)...)
}

func (b *Bench) row(id string) *Row {
	for _, r := range b.rows {
		if r.ID == id {
			return r
		}
	}
	panic("unknown row " + id)
}

// set fills a row; met decides the verdict.
func (b *Bench) set(id, measured string, met bool) {
	r := b.row(id)
	r.Measured = measured
	r.Verdict = "met"
	if !met {
		r.Verdict = "MISSED"
	}
	b.logf("%s: %s (%s; goal %s)", r.Figure, measured, r.Verdict, r.Goal)
}

func (b *Bench) table() string {
	var sb strings.Builder
	sb.WriteString("| figure | goal | Argo CD 3.6 (DESIGN) | measured | verdict |\n|---|---|---|---|---|\n")
	for _, r := range b.rows {
		m, v := r.Measured, r.Verdict
		if m == "" {
			m, v = "not run", "—"
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", r.Figure, r.Goal, r.Argo, m, v)
	}
	return sb.String()
}

// keepMarker opens the part of the document that make bench does not
// measure and carries over from the earlier file unchanged: the live-view
// rows, measured by e2e's FLOTILLA_BENCH_LIVE benchmarks.
const keepMarker = "<!-- make bench keeps this section and what follows: measured by e2e/live_bench_test.go (FLOTILLA_BENCH_LIVE=1) -->"

// keptSection is path's text from keepMarker on ("" without one).
func keptSection(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	i := strings.Index(string(b), keepMarker)
	if i < 0 {
		return ""
	}
	return "\n" + string(b[i:])
}

func (b *Bench) document(table, profiles string) string {
	var sb strings.Builder
	sb.WriteString(`# Benchmarks

Generated by ` + "`make bench`" + ` (e2e/cmd/bench); do not edit by hand, except the
live-view section at the end, which make bench keeps as it is. Every value
above that section comes from the run described here: the built ` + "`flotilla-hub`" + `,
` + "`flotilla-agent`" + ` and ` + "`flotilla`" + ` binaries as processes, real
kube-apiservers (etcd + kube-apiserver, plus controller-manager, scheduler and
kwok where a row needs workloads) as processes on loopback, git served over
HTTP by ` + "`git http-backend`" + `, and simulated agents (e2e/cmd/agentsim)
only for the fan-out rows. Goals and Argo CD figures are from
shared/DESIGN.md.

## Results

`)
	sb.WriteString(table)
	if len(b.curve) > 0 {
		sb.WriteString("\n![commit (webhook) → every cluster Synced, p50 and p99 against the number of clusters](" + PlotFile + ")\n\n")
		sb.WriteString("Commit (webhook) → every cluster Synced against the number of clusters (" + PlotFile + "; 1 and 10: real API servers, the others simulated agents, hub's view):\n\n")
		for _, c := range b.curve {
			kind := "real"
			if c.Simulated {
				kind = "simulated"
			}
			fmt.Fprintf(&sb, "- %d %s: p50 %s, p99 %s (n=%d)\n", c.Clusters, kind, secs(c.P50), secs(c.P99), c.N)
		}
	}
	if len(b.notes) > 0 {
		sb.WriteString("\nNotes:\n\n")
		for _, n := range b.notes {
			sb.WriteString("- " + n + "\n")
		}
	}
	sb.WriteString("\n## Method and details\n\n")
	sb.WriteString(`Times are wall-clock on one machine. "Synced" is the hub's view: the hub's
HTTP API (` + "`GET /api/v1/apps`" + `) shows the new desired digest Synced on the
cluster, which it only does once the agent reported Synced for that digest. The
start of a webhook measurement is the moment the webhook is sent, right after
` + "`git push`" + ` returned; the end is the arrival of the first API answer that
shows every target Synced (polled every 10 ms for real clusters, so values are
upper bounds within one poll). Measured webhooks are at least 1.05 s apart: the
hub holds a webhook that comes within its ` + "`--git-refresh-interval`" + ` (1 s) of the
previous ref listing, and back-to-back samples would measure that hold.
Percentiles are nearest-rank over the samples.
Memory is VmRSS from /proc. The hub runs with ` + "`--resync 30s --log-level info`" + `.

`)
	for _, d := range b.details {
		sb.WriteString(d + "\n")
	}
	if profiles != "" {
		sb.WriteString("## Profiles of the missed rows\n\n" + profileIntro + "\n\n" + profiles)
	}
	sb.WriteString("## Machine\n\n")
	sb.WriteString(machine(b.started, b.loadBefore, b.loadAfter))
	return sb.String()
}

func machine(started time.Time, before, after string) string {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64); err == nil {
					mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	goVer := runtime.Version()
	if out, err := exec.Command("go", "version").Output(); err == nil {
		goVer = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf(`| | |
|---|---|
| date | %s (run took %s) |
| CPU | %s, %d logical CPUs (nproc) |
| memory | %s |
| Go | %s |
| source | %s |
| kernel | %s |
| load average (1, 5, 15 min) | before: %s; after: %s |
| other load | %s |
`, started.UTC().Format("2006-01-02 15:04 MST"), time.Since(started).Round(time.Second), model, runtime.NumCPU(), mem, goVer,
		source(), kernel(), before, after, otherLoad(before, after))
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return "Linux " + strings.TrimSpace(string(b))
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}

// otherLoad says whether the machine was busy with other work during the
// run, from the 1-minute load at its start and end.
func otherLoad(before, after string) string {
	var l1, l2 float64
	if _, err := fmt.Sscan(strings.Split(before, ",")[0], &l1); err != nil {
		return "unknown"
	}
	if _, err := fmt.Sscan(strings.Split(after, ",")[0], &l2); err != nil {
		l2 = l1
	}
	cpus := float64(runtime.NumCPU())
	switch peak := max(l1, l2); {
	case peak >= cpus:
		return fmt.Sprintf("yes: the machine was shared with other engineers' builds (1-min load %.1f at the start, %.1f at the end, on %d CPUs; the run itself adds about 1-2); absolute times are pessimistic", l1, l2, runtime.NumCPU())
	case peak >= 0.5:
		return fmt.Sprintf("some (1-min load %.1f at the start, %.1f at the end)", l1, l2)
	}
	return "none noticeable"
}

// samples summarises durations.
type samples []time.Duration

func (s samples) sorted() samples {
	c := append(samples(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c
}

// pct is the nearest-rank percentile p (0..100).
func (s samples) pct(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := s.sorted()
	i := int(float64(len(c))*p/100+0.999999) - 1
	return c[max(0, min(i, len(c)-1))]
}

func (s samples) list() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = secs(d)
	}
	return strings.Join(parts, ", ")
}

func secs(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

const profileIntro = `The hub and agent binaries of the run are built from the same source with one
file added by ` + "`go build -overlay`" + ` (e2e/cmd/bench/internal/bench/overlay): it serves CPU and
heap profiles on a loopback port when BENCH_PROFILE_DIR is set. CPU profiles cover the measured
window of the row; heap profiles are taken when its memory is read. The profile files are kept
beside this document.`

// source names the commit the binaries were built from.
func source() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return "git " + strings.TrimSpace(string(out)) + " (hub and agent built from the working tree at the start of the run)"
}
