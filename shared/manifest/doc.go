// Package manifest holds the manifest helpers that the hub and the agent
// share: parsing rendered YAML and JSON into objects, object identity and the
// tracking annotation, and the canonical encoding and digest of bundles.
//
// Everything here is a pure function of its inputs.
package manifest
