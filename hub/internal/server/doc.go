// Package server assembles the hub: state store, CA, git tracking,
// controller, the agent gRPC endpoint and the HTTP API, with their options.
// Run serves until its context ends and then shuts every part down in
// order.
package server
