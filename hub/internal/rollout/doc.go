// Package rollout is the decision core of progressive rollouts: given an
// app's rollout strategy (a Plan), its rollout State, its target clusters
// and what their agents report, it decides which clusters get the new
// revision now, when a step is done, and when the rollout halts. It does
// no I/O and reads no clock (the caller passes now); the hub's controller
// persists the State in the store and renders each cluster at the
// revision the State gives it. The Prometheus gate (gate.go) is the one
// piece that talks to the network, called by the controller, never by
// the core.
package rollout
