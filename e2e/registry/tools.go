//go:build tools

// Package registry pins the OCI registry the tests build (see
// hub/testsupport/chartrepo).
package registry

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
)
