package engines

import (
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
)

// Limits of remote bases in one render.
const (
	// MaxRemoteBases bounds the distinct remote bases (repository and ref)
	// one render may use, nested ones included.
	MaxRemoteBases = 20
	// MaxRemoteDepth bounds how deep remote bases may nest (a remote base
	// of the app's repository is at depth 1).
	MaxRemoteDepth = 5
)

// remoteState is what one render (or discovery) knows of remote bases: the
// checkouts mounted, each as its own rootFS, beside the repository's. Each
// mount is read through its own os.Root: a path or link in it leads
// nowhere outside it, and kustomize's root-only load restriction holds per
// kustomization as in the repository. Kustomize sees each remote entry
// rewritten (in memory) to the relative path of its folder in its mount.
type remoteState struct {
	// lookup returns the checkout of a base (or why not).
	lookup func(render.RemoteBase) (string, error)
	// discover: only the remote bases are wanted (no Helm inflation).
	discover bool

	mounts []*rootFS // the repository's first
	byDir  map[string]*rootFS
	depth  map[*rootFS]int
	label  map[*rootFS]string  // how errors name a mount's files ("" for the repository's)
	bases  []render.RemoteBase // distinct, in the order met
	keys   map[string]bool
	stack  []string // absolute folders of the kustomizations being checked
	names  []string // the same, as errors name them
	// rewrites: mount → real kustomization file → entry → relative path.
	rewrites map[*rootFS]map[string]map[string]string
}

// withRemotes makes f (the repository's rootFS) mount remote bases found
// through lookup.
func (f *rootFS) withRemotes(lookup func(render.RemoteBase) (string, error), discover bool) *remoteState {
	rs := &remoteState{
		lookup: lookup, discover: discover,
		mounts: []*rootFS{f}, byDir: map[string]*rootFS{f.root.Path: f},
		depth: map[*rootFS]int{f: 0}, label: map[*rootFS]string{},
		keys: map[string]bool{}, rewrites: map[*rootFS]map[string]map[string]string{},
	}
	f.remote = rs
	return rs
}

// close closes the mounted checkouts (not the repository).
func (rs *remoteState) Close() {
	for _, m := range rs.mounts[1:] {
		m.root.Close()
	}
}

// at returns the mount holding the absolute path p (f itself for a
// relative path, or when no mount holds p: f then refuses it as outside).
func (f *rootFS) at(p string) *rootFS {
	if f.remote == nil || !filepath.IsAbs(p) {
		return f
	}
	c := filepath.Clean(p)
	for _, m := range f.remote.mounts {
		if c == m.root.Path || strings.HasPrefix(c, m.root.Path+string(filepath.Separator)) {
			return m
		}
	}
	return f
}

// mount resolves the remote base entry of the kustomization file (in dir
// of from), mounts its checkout, records the rewrite of the entry and
// checks the base's kustomizations. Errors name the file, the field and
// the entry (credentials redacted).
func (rs *remoteState) mount(from *rootFS, dir, file, field, entry string, seen map[string]bool) error {
	fail := func(err error) error {
		return fmt.Errorf("%s: %s: %q: %w", file, field, gitsource.Redact(strings.TrimSpace(entry)), err)
	}
	b, err := ParseRemoteBase(entry)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", render.ErrRemoteBase, err))
	}
	depth := rs.depth[from] + 1
	if depth > MaxRemoteDepth {
		return fail(fmt.Errorf("%w: remote bases nest more than %d deep", render.ErrRemoteBase, MaxRemoteDepth))
	}
	if !rs.keys[b.Key()] {
		if len(rs.keys) >= MaxRemoteBases {
			return fail(fmt.Errorf("%w: more than %d remote bases in one render", render.ErrRemoteBase, MaxRemoteBases))
		}
		rs.keys[b.Key()] = true
		rs.bases = append(rs.bases, b)
	}
	checkout, err := rs.lookup(b)
	if err != nil {
		return fail(err)
	}
	m, err := rs.mountDir(from, checkout, depth, b)
	if err != nil {
		return fail(err)
	}
	target, err := m.root.Dir(b.Path)
	if err != nil {
		return fail(fmt.Errorf("%w: %s: %w", render.ErrRemoteBase, b, err))
	}
	abs := m.root.Abs(target)
	if i := slices.Index(rs.stack, abs); i >= 0 {
		return fail(fmt.Errorf("%w: a loop: %s comes back to a kustomization it is built from (%s → %s)", render.ErrRemoteBase, b, strings.Join(rs.names[i:], " → "), rs.names[i]))
	}
	realFile, err := from.root.Resolve(file)
	if err != nil {
		return fail(err)
	}
	rel, err := filepath.Rel(from.root.Abs(dir), abs)
	if err != nil {
		return fail(err)
	}
	if rs.rewrites[from] == nil {
		rs.rewrites[from] = map[string]map[string]string{}
	}
	if rs.rewrites[from][realFile] == nil {
		rs.rewrites[from][realFile] = map[string]string{}
	}
	rs.rewrites[from][realFile][entry] = filepath.ToSlash(rel)
	if err := checkRemote(m, target, seen); err != nil {
		return fail(fmt.Errorf("in %s: %w", b, err))
	}
	return nil
}

// mountDir returns the mount of the checkout dir, opening it the first
// time.
func (rs *remoteState) mountDir(from *rootFS, dir string, depth int, b render.RemoteBase) (*rootFS, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: checkout of %s: %w", render.ErrRemoteBase, b, err)
	}
	if m, ok := rs.byDir[real]; ok {
		return m, nil
	}
	r, err := render.OpenRoot(real)
	if err != nil {
		return nil, fmt.Errorf("%w: checkout of %s: %w", render.ErrRemoteBase, b, err)
	}
	m := newRootFS(r)
	m.helm, m.remote = from.helm, rs
	rs.mounts = append(rs.mounts, m)
	rs.byDir[r.Path] = m
	rs.depth[m] = depth
	rs.label[m] = gitsource.Redact(b.RepoURL) + "@" + b.Ref + ": "
	return m, nil
}

// applyRewrites replaces, in memory, every remote entry of every
// kustomization by the relative path of its folder in its mount.
func (rs *remoteState) applyRewrites() error {
	for m, files := range rs.rewrites {
		for file, entries := range files {
			data, ok := m.overrides[file]
			if !ok {
				var err error
				if data, err = m.root.ReadFile(file); err != nil {
					return err
				}
			}
			var kz types.Kustomization
			if err := yaml.Unmarshal(data, &kz); err != nil {
				return fmt.Errorf("%s%s: %w", rs.label[m], file, err)
			}
			for _, list := range []*[]string{&kz.Resources, &kz.Bases, &kz.Components} { //nolint:staticcheck // bases: legacy, still read by kustomize
				for i, e := range *list {
					if rel, ok := entries[e]; ok {
						(*list)[i] = rel
					}
				}
			}
			out, err := yaml.Marshal(&kz)
			if err != nil {
				return fmt.Errorf("%s%s: %w", rs.label[m], file, err)
			}
			m.overrides[file] = out
		}
	}
	return nil
}

// checkoutLookup looks bases up in the checkouts the hub resolved.
func checkoutLookup(rb *render.RemoteBases) func(render.RemoteBase) (string, error) {
	return func(b render.RemoteBase) (string, error) {
		c, ok := rb.Checkouts[b.Key()]
		if !ok {
			return "", fmt.Errorf("%w: %s was not fetched by the hub", render.ErrRemoteBase, b)
		}
		return c.Dir, nil
	}
}
