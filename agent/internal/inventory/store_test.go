//go:build !unit

package inventory

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

var (
	cfg  *rest.Config
	core corev1client.CoreV1Interface // to read what the store wrote, independently of its own client
	dyn  dynamic.Interface
)

func TestMain(m *testing.M) {
	if testenv.UnitOnly() {
		os.Exit(m.Run())
	}
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "inventory integration tests:", err)
		os.Exit(1)
	}
	cfg = env.Config
	core = corev1client.NewForConfigOrDie(env.Config)
	dyn = dynamic.NewForConfigOrDie(env.Config)
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func newStore(t *testing.T, ns string) *Store {
	t.Helper()
	_, err := core.Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return New(dyn, ns, "flotilla-agent")
}

// randomBundle builds a bundle whose compressed objects take about size
// bytes (random data does not compress).
func randomBundle(t *testing.T, app string, size int) *apiv1alpha1.Bundle {
	t.Helper()
	var objs []*unstructured.Unstructured
	for i := 0; size > 0; i++ {
		n := min(size, 200<<10)
		size -= n
		buf := make([]byte, n*3/4)
		_, _ = rand.Read(buf)
		objs = append(objs, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": fmt.Sprintf("cm-%d", i)},
			"data": map[string]any{"blob": base64.StdEncoding.EncodeToString(buf)},
		}})
	}
	b, err := manifest.NewBundle(app, "default", "rev", "path", objs, &apiv1alpha1.SyncPolicy{Automated: true, Prune: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSaveLoadLargeBundle(t *testing.T) {
	testenv.Need(t, dyn != nil)
	ctx := context.Background()
	s := newStore(t, "inv-large")
	big := randomBundle(t, "big", 3<<20) // 3 MiB compressed: 4 chunks
	if len(big.GetObjectsGzip()) < 2<<20 {
		t.Fatalf("test bundle only %d bytes", len(big.GetObjectsGzip()))
	}
	inv := []Entry{{Version: "v1", Kind: "ConfigMap", Namespace: "default", Name: "cm-0"}, {Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "x", Name: "web"}}
	small := randomBundle(t, "small", 1<<10)
	for _, rec := range []*Record{{App: "big", Bundle: big, Inventory: inv}, {App: "small", Bundle: small, Removed: true}} {
		if err := s.Save(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []*Record{{App: "big", Bundle: big, Inventory: inv}, {App: "small", Bundle: small, Removed: true}}
	if diff := cmp.Diff(want, got, cmp.Comparer(proto.Equal)); diff != "" {
		t.Fatalf("Load (-want +got):\n%s", diff)
	}
	if err := manifest.VerifyDigest(got[0].Bundle); err != nil {
		t.Fatal(err)
	}
	if n := countSecrets(t, "inv-large"); n != 1+4+1 {
		t.Errorf("%d secrets, want 6 (2 indexes, 4 chunks; the small bundle inline)", n)
	}

	// Replacing the big bundle with a small one leaves no old chunks.
	next := randomBundle(t, "big", 10)
	if err := s.Save(ctx, &Record{App: "big", Bundle: next, Inventory: inv[:1]}); err != nil {
		t.Fatal(err)
	}
	if err := s.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countSecrets(t, "inv-large"); n != 2 {
		t.Errorf("%d secrets after replacing, want 2 (the indexes, both bundles inline)", n)
	}
	// Inventory-only updates keep the bundle.
	if err := s.SaveInventory(ctx, &Record{App: "big", Bundle: next, Inventory: nil}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got[0].Bundle, next) || len(got[0].Inventory) != 0 {
		t.Errorf("after SaveInventory: %v", got[0])
	}
	if err := s.Delete(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "small"); err != nil {
		t.Fatal(err)
	}
	if n := countSecrets(t, "inv-large"); n != 0 {
		t.Errorf("%d secrets after Delete, want 0", n)
	}
}

func TestLoadRefusesMissingChunk(t *testing.T) {
	testenv.Need(t, dyn != nil)
	ctx := context.Background()
	s := newStore(t, "inv-missing")
	b := randomBundle(t, "a", 1<<20)
	if err := s.Save(ctx, &Record{App: "a", Bundle: b}); err != nil {
		t.Fatal(err)
	}
	if err := core.Secrets("inv-missing").Delete(ctx, chunkName("a", b.GetDigest(), 1), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx); err == nil {
		t.Fatal("Load succeeded with a chunk missing")
	}
}

func countSecrets(t *testing.T, ns string) int {
	t.Helper()
	l, err := core.Secrets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Items)
}

// TestSaveRemembersIndex: a save does not read the app's index back (the
// store remembers what it wrote or loaded), and still removes every chunk
// of another digest, also one a crash left between a chunk and its index
// write; a second store over the same Secrets (an agent restart) reads the
// index once and goes on from it.
func TestSaveRemembersIndex(t *testing.T) {
	testenv.Need(t, dyn != nil)
	ctx := context.Background()
	const ns = "inv-remember"
	s := newStore(t, ns)
	first := randomBundle(t, "a", 1<<10)
	if err := s.Save(ctx, &Record{App: "a", Bundle: first}); err != nil {
		t.Fatal(err)
	}
	// A crash after writing a chunk of a bundle whose index never came.
	lost := randomBundle(t, "a", 2<<10)
	stray := s.secret(chunkName("a", lost.GetDigest(), 0), "a",
		map[string]string{labelRecord: recordChunk, labelAppHash: appHash("a"), labelDigest: digestLabel(lost.GetDigest())},
		map[string][]byte{"part": []byte("x"), "index": []byte("0")})
	if err := s.secrets.Apply(ctx, stray, s.fieldManager); err != nil {
		t.Fatal(err)
	}
	if n := countSecrets(t, ns); n != 2 {
		t.Fatalf("%d secrets, want 2 (the index, its bundle inline, and the stray chunk)", n)
	}

	var gets atomic.Int64
	counted := New(countingClient(t, &gets, objectGet), ns, "flotilla-agent")
	if _, err := counted.Load(ctx); err != nil {
		t.Fatal(err)
	}
	inv := []Entry{{Version: "v1", Kind: "ConfigMap", Namespace: "default", Name: "x"}}
	second := randomBundle(t, "a", 3<<10)
	if err := counted.Save(ctx, &Record{App: "a", Bundle: second, Inventory: inv}); err != nil {
		t.Fatal(err)
	}
	if err := counted.SaveInventory(ctx, &Record{App: "a", Bundle: second}); err != nil {
		t.Fatal(err)
	}
	if n := gets.Load(); n != 0 {
		t.Errorf("%d GETs of single Secrets after Load, want 0", n)
	}
	if err := counted.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countSecrets(t, ns); n != 1 {
		t.Errorf("%d secrets after Save, want 1 (the index, its bundle inline)", n)
	}
	got, err := New(dyn, ns, "flotilla-agent").Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !proto.Equal(got[0].Bundle, second) || len(got[0].Inventory) != 0 {
		t.Errorf("Load = %v", got)
	}

	// A store that did not load reads the index once, then remembers it.
	fresh := New(countingClient(t, &gets, objectGet), ns, "flotilla-agent")
	third := randomBundle(t, "a", 1<<10)
	for _, b := range []*apiv1alpha1.Bundle{third, second} {
		if err := fresh.Save(ctx, &Record{App: "a", Bundle: b}); err != nil {
			t.Fatal(err)
		}
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("%d GETs of single Secrets by a fresh store, want 1", n)
	}
	got, err = New(dyn, ns, "flotilla-agent").Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !proto.Equal(got[0].Bundle, second) {
		t.Errorf("Load = %v", got)
	}
	if err := fresh.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countSecrets(t, ns); n != 1 {
		t.Errorf("%d secrets, want 1", n)
	}
}

// TestInlineBundle: a small bundle and its inventory are one Secret write
// (and a SaveInventory one more, keeping the bundle); a record written in
// chunks (as before bundles went inline, or a large bundle) still loads, and
// moving between the two forms leaves no Secret of the other behind.
func TestInlineBundle(t *testing.T) {
	testenv.Need(t, dyn != nil)
	ctx := context.Background()
	const ns = "inv-inline"
	newStore(t, ns) // the namespace
	var writes atomic.Int64
	counted := New(countingClient(t, &writes, write), ns, "flotilla-agent")
	inv := []Entry{{Version: "v1", Kind: "ConfigMap", Namespace: "default", Name: "x"}}
	small := randomBundle(t, "a", 2<<10)
	if err := counted.Save(ctx, &Record{App: "a", Bundle: small}); err != nil {
		t.Fatal(err)
	}
	if err := counted.SaveInventory(ctx, &Record{App: "a", Bundle: small, Inventory: inv}); err != nil {
		t.Fatal(err)
	}
	if err := counted.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := writes.Load(); n != 2 {
		t.Errorf("%d Secret writes for a small bundle saved and its inventory saved, want 2", n)
	}
	if n := countSecrets(t, ns); n != 1 {
		t.Errorf("%d secrets, want 1 (the index)", n)
	}
	load := func() *Record {
		t.Helper()
		got, err := New(dyn, ns, "flotilla-agent").Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("Load = %v", got)
		}
		return got[0]
	}
	if got := load(); !proto.Equal(got.Bundle, small) || !cmp.Equal(got.Inventory, inv) {
		t.Errorf("Load after SaveInventory = %v", got)
	}

	// Written in chunks, as an agent before inline bundles did.
	old := New(dyn, ns, "flotilla-agent")
	old.inlineMax = -1
	chunked := randomBundle(t, "a", 3<<10)
	if err := old.Save(ctx, &Record{App: "a", Bundle: chunked, Inventory: inv}); err != nil {
		t.Fatal(err)
	}
	if err := old.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countSecrets(t, ns); n != 2 {
		t.Errorf("%d secrets, want 2 (the index and one chunk)", n)
	}
	idx, err := core.Secrets(ns).Get(ctx, indexName("a"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := idx.Data[fieldBundle]; ok {
		t.Error("the index of a chunked bundle still holds an inline bundle")
	}
	if got := load(); !proto.Equal(got.Bundle, chunked) {
		t.Errorf("Load of a chunked record = %v", got)
	}

	// Back to inline: the chunk goes.
	fresh := New(dyn, ns, "flotilla-agent")
	if _, err := fresh.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fresh.SaveInventory(ctx, &Record{App: "a", Bundle: chunked}); err != nil {
		t.Fatal(err)
	}
	if got := load(); !proto.Equal(got.Bundle, chunked) || len(got.Inventory) != 0 {
		t.Errorf("Load after SaveInventory of a chunked record = %v", got)
	}
	if err := fresh.Save(ctx, &Record{App: "a", Bundle: small}); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countSecrets(t, ns); n != 1 {
		t.Errorf("%d secrets after going inline again, want 1", n)
	}
	if got := load(); !proto.Equal(got.Bundle, small) {
		t.Errorf("Load after going inline again = %v", got)
	}
	if err := fresh.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n := countSecrets(t, ns); n != 0 {
		t.Errorf("%d secrets after Delete, want 0", n)
	}
}

// TestSaveBackToEarlierDigest: Save returns before the chunks of the
// digest it replaced are deleted; a save straight back to that digest (a
// rollback) must not lose the chunks it writes again to that deletion.
func TestSaveBackToEarlierDigest(t *testing.T) {
	testenv.Need(t, dyn != nil)
	ctx := context.Background()
	const ns = "inv-back"
	s := newStore(t, ns)
	one, two := randomBundle(t, "a", 1<<20), randomBundle(t, "a", 1<<20) // 2 chunks each
	for range 3 {
		for _, b := range []*apiv1alpha1.Bundle{one, two, one} {
			if err := s.Save(ctx, &Record{App: "a", Bundle: b}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Settle(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := New(dyn, ns, "flotilla-agent").Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !proto.Equal(got[0].Bundle, one) {
			t.Fatalf("Load = %v", got)
		}
		if n := countSecrets(t, ns); n != 3 {
			t.Fatalf("%d secrets, want 3 (index and two chunks)", n)
		}
	}
	// Delete waits for the last removal too and leaves nothing.
	if err := s.Save(ctx, &Record{App: "a", Bundle: two}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n := countSecrets(t, ns); n != 0 {
		t.Fatalf("%d secrets after Delete, want 0", n)
	}
}

// countingClient is a dynamic client of the test cluster that counts in n
// the requests for which counts is true.
func countingClient(t *testing.T, n *atomic.Int64, counts func(*http.Request) bool) dynamic.Interface {
	t.Helper()
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if counts(r) {
				n.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	return dynamic.NewForConfigOrDie(c)
}

// objectGet: a GET of one object (not a list).
func objectGet(r *http.Request) bool {
	return r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/secrets")
}

// write: every method but GET.
func write(r *http.Request) bool { return r.Method != http.MethodGet }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestLoadedStoreReadsNothing: after a Load, saving new apps (inline or in
// chunks) and changing them reads no Secret, neither a GET of the index nor
// a list of chunks, unless the app has chunks of another digest to remove,
// which are removed; after a write that failed, the store reads that app's
// Secrets again; and what it wrote loads back whole.
func TestLoadedStoreReadsNothing(t *testing.T) {
	testenv.Need(t, dyn != nil)
	ctx := context.Background()
	const ns = "inv-loaded"
	newStore(t, ns)
	var reads atomic.Int64
	var failWrites atomic.Bool
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodGet {
				reads.Add(1)
			} else if failWrites.Load() {
				return nil, fmt.Errorf("injected: %s %s refused", r.Method, r.URL.Path)
			}
			return rt.RoundTrip(r)
		})
	})
	s := New(dynamic.NewForConfigOrDie(c), ns, "flotilla-agent")
	s.inlineMax = 4 << 10
	if _, err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	reads.Store(0)
	last := map[string]*apiv1alpha1.Bundle{}
	save := func(app string, size int) error {
		t.Helper()
		b := randomBundle(t, app, size)
		if err := s.Save(ctx, &Record{App: app, Bundle: b}); err != nil {
			return err
		}
		last[app] = b
		return s.Settle(ctx)
	}
	step := func(what string, app string, size int, wantReads int64, wantSecrets int) {
		t.Helper()
		reads.Store(0)
		if err := save(app, size); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n := reads.Load(); n != wantReads {
			t.Errorf("%s: %d reads, want %d", what, n, wantReads)
		}
		if n := countSecrets(t, ns); n != wantSecrets {
			t.Errorf("%s: %d Secrets, want %d", what, n, wantSecrets)
		}
	}
	step("new app, inline", "small", 1<<10, 0, 1)
	step("new app, in chunks", "large", 8<<10, 0, 3)
	step("changed, in chunks again: the old chunk listed and removed", "large", 8<<10, 1, 3)
	step("changed, inline: the old chunk listed and removed", "large", 1<<10, 1, 2)
	step("changed, inline again", "large", 1<<10, 0, 2)

	failWrites.Store(true)
	if err := save("small", 1<<10); err == nil {
		t.Fatal("save with every write refused: no error")
	}
	failWrites.Store(false)
	reads.Store(0)
	if err := save("small", 1<<10); err != nil {
		t.Fatal(err)
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("save after a failed write: %d reads, want 2 (the index and the chunks read again)", n)
	}

	got, err := New(dyn, ns, "reader").Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("loaded %d records, want 2", len(got))
	}
	for _, r := range got {
		if !proto.Equal(r.Bundle, last[r.App]) {
			t.Errorf("app %s: loaded bundle %s, want the last saved %s", r.App, r.Bundle.GetDigest(), last[r.App].GetDigest())
		}
	}
}
