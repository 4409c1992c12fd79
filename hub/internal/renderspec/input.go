package renderspec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"slices"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// Input is what one render reads.
type Input struct {
	// Root is the repository checkout; nothing outside it is read.
	Root string
	// Source is the effective source (see target.Effective).
	Source app.Source
	// Namespace is the destination namespace (Helm's release namespace).
	Namespace string
	// AppName is the default Helm release name.
	AppName string
	// Capabilities are the target cluster's, for Helm charts; nil renders
	// with Helm's client-only defaults (Kubernetes v1.20). Other kinds of
	// source ignore them: leave them nil there, so that the render is
	// shared by every cluster.
	Capabilities *Capabilities `json:"capabilities,omitempty"`
	// Refs are the checkouts of a multi-source app's ref sources, by ref
	// name: Helm value files "$<ref>/<path>" are read from them (inside
	// them only). The cache key must account for their content (see
	// CacheKey's treeID).
	Refs map[string]string `json:"refs,omitempty"`
	// KustomizeHelm turns on kustomizations' helmCharts (nil: an error
	// naming the kustomization); they render with Capabilities.
	KustomizeHelm *KustomizeHelm `json:"kustomizeHelm,omitempty"`
	// RemoteBases turns on kustomizations' remote bases, read from the
	// checkouts it names (nil: an error naming the kustomization, the
	// entry and the hub option). The cache key accounts for their commits.
	RemoteBases *RemoteBases `json:"remoteBases,omitempty"`
}

// KustomizeHelm turns on a kustomization's helmCharts (kustomize's Helm
// chart inflation, Argo CD's --enable-helm). The charts are inflated with
// the hub's own Helm code (as a Helm source renders, with the cluster's
// capabilities), never with a helm program, and their objects go through
// the kustomization's transformers and patches as kustomize's generator
// output does.
type KustomizeHelm struct {
	// Charts are the folders of the charts the hub fetched for helmCharts
	// entries that name a repository and are not found in their
	// chartHome, by KustomizeChart.Key.
	Charts map[string]string `json:"charts,omitempty"`
}

// KustomizeChart is the chart of a helmCharts entry that is pulled from a
// repository (kustomize: `helm pull`).
type KustomizeChart struct {
	Repo, Name, Version string
}

// Key identifies the chart in KustomizeHelm.Charts.
func (c KustomizeChart) Key() string { return c.Repo + "\x00" + c.Name + "\x00" + c.Version }

// RemoteBases turns on kustomizations' remote bases: resources, bases and
// components entries that name a folder of a git repository (see
// RemoteBase). The hub fetches them through its own mirrors; kustomize
// never clones.
type RemoteBases struct {
	// Checkouts are the checkouts of the remote bases, by RemoteBase.Key.
	Checkouts map[string]RemoteCheckout `json:"checkouts,omitempty"`
}

// RemoteCheckout is one remote base's repository checked out.
type RemoteCheckout struct {
	// Dir is the checkout (gitsource.Manager.Checkout).
	Dir string `json:"dir"`
	// Commit is the commit it holds (it keys the render).
	Commit string `json:"commit"`
}

// ErrRemoteBase is wrapped by errors about a remote base the hub refuses
// (a URL it does not fetch, a loop, too many or too deep) or could not
// fetch.
var ErrRemoteBase = errors.New("remote base refused")

// RemoteBase is a kustomization entry (resources, bases or components)
// that names a folder of a git repository, as kustomize writes them:
//
//	https://host/org/repo//path?ref=v1.2.0   (also ?version=; "//" ends the repository)
//	https://host/org/repo.git/path           (".git" ends the repository)
//	git::https://host/org/repo//path
//	ssh://git@host/org/repo.git//path        git@host:org/repo.git//path
//	github.com/org/repo/path?ref=main        (the repository is org/repo)
//
// Without a marker ("//", ".git", Azure's "_git/") the repository is the
// first two path segments, as kustomize reads it.
type RemoteBase struct {
	// RepoURL is the repository the hub fetches (through its mirrors,
	// credential templates and limits).
	RepoURL string `json:"repoURL"`
	// Path is the folder in the repository ("." for its root).
	Path string `json:"path"`
	// Ref is the branch, tag or commit; "HEAD" (the default branch) when
	// the entry names none.
	Ref string `json:"ref"`
}

// Key identifies the checkout of b (its repository and ref) in
// RemoteBases.Checkouts.
func (b RemoteBase) Key() string { return b.RepoURL + "\x00" + b.Ref }

// String is the base as a person reads it.
func (b RemoteBase) String() string {
	return b.RepoURL + "//" + b.Path + "?ref=" + b.Ref
}

// CacheKey returns the cache key for rendering in from the repository tree
// treeID (a commit or tree hash that identifies everything the render may
// read: pass the root tree unless the source is known to read only its own
// path). It hashes the canonical JSON of the parameters that change the
// output: the cleaned path, the directory, Helm and Kustomize settings, the
// namespace, the application name and the digest of the capabilities
// (when set). Root, repoURL and targetRevision are left out: the same tree
// renders the same wherever it is checked out.
func CacheKey(treeID string, in Input) string {
	p := struct {
		Path      string         `json:"path"`
		Directory *app.Directory `json:"directory,omitempty"`
		Helm      *app.Helm      `json:"helm,omitempty"`
		Kustomize *app.Kustomize `json:"kustomize,omitempty"`
		Namespace string         `json:"namespace"`
		AppName   string         `json:"appName"`
	}{path.Clean("/" + in.Source.Path), in.Source.Directory, in.Source.Helm, in.Source.Kustomize, in.Namespace, in.AppName}
	js, err := json.Marshal(p) // map keys come sorted
	if err != nil {
		// Only a value that JSON cannot encode (never produced by
		// decoding definitions) gets here; such inputs never share.
		js = fmt.Appendf(nil, "%p", &p)
	}
	h := sha256.New()
	fmt.Fprintf(h, "flotilla.render.v1\x00%s\x00", treeID)
	h.Write(js)
	if in.Capabilities != nil {
		fmt.Fprintf(h, "\x00capabilities\x00%s", in.Capabilities.Digest())
	}
	if in.KustomizeHelm != nil {
		// The fetched charts' folders are named by their archives' digests.
		keys := slices.Sorted(maps.Keys(in.KustomizeHelm.Charts))
		fmt.Fprintf(h, "\x00kustomizeHelm")
		for _, k := range keys {
			fmt.Fprintf(h, "\x00%s\x00%s", k, filepath.Base(filepath.Dir(in.KustomizeHelm.Charts[k])))
		}
	}
	if in.RemoteBases != nil {
		fmt.Fprintf(h, "\x00remoteBases")
		for _, k := range slices.Sorted(maps.Keys(in.RemoteBases.Checkouts)) {
			fmt.Fprintf(h, "\x00%s\x00%s", k, in.RemoteBases.Checkouts[k].Commit)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
