// Package liveview is the hub's side of live view: it sends LiveRequests to
// connected agents over their own streams (the hub never dials a cluster),
// correlates the LiveResponse frames by request id, and enforces the hub's
// limits: a deadline per request, caps on concurrent requests and log
// streams per agent and for the whole hub, a log rate in bytes per second
// for the whole hub, and a credit window per log stream, so that a frame
// from an agent is always taken at once and the stream's reader never
// waits for a slow person at the other end of a log.
//
// Who may ask for what is decided before a request reaches the Broker
// (httpapi's authorization); the agent decides which objects an app owns.
package liveview
