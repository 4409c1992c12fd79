// Package identity owns the agent's cluster identity: the private key it
// makes itself, the client certificate the hub signs, and the hub CA. It
// enrols with a one-time join token, pinning the hub CA by hash on first
// contact, and keeps the identity in a Secret of the agent's namespace (or a
// local folder when the agent runs outside a cluster). The private key never
// leaves the cluster.
package identity
