// Package apitest builds a real hub HTTP API for tests of the API, the CLI
// and the web UI: a bbolt store in a temp dir, a local git repository with
// two commits, a real controller and renderer over it, the fleet, and the
// httpapi handler behind an httptest server.
//
// No agent process runs in these tests. SimAgent stands in for one at the
// fleet boundary: it attaches a session as agentapi does for a stream,
// receives the bundles the fleet sends, and reports statuses, command
// results and history as the agent and the hub's status hook would. What
// is under test is everything above the fleet.
package apitest
