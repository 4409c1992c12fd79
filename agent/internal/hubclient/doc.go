// Package hubclient keeps the agent's one outbound stream to the hub: it
// dials with the cluster's client certificate, says Hello with the digests
// the agent holds, hands desired state and commands to the engine, sends
// status when it changes, renews the certificate before it expires, and
// reconnects with jittered exponential backoff that never gives up and
// resets only after a session the hub welcomed stayed up for a while.
package hubclient
