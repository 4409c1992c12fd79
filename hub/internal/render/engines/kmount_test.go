//go:build !unit

package engines

import (
	"errors"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
	"github.com/flotilla-cd/flotilla/hub/internal/renderproc"
	"github.com/flotilla-cd/flotilla/internal/testsupport/gitserver"
)

const remoteSecret = "TOPSECRET-beside-the-checkouts"

// remoteFixture is a repository and remote checkouts written on disk,
// under one folder that also holds a secret beside them.
type remoteFixture struct {
	base, repo string
	checkouts  map[string]render.RemoteCheckout
}

// res is a kustomization listing entries as resources.
func res(entries ...string) string {
	s := "resources:\n"
	for _, e := range entries {
		s += fmt.Sprintf("- %q\n", e)
	}
	return s
}

func cmYAML(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  from: " + name + "\n"
}

// newRemoteFixture writes the repository (files under repo/) and one
// checkout per key of checkouts (its files, under co/<n>/), the key being
// the remote base's URL as a kustomization names it.
func newRemoteFixture(t *testing.T, repo map[string]string, checkouts map[string]map[string]string) *remoteFixture {
	t.Helper()
	base := t.TempDir()
	f := &remoteFixture{base: base, repo: filepath.Join(base, "repo"), checkouts: map[string]render.RemoteCheckout{}}
	if err := os.WriteFile(filepath.Join(base, "secret.yaml"), []byte(cmYAML(remoteSecret)), 0o600); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, f.repo, repo)
	n := 0
	for entry, files := range checkouts {
		b, err := ParseRemoteBase(entry)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(base, "co", fmt.Sprint(n))
		n++
		writeFiles(t, dir, files)
		f.checkouts[b.Key()] = render.RemoteCheckout{Dir: dir, Commit: fmt.Sprintf("%040d", n)}
	}
	return f
}

func (f *remoteFixture) input(p string) render.Input {
	return render.Input{Root: f.repo, Source: app.Source{Path: p}, AppName: "a", Namespace: "ns", RemoteBases: &render.RemoteBases{Checkouts: f.checkouts}}
}

func names(objs []*unstructured.Unstructured) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, o := range objs {
		d, _, _ := unstructured.NestedMap(o.Object, "data")
		out[o.GetName()] = d
	}
	return out
}

const (
	baseA = "https://git.example.com/org/a//base?ref=v1"
	baseB = "git@git.example.com:org/b.git//x?ref=main"
)

