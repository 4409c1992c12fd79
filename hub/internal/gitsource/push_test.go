//go:build !unit

package gitsource

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
)

// A webhook that names its pushed commit is served at once, with one ref
// advertisement (the fetch's own) instead of a listing and then a fetch,
// inside a refresh interval that would otherwise hold it; the hub still
// follows the remote's refs, whatever the push says: a force-push, a push
// of another branch, a commit that is not on the branch, one the remote
// does not have, a branch it does not have.
func TestRefreshPush(t *testing.T) {
	dir := t.TempDir()
	_, repo := gitserver.StartT(t, dir, "r")
	if err := repo.Write(map[string][]byte{"a.yaml": []byte("a: 1\n")}); err != nil {
		t.Fatal(err)
	}
	c1, err := repo.CommitAndPush("one")
	if err != nil {
		t.Fatal(err)
	}
	// A proxy in front of the git server counts ref advertisements
	// (GET .../info/refs): one per listing, one per fetch.
	target, _ := url.Parse(repo.URL)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	var adverts atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs") {
			adverts.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	u := proxy.URL + "/r.git"
	polled := make(chan error, 16)
	m := New(Options{
		Dir: filepath.Join(dir, "state"), AllowInsecureHTTP: true,
		PollInterval: time.Hour, RefreshInterval: time.Hour, // only kicks poll; a held kick waits an hour
		OnPoll: func(_ string, _ time.Duration, err error) { polled <- err },
	}, hclog.NewNullLogger())
	if err := m.Track(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if err := <-polled; err != nil { // Track's own poll
		t.Fatal(err)
	}
	go func() { _ = m.Run(t.Context()) }()
	// A first refresh polls at once (no poll of the loop yet) and starts the interval.
	m.Refresh(u)
	if err := <-polled; err != nil {
		t.Fatal(err)
	}
	push := func(ref, after string) {
		t.Helper()
		adverts.Store(0)
		if !m.RefreshPush(u, Push{Ref: ref, After: after}) {
			t.Fatal("repo not tracked")
		}
		select {
		case err := <-polled:
			if err != nil {
				t.Fatal(err)
			}
		case <-t.Context().Done():
			t.Fatalf("push of %s to %s was not served", after, ref)
		}
		if n := adverts.Load(); n != 1 {
			t.Errorf("push of %s to %s: %d ref advertisements, want 1 (the fetch's)", after, ref, n)
		}
	}
	resolve := func(rev string) string {
		t.Helper()
		h, err := m.Resolve(u, rev)
		if err != nil {
			return err.Error()
		}
		return h
	}

	if err := repo.Write(map[string][]byte{"a.yaml": []byte("a: 2\n")}); err != nil {
		t.Fatal(err)
	}
	c2, err := repo.CommitAndPush("two")
	if err != nil {
		t.Fatal(err)
	}
	push("refs/heads/main", c2)
	if got := resolve("main"); got != c2 {
		t.Fatalf("after the push of %s: main at %s", c2, got)
	}

	// A force-push: main goes back to a new commit on top of c1.
	gitIn(t, repo.Work, "reset", "-q", "--hard", c1)
	if err := repo.Write(map[string][]byte{"a.yaml": []byte("a: 3\n")}); err != nil {
		t.Fatal(err)
	}
	gitIn(t, repo.Work, "commit", "-q", "-am", "three")
	c3 := gitIn(t, repo.Work, "rev-parse", "HEAD")
	gitIn(t, repo.Work, "push", "-q", "-f", "origin", "HEAD:main")
	push("refs/heads/main", c3)

	// Another branch, pushed and named.
	gitIn(t, repo.Work, "commit", "-q", "--allow-empty", "-m", "feature")
	f1 := gitIn(t, repo.Work, "rev-parse", "HEAD")
	gitIn(t, repo.Work, "push", "-q", "origin", "HEAD:feature")
	push("refs/heads/feature", f1)

	// A push naming a commit the remote has but main no longer points at
	// (c1, an ancestor): main stays where the remote has it.
	push("refs/heads/main", c1)
	want := map[string]string{"main": c3, "feature": f1}
	got := map[string]string{"main": resolve("main"), "feature": resolve("feature")}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("refs after the pushes (-want +got):\n%s", d)
	}

	// A commit the remote does not have, on main and on a branch it does not have.
	forged := strings.Repeat("ab", 20)
	push("refs/heads/main", forged)
	got = map[string]string{"main": resolve("main"), "feature": resolve("feature")}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("refs after a forged push (-want +got):\n%s", d)
	}
	if got := resolve(forged); !strings.Contains(got, ErrRevisionNotFound.Error()) {
		t.Errorf("the forged commit resolves: %s", got)
	}

	// The fingerprint taken from the fetched refs is the listing's: a poll
	// now finds nothing moved.
	mr, _ := m.mirror(u)
	if changed, err := mr.sync(t.Context()); err != nil || changed {
		t.Errorf("poll after the pushes: changed %v, %v; want unchanged", changed, err)
	}

	// A timer poll that finds refs moved (a new commit on main, an
	// annotated tag, the feature branch deleted) fetches them without a
	// second advertisement and follows the remote's refs.
	gitIn(t, repo.Work, "reset", "-q", "--hard", c3)
	if err := repo.Write(map[string][]byte{"a.yaml": []byte("a: 4\n")}); err != nil {
		t.Fatal(err)
	}
	gitIn(t, repo.Work, "commit", "-q", "-am", "four")
	c4 := gitIn(t, repo.Work, "rev-parse", "HEAD")
	gitIn(t, repo.Work, "tag", "-a", "-m", "release", "v1", c4)
	gitIn(t, repo.Work, "push", "-q", "origin", "HEAD:main", "v1", ":feature")
	adverts.Store(0)
	if changed, err := mr.sync(t.Context()); err != nil || !changed {
		t.Fatalf("poll after a push without webhook: changed %v, %v; want changed", changed, err)
	}
	if n := adverts.Load(); n != 1 {
		t.Errorf("poll: %d ref advertisements, want 1 (the listing's)", n)
	}
	if got := resolve("main"); got != c4 {
		t.Errorf("main at %s after the poll, want %s", got, c4)
	}
	if got := resolve("v1"); got != c4 {
		t.Errorf("tag v1 at %s after the poll, want %s", got, c4)
	}
	if got := resolve("feature"); !strings.Contains(got, ErrRevisionNotFound.Error()) {
		t.Errorf("deleted branch feature still resolves: %s", got)
	}
	if changed, err := mr.sync(t.Context()); err != nil || changed {
		t.Errorf("second poll: changed %v, %v; want unchanged", changed, err)
	}
}

