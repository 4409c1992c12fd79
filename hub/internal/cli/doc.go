// Package cli is the `flotilla` command: a client of the hub's HTTP API for
// clusters and applications. Output is a table by default, or JSON/YAML
// with -o. Exit codes: 0 success, 1 failure, 2 usage error, 3 `app wait`
// timed out.
package cli