// TestKustomizeRemoteBases renders an overlay built from a remote base
// (pinned by tag) that has a local base of its own checkout and a nested
// remote base of a second repository over ssh: the overlay's prefix and
// patch apply to the remote objects, as kustomize builds them.
func TestKustomizeRemoteBases(t *testing.T) {
	f := newRemoteFixture(t, map[string]string{
		"app/kustomization.yaml": "namePrefix: prod-\nresources:\n- " + baseA + "\n- cm.yaml\npatches:\n- path: patch.yaml\n",
		"app/cm.yaml":            cmYAML("local"),
		"app/patch.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-a\ndata:\n  patched: \"yes\"\n",
	}, map[string]map[string]string{
		baseA: {
			"base/kustomization.yaml":   res("cm.yaml", "../common", baseB),
			"base/cm.yaml":              cmYAML("from-a"),
			"common/kustomization.yaml": "resources: [cm.yaml]\n",
			"common/cm.yaml":            cmYAML("a-common"),
		},
		baseB: {"x/kustomization.yaml": "resources: [cm.yaml]\n", "x/cm.yaml": cmYAML("from-b")},
	})
	in := f.input("app")
	objs, err := newRenderer(render.Options{}).Render(t.Context(), render.CacheKey("tree", in), in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]any{
		"prod-from-a":   {"from": "from-a", "patched": "yes"},
		"prod-a-common": {"from": "a-common"},
		"prod-from-b":   {"from": "from-b"},
		"prod-local":    {"from": "local"},
	}
	if diff := cmp.Diff(want, names(objs)); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}

	bases, err := KustomizeRemoteBases(f.repo, app.Source{Path: "app"}, checkoutLookup(in.RemoteBases))
	if err != nil {
		t.Fatal(err)
	}
	wantBases := []render.RemoteBase{
		{RepoURL: "https://git.example.com/org/a", Path: "base", Ref: "v1"},
		{RepoURL: "git@git.example.com:org/b.git", Path: "x", Ref: "main"},
	}
	if diff := cmp.Diff(wantBases, bases); diff != "" {
		t.Errorf("KustomizeRemoteBases (-want +got):\n%s", diff)
	}

	// A new commit of a remote base is a new render.
	moved := f.input("app")
	moved.RemoteBases = &render.RemoteBases{Checkouts: map[string]render.RemoteCheckout{}}
	for k, c := range f.checkouts {
		c.Commit = strings.Repeat("f", 40)
		moved.RemoteBases.Checkouts[k] = c
	}
	if render.CacheKey("tree", in) == render.CacheKey("tree", moved) {
		t.Error("the cache key does not change with the remote bases' commits")
	}

	// The application's kustomize settings may add a remote component.
	comp := "https://git.example.com/org/a//comp?ref=v1"
	f2 := newRemoteFixture(t, map[string]string{"app/kustomization.yaml": "resources: [cm.yaml]\n", "app/cm.yaml": cmYAML("local")},
		map[string]map[string]string{comp: {
			"comp/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [cm.yaml]\n",
			"comp/cm.yaml":            cmYAML("component"),
		}})
	in2 := f2.input("app")
	in2.Source.Kustomize = &app.Kustomize{Components: []string{comp}}
	objs, err = newRenderer(render.Options{}).Render(t.Context(), render.CacheKey("tree", in2), in2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]map[string]any{"component": {"from": "component"}, "local": {"from": "local"}}, names(objs)); diff != "" {
		t.Errorf("remote component (-want +got):\n%s", diff)
	}
}

