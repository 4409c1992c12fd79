// Package capabilities reports what the cluster's API server serves — its
// version and every served group/version and kind, as discovery lists
// them — for the hub, which renders Helm charts for this cluster with them
// (.Capabilities). It owns the watch that notices a change (a CRD or an
// aggregated API installed or removed, an upgrade) and re-reads discovery,
// debounced.
package capabilities
