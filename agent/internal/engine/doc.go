// Package engine is the agent's GitOps loop: it holds the accepted bundle of
// every application, persists it (package inventory), applies it in waves
// with server-side apply (package apply), prunes what left the bundle,
// watches the managed objects (package live) to detect drift (package diff)
// and self-heal, computes health (package health), and reports a compact
// status per application.
//
// Each application has one worker goroutine; all cluster writes for an app
// happen on it, so syncs, self-heals and deletion of the same app never
// race. The engine needs no hub: after Load it enforces what was persisted.
package engine