// A kick waits for the rest of the refresh interval, unless it brings a
// push with a commit the mirror lacks and the pushes served at once so far
// named commits the remote had.
func TestHoldFor(t *testing.T) {
	for _, tc := range []struct {
		name          string
		since         time.Duration
		news, trusted bool
		want          time.Duration
	}{
		{"refresh right after a poll", 200 * time.Millisecond, false, true, 800 * time.Millisecond},
		{"refresh after the interval", 2 * time.Second, false, true, 0},
		{"new commit right after a poll", 200 * time.Millisecond, true, true, 0},
		{"new commit after a forged one", 200 * time.Millisecond, true, false, 800 * time.Millisecond},
		{"commit already held", 200 * time.Millisecond, false, true, 800 * time.Millisecond},
	} {
		if got := holdFor(time.Second, tc.since, tc.news, tc.trusted); got != tc.want {
			t.Errorf("%s: held %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestPushValid(t *testing.T) {
	c := strings.Repeat("1f", 20)
	for _, tc := range []struct {
		p    Push
		want bool
	}{
		{Push{"refs/heads/main", c}, true},
		{Push{"refs/tags/v1", c}, true},
		{Push{"main", c}, false},
		{Push{"refs/heads/main", strings.Repeat("0", 40)}, false}, // a deletion
		{Push{"refs/heads/main", c[:12]}, false},
		{Push{"refs/heads/main", ""}, false},
		{Push{"refs/merge-requests/1/head", c}, false},
	} {
		if got := tc.p.valid(); got != tc.want {
			t.Errorf("%+v valid = %v, want %v", tc.p, got, tc.want)
		}
	}
}
