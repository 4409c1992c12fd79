// Package version holds the Flotilla release and protocol versions shared by
// the hub and the agent.
package version

// Version is the release version, set at build time with
// -ldflags "-X github.com/flotilla-cd/flotilla/shared/version.Version=v0.1.0".
var Version = "v0.1.0-dev"

// ProtocolVersion is the minor version of the agent protocol
// (shared/api/v1alpha1). A hub serves agents whose protocol version is within
// one of its own.
const ProtocolVersion uint32 = 1

// Capabilities are the optional protocol features this build understands.
var Capabilities = []string{"bundle-gzip", "renew", "commands", "drift-diff", CapSecretMask, CapClusterCapabilities, CapLiveView}

// CapSecretMask is sent by agents that mask every Secret value in the diffs
// they send (statuses and DIFF results). The hub withholds the Secret parts
// of diffs from agents without it.
const CapSecretMask = "secret-mask"

// CapClusterCapabilities is sent by agents that report their API server's
// version and served API versions (Hello.cluster_capabilities, and a
// ClusterCapabilities message when they change) and by hubs that accept
// those updates. An agent sends updates only to a hub listing it; a hub
// renders Helm charts for a cluster only once its agent reported them.
const CapClusterCapabilities = "cluster-capabilities"

// CapLiveView is sent by agents that answer LiveRequests (resource tree,
// manifests, events, pod logs, actions; see docs/protocol.md). A hub sends
// LiveRequests only to agents listing it and tells a person asking about
// another agent that it does not support live view.
const CapLiveView = "live-view"
