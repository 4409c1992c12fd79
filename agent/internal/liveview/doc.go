// Package liveview answers the hub's live-view requests (protocol
// capability "live-view"): an app's resource tree with health, an object's
// live manifest with Secret values redacted here, before anything leaves the
// cluster, Kubernetes events, pod logs, and actions (restart a rollout,
// delete a Pod, run a Job from a CronJob).
//
// Every request is checked against the app's inventory as the agent keeps
// it (engine.Owned), never against what the hub's request claims: an object
// is served only when the inventory names it or one of the inventory's
// objects owns it through ownerReferences, and an action runs only on an
// object of the inventory (a Pod: one the inventory's objects own).
//
// Limits: a deadline per request (the hub's timeout_ms, capped), a cap on
// concurrent requests and on concurrent log streams, a log rate in bytes
// per second for the whole agent, and per log stream the hub's credit
// window: a log frame is sent only within credit the hub granted, each
// frame costing at least MinFrameCost bytes, so the hub never buffers more
// than its window per stream.
package liveview
