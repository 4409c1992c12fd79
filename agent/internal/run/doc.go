// Package run assembles the agent: its options, the cluster connection, the
// identity (enrolling on first start), the sync engine and the hub client.
package run
