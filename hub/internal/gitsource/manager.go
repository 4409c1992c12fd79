package gitsource

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/hashicorp/go-hclog"
)

// Manager tracks repositories. It is safe for concurrent use.
type Manager struct {
	opts  Options
	log   hclog.Logger
	creds *credentials
	ca    []byte

	mu      sync.Mutex
	mirrors map[string]*mirror
	kick    map[string]chan struct{} // per repo, buffered 1: poll now
	pushes  map[string][]Push        // per repo: pushes webhooks announced since its last poll
	added   chan string              // repos added while Run is running

	checkoutMu sync.Mutex
	checkouts  map[string]*sync.Once

	changes chan struct{}
}

// New returns a Manager. Call Run to start polling.
// Options are used as given (see Options.Validate); a credential template
// or CA file that does not load is left out (logged), never widened.
func New(opts Options, log hclog.Logger) *Manager {
	opts.defaults()
	creds, err := compileCredentials(opts.Credentials)
	if err != nil {
		log.Error("git credentials refused: no credentials are used", "error", err)
		creds = nil
	}
	ca, err := opts.caBundle()
	if err != nil {
		log.Error("git CA file not loaded", "error", err)
	}
	return &Manager{
		opts:      opts,
		log:       log,
		creds:     creds,
		ca:        ca,
		mirrors:   map[string]*mirror{},
		kick:      map[string]chan struct{}{},
		pushes:    map[string][]Push{},
		added:     make(chan string, 64),
		checkouts: map[string]*sync.Once{},
		changes:   make(chan struct{}, 1),
	}
}

// Changes is signalled (coalesced) whenever a tracked repo's refs moved or
// its reachability changed.
func (m *Manager) Changes() <-chan struct{} { return m.changes }

func (m *Manager) notify() {
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

// Track starts following repoURL and fetches it once before returning, so
// that Resolve can answer at once. Tracking an already tracked repo is cheap.
// A URL the scheme policy refuses (see CheckURL) is never tracked and costs
// no network call.
func (m *Manager) Track(ctx context.Context, repoURL string) error {
	if err := CheckURL(repoURL, m.opts.AllowInsecureHTTP); err != nil {
		return err
	}
	m.mu.Lock()
	mr, ok := m.mirrors[repoURL]
	if !ok {
		net := netOptions{
			auth:         func() (transport.AuthMethod, error) { return m.creds.authFor(repoURL) },
			caBundle:     m.ca,
			listTimeout:  m.opts.ListTimeout,
			fetchTimeout: m.opts.FetchTimeout,
			maxBytes:     m.opts.MaxFetchBytes,
		}
		var err error
		mr, err = openMirror(m.opts.Dir, repoURL, net, m.opts.MaxFetchBytes)
		if err != nil {
			m.mu.Unlock()
			return err
		}
		m.mirrors[repoURL] = mr
		m.kick[repoURL] = make(chan struct{}, 1)
		select {
		case m.added <- repoURL:
		default:
		}
	}
	m.mu.Unlock()
	if ok {
		refs, err := mr.status()
		if refs != "" || err != nil {
			return err
		}
	}
	_, err := m.poll(ctx, mr)
	return err
}

// Refresh asks for an immediate poll of repoURL (a webhook arrived). It
// reports whether the repo is tracked. Matching ignores a trailing ".git" and
// the scheme's letter case.
func (m *Manager) Refresh(repoURL string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	hit := false
	for url, ch := range m.kick {
		if SameRepo(url, repoURL) {
			hit = true
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	return hit
}

// Repos lists the tracked repository URLs.
func (m *Manager) Repos() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.mirrors))
	for u := range m.mirrors {
		out = append(out, u)
	}
	return out
}

func (m *Manager) mirror(repoURL string) (*mirror, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mr, ok := m.mirrors[repoURL]
	if !ok {
		return nil, fmt.Errorf("repo %s is not tracked", Redact(repoURL))
	}
	return mr, nil
}

// Resolve returns the commit that rev (branch, tag or SHA) names in repoURL
// at the last fetch. When the last fetch failed, the error says so, and the
// caller keeps its last good state.
func (m *Manager) Resolve(repoURL, rev string) (string, error) {
	mr, err := m.mirror(repoURL)
	if err != nil {
		return "", err
	}
	if _, lastErr := mr.status(); lastErr != nil {
		return "", lastErr
	}
	h, err := mr.resolve(rev)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// TreeID returns the git object id of path at commit: two commits with the
// same TreeID for a path have identical content under it.
func (m *Manager) TreeID(repoURL, commit, path string) (string, error) {
	mr, err := m.mirror(repoURL)
	if err != nil {
		return "", err
	}
	return mr.treeID(plumbing.NewHash(commit), path)
}

// Checkout returns a folder holding the files of commit. Checkouts are
// shared and must not be modified; concurrent calls for one commit write it
// once.
func (m *Manager) Checkout(repoURL, commit string) (string, error) {
	mr, err := m.mirror(repoURL)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(m.opts.Dir, "checkouts", filepath.Base(mr.dir), commit)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	m.checkoutMu.Lock()
	once, ok := m.checkouts[dir]
	if !ok {
		once = new(sync.Once)
		m.checkouts[dir] = once
	}
	m.checkoutMu.Unlock()
	var cerr error
	once.Do(func() { cerr = mr.checkout(plumbing.NewHash(commit), dir, m.opts.Checkout) })
	if cerr != nil {
		m.checkoutMu.Lock()
		delete(m.checkouts, dir)
		m.checkoutMu.Unlock()
		return "", cerr
	}
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("checkout %s of %s: %w", commit, mr.name, err)
	}
	return dir, nil
}

