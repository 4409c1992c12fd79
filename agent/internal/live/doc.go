// Package live keeps the live state of the objects the agent manages: one
// label-filtered dynamic informer per managed resource (started on first
// use, events only, no periodic relists), reads from that cache, and a
// change notification for waiters.
//
// Only objects carrying the agent's managed label are watched, so memory
// grows with what the agent manages, not with the cluster.
package live
