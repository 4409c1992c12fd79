package controller

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
)

// repos runs one worker per repository: it fetches the repo for the first
// time (under gitsource's list and fetch deadlines) and resolves the revisions the reconcile
// asked for, off the reconcile path. The reconcile only reads what the
// workers last found, so a repo whose server never answers delays no one
// but its own apps.
type repos struct {
	git     *gitsource.Manager
	changed func() // called when a worker's answers changed
	// charts resolves the chart sources (keys made by chartKey), looked
	// up again every chartPoll.
	charts    ChartSource
	chartPoll time.Duration

	mu   sync.Mutex
	ctx  context.Context // workers' context; set by start
	wg   sync.WaitGroup
	byID map[string]*repo
}

// repo is one repository's worker state.
type repo struct {
	url  string
	kick chan struct{} // buffered 1: resolve again

	round sync.Mutex // one round at a time (the worker or refreshNow)

	mu       sync.Mutex
	wanted   map[string]bool   // revisions asked for
	resolved map[string]result // revision → commit (or error) at the last round
	done     bool              // a first round finished
}

type result struct {
	v   string
	err error
}

// waitingError is the condition of apps whose repository has not answered
// yet.
type waitingError struct{ url string }

func (e waitingError) Error() string { return "waiting for repository " + e.url }

func newRepos(git *gitsource.Manager, changed func()) *repos {
	return &repos{git: git, changed: changed, byID: map[string]*repo{}}
}

// start sets the context the workers run under (the first one wins).
func (rs *repos) start(ctx context.Context) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.ctx == nil {
		rs.ctx = ctx
	}
}

// commit returns what url's worker last resolved rev to. ok is false when
// the worker has not answered for rev yet (the worker is started or asked);
// err is then a waitingError while the repo's first fetch has not ended,
// nil when only rev is new. It never waits for git.
func (rs *repos) commit(url, rev string) (commit string, err error, ok bool) {
	r := rs.get(url)
	r.mu.Lock()
	defer r.mu.Unlock()
	res, known := r.resolved[rev]
	if !r.wanted[rev] {
		r.wanted[rev] = true
		r.poke()
	}
	switch {
	case known:
		return res.v, res.err, true
	case r.done:
		return "", nil, false
	default:
		return "", waitingError{url}, false
	}
}

func (rs *repos) get(url string) *repo {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.byID[url]
	if ok {
		return r
	}
	r = &repo{url: url, kick: make(chan struct{}, 1), wanted: map[string]bool{}, resolved: map[string]result{}}
	rs.byID[url] = r
	ctx := rs.ctx
	if ctx == nil {
		ctx = context.TODO() // never: start runs before the first reconcile
	}
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		rs.work(ctx, r)
	}()
	return r
}

func (r *repo) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// kickAll asks every git worker to resolve again (git moved, or the
// resync). Chart workers keep their own poll (ChartPoll) and manual
// refreshes: a chart's lookup is a request to its repository or registry,
// not a read of a local mirror.
func (rs *repos) kickAll() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for url, r := range rs.byID {
		if _, _, chart := parseChartKey(url); !chart {
			r.poke()
		}
	}
}

// refreshNow runs one round of every worker in the caller's goroutine
// (ReconcileNow: tests and benchmarks).
func (rs *repos) refreshNow(ctx context.Context) {
	rs.mu.Lock()
	all := make([]*repo, 0, len(rs.byID))
	for _, r := range rs.byID {
		all = append(all, r)
	}
	rs.mu.Unlock()
	for _, r := range all {
		rs.runRound(ctx, r)
	}
}

func (rs *repos) work(ctx context.Context, r *repo) {
	var poll <-chan time.Time // chart repositories are polled here
	if _, _, ok := parseChartKey(r.url); ok {
		t := time.NewTicker(rs.chartPoll)
		defer t.Stop()
		poll = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-poll:
		}
		rs.runRound(ctx, r)
	}
}

// chartKey is the worker key of a chart source: its repository and chart.
// Its "revisions" are version constraints, its "commits" chart references
// (chartsource.Ref.String).
func chartKey(src app.Source) string { return "chart\x00" + src.RepoURL + "\x00" + src.Chart }

func parseChartKey(key string) (repoURL, chart string, ok bool) {
	rest, ok := strings.CutPrefix(key, "chart\x00")
	if !ok {
		return "", "", false
	}
	repoURL, chart, ok = strings.Cut(rest, "\x00")
	return repoURL, chart, ok
}

// sourceKey is the worker key of src: its git repository or its chart.
func sourceKey(src app.Source) string {
	if src.IsChart() {
		return chartKey(src)
	}
	return src.RepoURL
}

// resolveChart resolves every wanted constraint of a chart source.
func (rs *repos) resolveChart(ctx context.Context, repoURL, chart string, revs []string) map[string]result {
	res := make(map[string]result, len(revs))
	for _, rev := range revs {
		if rs.charts == nil {
			res[rev] = result{err: errors.New("charts from Helm repositories are not enabled on this hub")}
			continue
		}
		ref, err := rs.charts.Resolve(ctx, repoURL, chart, rev)
		res[rev] = result{ref.String(), err}
	}
	return res
}

// runRound tracks the repo (its first fetch; later fetches are gitsource's
// polls) and resolves every wanted revision.
func (rs *repos) runRound(ctx context.Context, r *repo) {
	r.round.Lock()
	defer r.round.Unlock()
	r.mu.Lock()
	revs := make([]string, 0, len(r.wanted))
	for rev := range r.wanted {
		revs = append(revs, rev)
	}
	r.mu.Unlock()
	var res map[string]result
	if repoURL, chart, ok := parseChartKey(r.url); ok {
		res = rs.resolveChart(ctx, repoURL, chart, revs)
		if ctx.Err() != nil {
			return // shutting down: leave the last answers
		}
		// A repository that is down is an error on its apps, which keep
		// their last good bundles (as with git).
	} else {
		err := rs.git.Track(ctx, r.url)
		if ctx.Err() != nil {
			return // shutting down: leave the last answers
		}
		res = make(map[string]result, len(revs))
		for _, rev := range revs {
			if err != nil {
				res[rev] = result{err: err}
				continue
			}
			c, rerr := rs.git.Resolve(r.url, rev)
			res[rev] = result{c, rerr}
		}
	}
	r.mu.Lock()
	changed := !r.done || !maps.EqualFunc(r.resolved, res, sameResult)
	r.resolved, r.done = res, true
	r.mu.Unlock()
	if changed {
		rs.changed()
	}
}

func sameResult(a, b result) bool {
	if a.v != b.v || (a.err == nil) != (b.err == nil) {
		return false
	}
	return a.err == nil || a.err.Error() == b.err.Error()
}

// wait waits for the workers to stop after their context ended, at most
// until ctx ends.
func (rs *repos) wait(ctx context.Context) bool {
	done := make(chan struct{})
	go func() {
		rs.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// RefreshCharts asks for the chart sources among srcs to be looked up
// again now (an app refresh), as a webhook does for git.
func (c *Controller) RefreshCharts(srcs []app.Source) {
	for _, s := range srcs {
		if s.IsChart() {
			c.repos.get(chartKey(s)).poke()
		}
	}
}
