// Package webui is the hub's web UI: plain HTML, CSS and JavaScript
// embedded in the binary, with no build step and no external resource, so
// it works offline. It reads the JSON API under /api/v1 with a bearer
// token kept in the browser's localStorage and follows /api/v1/events
// (server-sent events) to update without a reload.
//
// Views: the fleet (apps × clusters matrix of sync and health), clusters
// (connection, last seen, agent version, labels) and one app (per-cluster
// objects with health and drift diff, history, Sync, Rollback and Unpin).
package webui
