// Package live keeps the live state of the objects the agent manages: one
// label-filtered dynamic informer per managed resource (started on first
// use, events only, no periodic relists), reads from that cache, and a
// change notification for waiters.
//
// Only objects carrying the agent's managed label are watched, so memory
// grows with what the agent manages, not with the cluster. A cache limited
// to namespaces (an agent whose RBAC covers only those) watches each
// resource per namespace and no cluster-scoped resource.
package live
