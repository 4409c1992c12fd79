package e2e

import (
	"context"
	"net/http"
	"strings"
	"time"
)

var httpClient = &http.Client{Timeout: 10 * time.Second}

func newRequest(ctx context.Context, method, url, body string) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
}
