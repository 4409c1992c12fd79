// Package render turns an application's effective source, in a checked-out
// repository, into Kubernetes objects: plain directories of YAML and JSON,
// Kustomize (sigs.k8s.io/kustomize/api) and Helm charts kept in the
// repository (helm.sh/helm/v3, template only). Nothing is read outside the
// repository root: every file is read through an os.Root of the checkout,
// Helm gets a list of files (never a folder to walk), and Kustomize a file
// system over the same root. Nothing is fetched from the network and no
// program is executed: a kustomization that names a URL or a git
// repository anywhere kustomize would fetch or clone it is refused before
// kustomize runs (ErrRemoteDisabled).
//
// Helm templates and Kustomize builds cannot be interrupted once started;
// with Options.Workers set (the hub always sets it unless
// --render-in-process), they run in worker processes of package
// renderproc, killed at their time, CPU and memory limits, without network
// and (with Landlock) reading nothing but the checkouts (worker.go; the
// hub binary serves as a worker through ServeWorker). Plain directories
// render in-process and stop when ctx ends.
//
// A Renderer caches results by a caller-given key (see CacheKey): identical
// inputs render once, also when asked for concurrently, however many
// clusters receive them. Returned objects are shared between callers and
// must be treated as read-only.
package render
