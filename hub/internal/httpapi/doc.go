// Package httpapi is the hub's HTTP surface for people and tools: the
// versioned JSON API under /api/v1 (bearer tokens, admin or read-only), git
// webhooks at /api/webhook, /healthz, /readyz, /metrics, server-sent events
// at /api/v1/events, and the web UI at / when one is given.
//
// Every list is paginated (?limit=1..1000, default 100; ?after=<next>) and
// answers {items, next}. Every call that changes something is written to
// the audit log; a read-only token gets 403 on such a call.
//
// Rollback (POST /api/v1/apps/{name}/rollback) pins an (app, cluster) to a
// revision through controller.Pin. The controller renders the pinned
// revision into a bundle whose sync policy has automated=false, so the
// agent neither applies it on receipt nor self-heals it; once an agent
// reports holding that bundle, the API sends it one SYNC command. Unpin
// restores the app's own policy and with it auto-sync. Pins live in the
// hub's memory. Diff sends a DIFF command and waits for the agent's
// CommandResult through Results, which the server wires to
// agentapi.Hooks.CommandResult.
package httpapi
