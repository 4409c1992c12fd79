// Package bench measures Flotilla against the performance goals of the
// design (shared/DESIGN.md) with real processes: the built hub, agent and
// CLI binaries, real kube-apiservers (package cluster), git served over HTTP
// (package gitserver), simulated agents from e2e/cmd/agentsim for the
// fan-out rows and kubectl for the apply comparison. Each phase starts what
// it needs and stops it before the next, so phases do not load each other.
// The result is one table (goal and Argo CD figure beside each measured
// value, with a verdict) plus the method, per-phase details and the machine.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// Config configures a run.
type Config struct {
	BinDir string
	// Out is the markdown file to write; empty writes none.
	Out string
	// Only lists the phases to run; empty runs all (see Phases).
	Only []string
	// WorkDir holds every process's files; empty means a temp folder,
	// removed at the end unless Keep.
	WorkDir string
	Keep    bool

	Commits      int // commits per webhook latency row
	Clusters     int // real clusters of the fan-out row
	PollCommits  int // commits of the polling row
	PollInterval time.Duration
	Apps         int   // apps of the "new apps" and memory rows
	HealRepeats  int   // self-heal repetitions
	Objects      int   // objects of the apply row
	Fanout       []int // simulated agent counts, ascending
	FanCommits   []int // commits per fan-out size (same length as Fanout)
	PerSimProc   int   // simulated agents per agentsim process
	// IdleWindow is how long the hub's CPU is measured with the largest
	// fan-out connected and nothing changing.
	IdleWindow time.Duration
	// FleetAgents simulated agents carry FleetApps apps (one run per
	// count, ascending) in the fleet-scale rows.
	FleetAgents int
	FleetApps   []int
	// BulkApps new apps on one real cluster.
	BulkApps int
	// HookCommits and ChartCommits are the samples of the hooks and
	// charts phases (per app, per kind).
	HookCommits, ChartCommits int
	// HA* size the ha phase: HAAgents simulated agents over three
	// replicas for the failover (HAKills kills) and commit (HACommits)
	// rows, grown to HAIdleAgents for the API server writes counted over
	// HAIdleWindow.
	HAAgents, HAKills, HACommits, HAIdleAgents int
	HAIdleWindow                               time.Duration
	// HAWritesOnly skips the ha phase's one-hub comparison, commits and
	// kills: only the API server writes row is measured.
	HAWritesOnly bool
	// BreakdownCommits are the samples of the stage-by-stage split of
	// commit → Synced.
	BreakdownCommits int
	Kubectl          string
	AgentsimBin      string // built from ./e2e/cmd/agentsim when empty
	// Profile builds the hub and agent with a profiling overlay and takes
	// CPU and heap profiles during the measurements; those of missed rows
	// go into the document (and next to it).
	Profile bool
	Stdout  io.Writer
}

// Phases are the phases in run order.
var Phases = []string{"latency", "breakdown", "apps", "selfheal", "apply", "bulk", "hooks", "charts", "fanout", "fleet", "ha"}

// Bench is one run.
type Bench struct {
	cfg                   Config
	work                  string
	rows                  []*Row
	details               []string
	notes                 []string
	started               time.Time
	loadBefore, loadAfter string
	profDir               string
	profiles              map[string][]profile
	// curve holds commit → Synced at each fleet size for the plot.
	curve []CurvePoint
	// lastHook is when the last measured webhook was sent (see webhook).
	lastHook time.Time
}

// refreshGap is the hub's default --git-refresh-interval (1 s): a webhook
// within it of the previous ref listing is held until it has passed (a
// flood of webhooks costs one listing per interval), unless it names a
// commit the hub does not have yet, as the bench's webhooks do (the
// event's "after"). Measured webhooks are still spaced by it, as real
// pushes are, so that no sample can measure the hold.
const refreshGap = time.Second + 50*time.Millisecond