// Prune removes checkouts of repoURL other than keep.
func (m *Manager) Prune(repoURL string, keep map[string]bool) {
	mr, err := m.mirror(repoURL)
	if err != nil {
		return
	}
	base := filepath.Join(m.opts.Dir, "checkouts", filepath.Base(mr.dir))
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if keep[e.Name()] {
			continue
		}
		dir := filepath.Join(base, e.Name())
		m.checkoutMu.Lock()
		delete(m.checkouts, dir)
		m.checkoutMu.Unlock()
		_ = os.RemoveAll(dir)
	}
}

func (m *Manager) poll(ctx context.Context, mr *mirror) (bool, error) {
	start := time.Now()
	_, lastErr := mr.status()
	hadErr := lastErr != nil
	changed, err := mr.sync(ctx)
	if m.opts.OnPoll != nil {
		m.opts.OnPoll(mr.name, time.Since(start), err)
	}
	switch {
	case err != nil:
		m.log.Warn("repo unreachable", "repo", mr.name, "error", err)
		if !hadErr {
			m.notify()
		}
	case changed || hadErr:
		m.log.Info("repo moved", "repo", mr.name, "duration", time.Since(start))
		m.notify()
	}
	return changed, err
}

// Run polls every tracked repo on its own jittered timer until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	started := map[string]bool{}
	start := func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		for url, mr := range m.mirrors {
			if started[url] {
				continue
			}
			started[url] = true
			wg.Add(1)
			go func(mr *mirror, kick <-chan struct{}) {
				defer wg.Done()
				m.pollLoop(ctx, url, mr, kick)
			}(mr, m.kick[url])
		}
	}
	start()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.added:
			start()
		}
	}
}

// pollLoop polls mr every poll interval (plus jitter) and when kicked,
// but never more often than the refresh interval: kicks that arrive while
// it waits are served by one poll, so a flood of webhooks costs one ref
// listing per interval. A kick for a push whose commit the mirror does not
// hold is served at once by a fetch without a listing (RefreshPush), unless
// the previous such fetch did not bring the commit its push named: then it
// waits as any kick does.
func (m *Manager) pollLoop(ctx context.Context, url string, mr *mirror, kick <-chan struct{}) {
	var last time.Time
	trusted := true // the last push served at once named a commit the remote had
	for {
		wait := m.opts.PollInterval + time.Duration(rand.Int64N(int64(m.opts.PollInterval)/10+1))
		t := time.NewTimer(wait)
		var pushed []Push
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-kick:
			t.Stop()
			pushed = mr.news(m.takePushes(url))
			if d := holdFor(m.opts.RefreshInterval, time.Since(last), len(pushed) > 0, trusted); d > 0 {
				hold := time.NewTimer(d)
				select {
				case <-ctx.Done():
					hold.Stop()
					return
				case <-hold.C:
				}
				select { // a kick that came while holding is served by this poll
				case <-kick:
				default:
				}
				pushed = mr.news(append(pushed, m.takePushes(url)...))
			}
		case <-t.C:
		}
		last = time.Now()
		if len(pushed) == 0 {
			_, _ = m.poll(ctx, mr)
			continue
		}
		trusted = m.pollPushed(ctx, mr, pushed)
	}
}

// pollPushed is poll by fetchPushed; it reports whether every push named a
// commit the remote had.
func (m *Manager) pollPushed(ctx context.Context, mr *mirror, ps []Push) bool {
	start := time.Now()
	_, lastErr := mr.status()
	changed, known, err := mr.fetchPushed(ctx, ps)
	if m.opts.OnPoll != nil {
		m.opts.OnPoll(mr.name, time.Since(start), err)
	}
	switch {
	case err != nil:
		m.log.Warn("repo unreachable", "repo", mr.name, "error", err)
		if lastErr == nil {
			m.notify()
		}
	case changed || lastErr != nil:
		m.log.Info("repo moved", "repo", mr.name, "duration", time.Since(start), "pushed", ps[0].After)
		m.notify()
	}
	if err == nil && !known {
		m.log.Warn("webhook named a commit the repo does not have: the hub follows the repo's refs, not the webhook", "repo", mr.name, "ref", ps[0].Ref, "after", ps[0].After)
	}
	return err != nil || known
}

// holdFor is how long a kick waits, since the last poll: the rest of the
// refresh interval, or nothing for a push with a commit the mirror does not
// hold (news) while the pushes served at once have named real commits.
func holdFor(interval, since time.Duration, news, trusted bool) time.Duration {
	if news && trusted {
		return 0
	}
	return max(interval-since, 0)
}
