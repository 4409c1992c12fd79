package engines

import (
	"context"
	"errors"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

func TestCacheSingleflight(t *testing.T) {
	root := repoRootForTest(t)
	r := newRenderer(render.Options{})
	in := render.Input{Root: root, Source: app.Source{Path: "helm/mychart"}, Namespace: "shop", AppName: "web"}
	key := render.CacheKey("tree-1", in)
	const callers = 50
	var wg sync.WaitGroup
	results := make([]int, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			objs, err := r.Render(context.Background(), key, in)
			results[i], errs[i] = len(objs), err
		}()
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || results[i] != 4 {
			t.Fatalf("caller %d: %d objects, error %v", i, results[i], errs[i])
		}
	}
	if got := r.Stats(); got.Renders != 1 || got.Hits != callers-1 {
		t.Errorf("stats %+v, want 1 render and %d hits", got, callers-1)
	}
}

func TestCacheReturnsCallerSlice(t *testing.T) {
	r := newRenderer(render.Options{})
	in := render.Input{Root: repoRootForTest(t), Source: app.Source{Path: "guestbook"}, AppName: "gb"}
	a, err := r.Render(context.Background(), "k", in)
	if err != nil {
		t.Fatal(err)
	}
	a[0], a[1] = a[1], a[0] // reordering the slice must not affect the cache
	b, err := r.Render(context.Background(), "k", in)
	if err != nil {
		t.Fatal(err)
	}
	if b[0].GetKind() != "Service" {
		t.Errorf("cached order changed: first is %s", b[0].GetKind())
	}
}

func TestCacheEviction(t *testing.T) {
	r := newRenderer(render.Options{MaxEntries: 2})
	root := repoRootForTest(t)
	in := render.Input{Root: root, Source: app.Source{Path: "guestbook"}, AppName: "gb"}
	for _, k := range []string{"a", "b", "a", "c", "a", "b"} {
		if _, err := r.Render(context.Background(), k, in); err != nil {
			t.Fatal(err)
		}
	}
	// a, b render; a hits; c renders and evicts b (a was used more
	// recently); a hits; b renders again.
	if got := r.Stats(); got.Renders != 4 || got.Hits != 2 || got.Entries != 2 {
		t.Errorf("stats %+v, want 4 renders, 2 hits, 2 entries", got)
	}
}

func TestCacheErrors(t *testing.T) {
	r := newRenderer(render.Options{})
	bad := render.Input{Root: repoRootForTest(t), Source: app.Source{Path: "broken"}}
	for range 2 {
		if _, err := r.Render(context.Background(), "bad", bad); !errors.Is(err, render.ErrRender) {
			t.Fatalf("got %v, want render.ErrRender", err)
		}
	}
	if got := r.Stats(); got.Renders != 1 {
		t.Errorf("a render error is not cached: %+v", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	good := render.Input{Root: repoRootForTest(t), Source: app.Source{Path: "guestbook"}}
	if _, err := r.Render(ctx, "good", good); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	objs, err := r.Render(context.Background(), "good", good)
	if err != nil || len(objs) != 2 {
		t.Fatalf("after a cancelled render: %d objects, %v", len(objs), err)
	}
}

func TestCacheKey(t *testing.T) {
	base := func() render.Input {
		return render.Input{
			Root: "/a", Namespace: "ns", AppName: "web",
			Source: app.Source{RepoURL: "https://x", TargetRevision: "main", Path: "charts/web", Helm: &app.Helm{
				ValuesObject: map[string]any{"a": 1, "b": map[string]any{"c": 2, "d": 3}},
			}},
		}
	}
	k := render.CacheKey("tree", base())
	same := []func(*render.Input){
		func(in *render.Input) { in.Root = "/elsewhere" },
		func(in *render.Input) { in.Source.RepoURL = "https://mirror" },
		func(in *render.Input) { in.Source.TargetRevision = "v1" },
		func(in *render.Input) { in.Source.Path = "charts/./web/" },
		func(in *render.Input) {
			in.Source.Helm.ValuesObject = map[string]any{"b": map[string]any{"d": 3, "c": 2}, "a": 1}
		},
	}
	for i, f := range same {
		in := base()
		f(&in)
		if got := render.CacheKey("tree", in); got != k {
			t.Errorf("same[%d]: key changed", i)
		}
	}
	different := []func(*render.Input){
		func(in *render.Input) { in.Namespace = "other" },
		func(in *render.Input) { in.AppName = "other" },
		func(in *render.Input) { in.Source.Path = "charts/api" },
		func(in *render.Input) { in.Source.Helm.Values = "x: 1" },
		func(in *render.Input) { in.Source.Helm.ValuesObject["a"] = 2 },
		func(in *render.Input) { in.Source.Helm = nil; in.Source.Kustomize = &app.Kustomize{} },
	}
	seen := map[string]int{k: -1}
	for i, f := range different {
		in := base()
		f(&in)
		got := render.CacheKey("tree", in)
		if j, dup := seen[got]; dup {
			t.Errorf("different[%d]: same key as %d", i, j)
		}
		seen[got] = i
	}
	if render.CacheKey("tree2", base()) == k {
		t.Error("tree id not in the key")
	}
	if diff := cmp.Diff(64, len(k)); diff != "" {
		t.Errorf("key length: %s", diff)
	}
}
