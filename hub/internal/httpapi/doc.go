// Package httpapi is the hub's HTTP surface for people and tools: the
// versioned JSON API under /api/v1 (bearer tokens, admin or read-only), git
// webhooks at /api/webhook, /healthz, /readyz and /metrics.
//
// Every call that changes something is written to the audit log.
package httpapi