// TestKustomizeRemoteBaseAttacks replays, each against the renderer, the
// ways a kustomization writer may try to use remote bases to read what it
// must not: every one is refused with an error naming the kustomization
// file, the entry and the reason, and no output or error shows the secret
// kept beside the checkouts.
func TestKustomizeRemoteBaseAttacks(t *testing.T) {
	const esc = "https://git.example.com/org/esc//base?ref=v1"
	const link = "https://git.example.com/org/link//base?ref=v1"
	const patchEsc = "https://git.example.com/org/patch//base?ref=v1"
	const loopA = "https://git.example.com/org/la.git?ref=main"
	const loopB = "https://git.example.com/org/lb.git?ref=main"
	checkouts := map[string]map[string]string{
		esc:      {"base/kustomization.yaml": "resources: [../../../secret.yaml]\n"},
		patchEsc: {"base/kustomization.yaml": "resources: [cm.yaml]\npatches: [{path: ../../../secret.yaml}]\n", "base/cm.yaml": cmYAML("p")},
		link:     {"base/kustomization.yaml": "resources: [s.yaml]\n"},
		loopA:    {"kustomization.yaml": res(loopB)},
		loopB:    {"kustomization.yaml": res(loopA)},
	}
	// Depth: d1 → d2 → … → d7, each a repository of its own.
	for i := 1; i <= MaxRemoteDepth+2; i++ {
		checkouts[fmt.Sprintf("https://git.example.com/org/d%d.git", i)] = map[string]string{
			"kustomization.yaml": res(fmt.Sprintf("https://git.example.com/org/d%d.git", i+1)),
		}
	}
	var many []string
	for i := 0; i <= MaxRemoteBases; i++ {
		many = append(many, fmt.Sprintf("https://git.example.com/org/many//x?ref=r%d", i))
	}
	repo := map[string]string{
		"esc/kustomization.yaml":       res(esc),
		"patch/kustomization.yaml":     res(patchEsc),
		"link/kustomization.yaml":      res(link),
		"creds/kustomization.yaml":     res("https://flotilla:s3cr3t-token@git.example.com/org/a//base?ref=v1"),
		"file/kustomization.yaml":      res("file:///etc/kubernetes//x"),
		"local/kustomization.yaml":     res("git::/srv/repos/a"),
		"loop/kustomization.yaml":      res(loopA),
		"deep/kustomization.yaml":      res("https://git.example.com/org/d1.git"),
		"many/kustomization.yaml":      res(many...),
		"unfetched/kustomization.yaml": res("https://git.example.com/org/other//x?ref=v9"),
		"rawfile/kustomization.yaml":   res("https://raw.example.com/org/repo/main/deploy.yaml"),
		"patchurl/kustomization.yaml":  res("cm.yaml") + "patches:\n- path: \"https://git.example.com/org/a//base/p.yaml\"\n",
		"patchurl/cm.yaml":             cmYAML("c"),
	}
	f := newRemoteFixture(t, repo, checkouts)
	// The link checkout's s.yaml climbs out of it to the secret.
	b, _ := ParseRemoteBase(link)
	if err := os.Symlink("../../../secret.yaml", filepath.Join(f.checkouts[b.Key()].Dir, "base", "s.yaml")); err != nil {
		t.Fatal(err)
	}
	for i := range many { // every ref of "many" is the same folder
		b, _ := ParseRemoteBase(many[i])
		f.checkouts[b.Key()] = render.RemoteCheckout{Dir: filepath.Join(f.base, "many"), Commit: strings.Repeat("a", 40)}
	}
	writeFiles(t, filepath.Join(f.base, "many"), map[string]string{"x/kustomization.yaml": "resources: [cm.yaml]\n", "x/cm.yaml": cmYAML("m")})

	for _, tc := range []struct {
		path, entry, why string
		is               error
	}{
		{"esc", esc, "outside the repository", render.ErrOutsideRoot},
		{"patch", patchEsc, "outside the repository", render.ErrOutsideRoot},
		{"link", link, "outside the repository", render.ErrOutsideRoot},
		{"creds", "https://redacted@git.example.com/org/a//base?ref=v1", "credentials in the URL are refused", render.ErrRemoteBase},
		{"file", "file:///etc/kubernetes//x", "file:// URLs and local paths are not fetched", render.ErrRemoteBase},
		{"local", "git::/srv/repos/a", "local paths are not fetched", render.ErrRemoteBase},
		{"loop", loopA, "a loop", render.ErrRemoteBase},
		{"deep", "https://git.example.com/org/d1.git", fmt.Sprintf("nest more than %d deep", MaxRemoteDepth), render.ErrRemoteBase},
		{"many", many[MaxRemoteBases], fmt.Sprintf("more than %d remote bases", MaxRemoteBases), render.ErrRemoteBase},
		{"unfetched", "https://git.example.com/org/other//x?ref=v9", "was not fetched by the hub", render.ErrRemoteBase},
		{"rawfile", "https://raw.example.com/org/repo/main/deploy.yaml", "not a git repository", render.ErrRemoteBase},
		{"patchurl", "https://git.example.com/org/a//base/p.yaml", "remote loading is disabled", render.ErrRemoteDisabled},
	} {
		t.Run(tc.path, func(t *testing.T) {
			in := f.input(tc.path)
			objs, err := newRenderer(render.Options{}).Render(t.Context(), render.CacheKey("tree", in), in)
			t.Log(err)
			if !errors.Is(err, tc.is) {
				t.Fatalf("render: %v, want %v", err, tc.is)
			}
			field := "resources"
			if tc.path == "patchurl" {
				field = "patches[0].path"
			}
			for _, want := range []string{tc.path + "/kustomization.yaml: " + field + ": " + fmt.Sprintf("%q", tc.entry), tc.why} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q", want)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), remoteSecret) || len(objs) != 0 {
				t.Errorf("the error or the output shows a secret")
			}
		})
	}
}

