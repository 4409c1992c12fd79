// Package cluster starts real Kubernetes clusters for integration and e2e
// tests and owns their lifecycle.
//
// Three providers implement [Provider]:
//
//   - [ProcessProvider] runs a control plane as plain processes on 127.0.0.1
//     (etcd and kube-apiserver; with Full also kube-controller-manager,
//     kube-scheduler and the kwok node simulator with one fake Node), built
//     into a bin directory by e2e/tools/build.sh (`make bins`). It needs no
//     container engine and is the default.
//   - [ContainerProvider] runs etcd and kube-apiserver of the same bin
//     directory as containers on a Docker network of the cluster's own, so
//     that only containers on that network reach the API server (the
//     container tier, e2e/containers).
//   - [KindProvider] drives the kind CLI where Docker is available.
//
// [ProviderFromEnv] picks one from FLOTILLA_E2E_PROVIDER ("process", the
// default, or "kind"), and [Start] / [StartAll] create clusters whose Stop is
// registered with t.Cleanup. Each process cluster lives in its own temporary
// directory (certificates, kubeconfig, etcd data, one log file per
// component); Stop kills every process and removes that directory.
package cluster
