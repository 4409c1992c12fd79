// Package engines renders what is not plain YAML for package render: Kustomize
// (sigs.k8s.io/kustomize/api), Helm charts kept in the repository or
// fetched by the hub (helm.sh/helm/v3, template only) and Jsonnet
// (github.com/google/go-jsonnet). Every file is read through the
// checkout's render.Root: Helm gets a list of files (never a folder to
// walk), Kustomize a file system over the same root. Nothing is fetched
// from the network and no program is executed: a kustomization that names
// a URL or a git repository anywhere kustomize would fetch or clone it is
// refused before kustomize runs (render.ErrRemoteDisabled), unless the hub
// fetched it as a remote base.
//
// New returns the engines for render.Options.Engines and
// render.ServeWorker; the hub and its render workers wire them.
package engines
