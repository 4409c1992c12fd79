//go:build !unit

// Package conformance checks that Flotilla syncs what real repos written
// for Argo CD hold the way Argo CD's documentation says it does: waves,
// hooks and phases, health per kind, field ownership, drift, sync options,
// definitions and app-of-apps. Each case is written from the documented
// behaviour, runs against a real cluster through a real hub and agent, and
// asserts the order and timing relations a user would observe (which
// object existed before which, what the cluster holds afterwards), not
// only that the app reports Synced.
//
// docs/argocd-sync-parity.md lists every behaviour with Flotilla's status
// and the case that shows it.
package conformance
