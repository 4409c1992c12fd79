package chartsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/flotilla-cd/flotilla/hub/internal/chartsource/chartproc"
)

// errNeedAuth ends a request at a credential lookup the hub has not
// answered yet (the worker asks for it: chartproc.Answer.NeedAuth).
var errNeedAuth = errors.New("credentials not sent by the hub yet")

// Serve answers one chartproc.Request in a chart worker: a Manager with
// the request's configuration and the credentials the hub sent resolves
// or fetches the chart. A credential lookup the hub has not answered ends
// the request with the URLs to ask for.
func Serve(ctx context.Context, req []byte) ([]byte, error) {
	var r chartproc.Request
	if err := json.Unmarshal(req, &r); err != nil {
		return nil, fmt.Errorf("decode chart worker request: %w", err)
	}
	creds := make(map[string]chartproc.Cred, len(r.Creds))
	for _, c := range r.Creds {
		creds[c.URL] = c
	}
	var need []string
	auth := func(url string) (string, string, bool, error) {
		c, ok := creds[url]
		switch {
		case !ok:
			need = append(need, url)
			creds[url] = chartproc.Cred{URL: url, Error: errNeedAuth.Error()} // asked once
			return "", "", false, errNeedAuth
		case c.Error != "":
			return "", "", false, errors.New(c.Error)
		}
		return c.User, c.Pass, c.OK, nil
	}
	m, err := New(Options{
		Dir: r.Config.Dir, Timeout: r.Config.Timeout, MaxBytes: r.Config.MaxBytes,
		Auth: auth, CABundle: r.Config.CABundle, AllowInsecureHTTP: r.Config.AllowInsecureHTTP,
	})
	if err != nil {
		return nil, err
	}
	var ans chartproc.Answer
	switch r.Op {
	case chartproc.OpResolve:
		ans.Ref, err = m.Resolve(ctx, r.RepoURL, r.Chart, r.Constraint)
	case chartproc.OpFetch:
		ans.Dir, err = m.Fetch(ctx, r.RepoURL, r.Chart, r.Ref)
	default:
		return nil, fmt.Errorf("chart worker request: unknown op %q", r.Op)
	}
	if len(need) > 0 {
		return json.Marshal(chartproc.Answer{NeedAuth: need})
	}
	if err != nil {
		ans = chartproc.Answer{Error: err.Error(), NoVersion: errors.Is(err, ErrNoVersion)}
	}
	return json.Marshal(ans)
}
