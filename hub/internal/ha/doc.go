// Package ha runs a hub as one of several replicas sharing the Kubernetes
// store (--store=kubernetes), all active: every replica serves agents, the
// API, the UI and webhooks.
//
// A Replica watches the store (informers, no polling) and hands what the
// other replicas wrote to this one: clusters added, relabelled, removed or
// re-enrolled (a reconcile; a stream held here whose certificate is no
// longer accepted is closed), agents' statuses (into the fleet, so that
// the API and the event stream of every replica show every agent's
// status), rollback pins, and repositories a webhook or refresh made
// another replica poll (polled here too). Work that must run once runs
// under a coordination.k8s.io Lease (client-go's leaderelection): store
// compaction. A replica that cannot reach the API server for
// Options.StoreTimeout fails /readyz and refuses new agent streams; once
// its heartbeat Lease expired it closes the streams it holds (spread over
// a heartbeat interval), so the agents go to another replica.
package ha