// webhook waits until refreshGap has passed since the previous measured
// webhook, sends one for repoURL and returns when it was sent.
func (b *Bench) webhook(ctx context.Context, hub *harness.Hub, repoURL, rev string) (time.Time, error) {
	if wait := time.Until(b.lastHook.Add(refreshGap)); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
	t0 := time.Now()
	b.lastHook = t0
	return t0, hub.PushWebhookAt(ctx, repoURL, rev)
}

// Run runs the selected phases, prints the table and writes the document.
func Run(ctx context.Context, cfg Config) error {
	for _, p := range cfg.Only {
		if !slices.Contains(Phases, p) {
			return fmt.Errorf("--only %s: unknown phase (have %s)", p, strings.Join(Phases, ", "))
		}
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	b := &Bench{cfg: cfg, rows: newRows(), started: time.Now(), loadBefore: loadAvg()}
	b.work = cfg.WorkDir
	if b.work == "" {
		dir, err := os.MkdirTemp("", "flotilla-bench-")
		if err != nil {
			return err
		}
		b.work = dir
		if !cfg.Keep {
			defer os.RemoveAll(dir)
		}
	}
	if cfg.Profile {
		if err := b.buildProfiled(ctx); err != nil {
			return err
		}
	}
	var errs []string
	for _, p := range Phases {
		if len(cfg.Only) > 0 && !slices.Contains(cfg.Only, p) {
			continue
		}
		b.logf("phase %s", p)
		start := time.Now()
		var err error
		switch p {
		case "latency":
			err = b.latency(ctx)
		case "breakdown":
			err = b.breakdown(ctx)
		case "apps":
			err = b.apps(ctx)
		case "selfheal":
			err = b.selfHeal(ctx)
		case "apply":
			err = b.apply(ctx)
		case "bulk":
			err = b.bulk(ctx)
		case "hooks":
			err = b.hooks(ctx)
		case "charts":
			err = b.charts(ctx)
		case "fanout":
			err = b.fanout(ctx)
		case "fleet":
			err = b.fleet(ctx)
		case "ha":
			err = b.ha(ctx)
		}
		if err != nil {
			b.logf("phase %s FAILED after %s: %v", p, time.Since(start).Round(time.Second), err)
			errs = append(errs, fmt.Sprintf("%s: %v", p, err))
			b.notes = append(b.notes, fmt.Sprintf("Phase %s failed: %v", p, err))
		} else {
			b.logf("phase %s done in %s", p, time.Since(start).Round(time.Second))
		}
		if ctx.Err() != nil {
			break
		}
	}
	b.loadAfter = loadAvg()
	table := b.table()
	fmt.Fprintln(cfg.Stdout)
	fmt.Fprintln(cfg.Stdout, table)
	if cfg.Out != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.Out), 0o755); err != nil {
			return err
		}
		profDir := filepath.Join(filepath.Dir(cfg.Out), strings.TrimSuffix(filepath.Base(cfg.Out), ".md")+"-profiles")
		// Profiles of an earlier run's missed rows must not linger.
		if err := os.RemoveAll(profDir); err != nil {
			return err
		}
		profs := b.profileSection(ctx, profDir)
		if len(b.curve) > 0 {
			plotPath := filepath.Join(filepath.Dir(cfg.Out), PlotFile)
			if err := WritePlot(plotPath, b.curve); err != nil {
				return err
			}
			b.logf("wrote %s", plotPath)
		}
		if err := os.WriteFile(cfg.Out, []byte(b.document(table, profs)+keptSection(cfg.Out)), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", cfg.Out, err)
		}
		b.logf("wrote %s", cfg.Out)
	}
	if len(errs) > 0 {
		return fmt.Errorf("phases failed: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (b *Bench) logf(format string, a ...any) {
	fmt.Fprintf(b.cfg.Stdout, "==> [%6.1fs] %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, a...))
}

// detail adds a markdown section to the document.
func (b *Bench) detail(title, body string) {
	b.details = append(b.details, "### "+title+"\n\n"+strings.TrimSpace(body)+"\n")
}
