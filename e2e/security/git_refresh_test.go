//go:build !unit

package security

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingProxy stands in front of a git server and counts ref listings
// (GET .../info/refs).
type countingProxy struct {
	*httptest.Server
	mu       sync.Mutex
	listings int
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/info/refs") {
			p.mu.Lock()
			p.listings++
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *countingProxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.listings
}

// Finding 9 (refresh): each webhook made the hub list the repo's refs with
// its token. 100 webhooks for a repo cost at most a few listings (one per
// --git-refresh-interval, 1s by default), and webhooks naming a repo the hub
// does not follow cost none.
func TestGitWebhookFloodCoalesced(t *testing.T) {
	t.Parallel()
	_, repo := gitRepo(t, "config")
	c1, err := repo.CommitAndPush("one")
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCountingProxy(t, repo.URL)
	viaProxy := proxy.URL + "/config.git"
	unknown := newRecorder(t, false)
	apps := filepath.Join(t.TempDir(), "apps")
	writeApp(t, apps, "config", viaProxy)
	h := startHub(t, apps)
	waitRevision(t, h, "config", c1)

	c2, err := repo.CommitAndPush("two")
	if err != nil {
		t.Fatal(err)
	}
	before := proxy.count()
	// The flood is paced (one every 20 ms, as a busy host or an attacker
	// sends them), so that each webhook finds the previous listing done.
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range 100 {
		<-tick.C
		if err := h.PushWebhook(t.Context(), viaProxy); err != nil {
			t.Fatal(err)
		}
		if err := h.PushWebhook(t.Context(), unknown.URL+"/not-followed.git"); err != nil {
			t.Fatal(err)
		}
	}
	waitRevision(t, h, "config", c2)
	// At most one listing per refresh interval (1s) the flood lasted, plus
	// one, each with at most one more for the fetch of the moved commit.
	allowed := 2 * (int(time.Since(start)/time.Second) + 2)
	if n := proxy.count() - before; n > allowed {
		t.Errorf("100 webhooks over %s caused %d ref listings; want at most %d", time.Since(start).Round(time.Millisecond), n, allowed)
	} else {
		t.Logf("100 webhooks over %s caused %d ref listings", time.Since(start).Round(time.Millisecond), n)
	}
	if n, _ := unknown.seen(); n != 0 {
		t.Errorf("webhooks naming an unfollowed repo caused %d requests to its host", n)
	}
}