// TestKustomizeRemoteBasesOff: with remote bases off (no render.RemoteBases), an
// entry naming a git repository is an error naming the file, the entry
// and the hub option.
func TestKustomizeRemoteBasesOff(t *testing.T) {
	f := newRemoteFixture(t, map[string]string{"app/kustomization.yaml": res(baseA)}, nil)
	in := f.input("app")
	in.RemoteBases = nil
	_, err := newRenderer(render.Options{}).Render(t.Context(), render.CacheKey("tree", in), in)
	if !errors.Is(err, render.ErrRemoteDisabled) {
		t.Fatalf("render: %v, want render.ErrRemoteDisabled", err)
	}
	for _, want := range []string{"app/kustomization.yaml: resources: " + fmt.Sprintf("%q", baseA), "--kustomize-remote-bases"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestRemoteBasesInWorkers renders a remote base in Landlock-confined
// render workers: allowed to read the repository and the checkouts, they
// build it as in-process; allowed the repository only, the checkout is
// out of their reach.
func TestRemoteBasesInWorkers(t *testing.T) {
	f := newRemoteFixture(t, map[string]string{"app/kustomization.yaml": res(baseA)},
		map[string]map[string]string{baseA: {"base/kustomization.yaml": "resources: [cm.yaml]\n", "base/cm.yaml": cmYAML("from-a")}})
	in := f.input("app")
	pool := testWorkers(t, f.repo, func(o *renderproc.Options) { o.ReadDirs = []string{f.repo, filepath.Join(f.base, "co")} })
	objs, err := newRenderer(render.Options{Workers: pool}).Render(t.Context(), render.CacheKey("tree", in), in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]map[string]any{"from-a": {"from": "from-a"}}, names(objs)); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}

	narrow := testWorkers(t, f.repo, nil)
	c, err := narrow.Probe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c.Landlock == 0 {
		t.Skip("no Landlock here: the confinement half cannot be shown")
	}
	_, err = newRenderer(render.Options{Workers: narrow}).Render(t.Context(), render.CacheKey("tree", in), in)
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("render with the checkouts out of reach: %v, want permission denied", err)
	}
}

// TestRemoteBaseLinkLeftOut checks a remote base out of a real git
// repository served over HTTP through gitsource: the repository's link
// that climbs out of it is left out of the checkout, and the render of an
// overlay built from that base fails naming the link.
func TestRemoteBaseLinkLeftOut(t *testing.T) {
	dir := t.TempDir()
	_, repo := gitserver.StartT(t, dir, "remote")
	writeFiles(t, repo.Work, map[string]string{"base/kustomization.yaml": "resources: [cm.yaml, s.yaml]\n", "base/cm.yaml": cmYAML("ok")})
	if err := os.Symlink("../../../../../secret.yaml", filepath.Join(repo.Work, "base", "s.yaml")); err != nil {
		t.Fatal(err)
	}
	commit, err := repo.CommitAndPush("base with a link out")
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.TagAndPush("v1"); err != nil {
		t.Fatal(err)
	}
	m := gitsource.New(gitsource.Options{Dir: filepath.Join(dir, "state"), PollInterval: time.Hour, AllowInsecureHTTP: true}, hclog.NewNullLogger())
	if err := m.Track(t.Context(), repo.URL); err != nil {
		t.Fatal(err)
	}
	got, err := m.Resolve(repo.URL, "v1")
	if err != nil || got != commit {
		t.Fatalf("resolve v1: %s, %v; want %s", got, err, commit)
	}
	co, err := m.Checkout(repo.URL, commit)
	if err != nil {
		t.Fatal(err)
	}
	entry := repo.URL + "//base?ref=v1"
	f := newRemoteFixture(t, map[string]string{"app/kustomization.yaml": res(entry)}, nil)
	b, err := ParseRemoteBase(entry)
	if err != nil {
		t.Fatal(err)
	}
	f.checkouts[b.Key()] = render.RemoteCheckout{Dir: co, Commit: commit}
	in := f.input("app")
	_, err = newRenderer(render.Options{}).Render(t.Context(), render.CacheKey("tree", in), in)
	t.Log(err)
	if !errors.Is(err, render.ErrLeftOut) || !strings.Contains(err.Error(), "base/s.yaml") || !strings.Contains(err.Error(), "app/kustomization.yaml: resources: ") {
		t.Errorf("render: %v, want render.ErrLeftOut naming the kustomization and base/s.yaml", err)
	}
}
