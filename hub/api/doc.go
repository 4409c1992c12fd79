// Package api holds the JSON types of the hub's HTTP API (/api/v1): every
// request body it accepts and every answer it sends. It is the one
// definition the API (hub/internal/httpapi, which converts the hub's own
// types to these), the CLI, the e2e harness and the web UI's contract tests
// share, so a field renamed here is renamed for all of them.
//
// It imports only the standard library, so that a client such as the
// `flotilla` command links none of the hub (rule checked by e2e/archtest).
// The JSON field names are a contract: change them only with a new API
// version.
package api
