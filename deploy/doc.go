// Package deploy holds Flotilla's install manifests: kustomize bases for the
// hub (hub/, with the optional Ingress component hub/ingress; hub-ha/, three
// active replicas on the Kubernetes store with the store's CRDs from crds/) and the agent
// (agent/ with cluster-admin, agent/namespaced for named namespaces only),
// the Helm chart (helm/flotilla) and examples (examples/). docs/install.md
// walks through them.
//
// The package's tests check them: that every rendering
// is accepted by a real kube-apiserver (server-side dry-run), that the chart
// and the kustomize bases run the same containers, and that the install walk
// of docs/install.md works with the built binaries, the manifests' flags and
// the agent's RBAC. The images themselves are built and run by
// `make images` and the container tier (`make e2e-containers`, e2e/containers),
// which runs the agent from these manifests with in-cluster credentials.
package deploy
