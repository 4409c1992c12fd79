// Package render turns an application's effective source, in a checked-out
// repository, into Kubernetes objects. This package is the core: the cache
// (Renderer), the repository root every file is read through (Root), plain
// directories of YAML and JSON, and the render workers' protocol. Helm
// charts, kustomizations and Jsonnet files are rendered by Engines
// (package render/engines), which the render workers wire in (ServeWorker,
// in the flotilla-render binary); the hub links neither Helm nor Kustomize
// and passes WorkerEngines, which asks its workers for the kustomization
// checks too. A Renderer without engines renders plain YAML and JSON only.
//
// Nothing is read outside the repository root: every file is read through
// an os.Root of the checkout (Root), which the engines use too.
//
// Helm templates and Kustomize builds cannot be interrupted once started;
// with Options.Workers set (the hub always sets it), they run in worker
// processes of package renderproc, killed at their time, CPU and memory
// limits, without network and (with Landlock) reading nothing but the
// checkouts (worker.go; flotilla-render serves as a worker through
// ServeWorker). Plain directories render in-process and stop when ctx
// ends.
//
// A Renderer caches results by a caller-given key (see CacheKey): identical
// inputs render once, also when asked for concurrently, however many
// clusters receive them. Returned objects are shared between callers and
// must be treated as read-only.
package render
