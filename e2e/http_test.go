//go:build !unit

package e2e

import (
	"net/http"
	"time"
)

var httpClient = &http.Client{Timeout: 10 * time.Second}
