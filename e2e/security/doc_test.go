//go:build !unit

// Package security replays attacks on Flotilla with the real components: the
// hub and agents as processes of the built binaries, real git repositories
// served over git's own HTTP protocol, real gRPC and HTTP clients written by
// hand the way an attacker would write them, and real API servers.
//
// One file per finding of the security review (docs/security.md lists them);
// each test fails on a hub without the fix. Tests start their own hubs so
// that an attack never leaves state behind for another test.
package security
