// Package harness runs Flotilla as a user would, for the e2e suite, the
// quickstart and the benchmarks: the hub and agents as real processes of
// the built binaries, the CLI for every user action, real clusters from
// package cluster and git served over HTTP by package gitserver.
package harness
