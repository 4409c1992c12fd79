// Package httpapi is the hub's HTTP surface for people and tools: the
// versioned JSON API under /api/v1 (bearer tokens, admin or read-only), git
// webhooks at /api/webhook, /healthz, /readyz, /metrics, server-sent events
// at /api/v1/events, and the web UI at / when one is given.
//
// Every list is paginated (?limit=1..1000, default 100; ?after=<next>) and
// answers {items, next}. Every call that changes something is written to
// the audit log; a read-only token gets 403 on such a call.
//
// What an app's status is and what an operation does (sync, refresh,
// diff, rollback, unpin) is decided by hub/internal/status; this package
// decodes requests, checks roles, maps status.Error kinds to HTTP codes,
// writes the audit log and encodes hub/api's wire types.
package httpapi
