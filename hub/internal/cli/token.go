package cli

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
)

func tokenCmd(ctx context.Context, c *client, args []string, f flags, e env) error {
	if err := need(args, 1, "token subcommand (create, list, delete)"); err != nil {
		return err
	}
	w := e.stdout
	switch args[0] {
	case "create":
		if err := need(args, 2, "token name"); err != nil {
			return err
		}
		var tr api.CreateTokenResponse
		if err := c.do(ctx, "POST", "/api/v1/tokens", api.CreateTokenRequest{Name: args[1], Role: f.role, Projects: f.projects, TTL: f.ttl}, &tr); err != nil {
			return err
		}
		return printOut(w, f.out, tr, func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "Token %s (%s, id %s, expires %s) created. It is shown once:\n\n  %s\n", tr.Name, roleOf(tr.TokenView), tr.ID, expiry(tr.ExpiresAt), tr.Token)
		})
	case "list":
		var lr api.ListResponse[api.TokenView]
		if err := listAll(ctx, c, "/api/v1/tokens", &lr); err != nil {
			return err
		}
		return printOut(w, f.out, lr.Items, func(tw *tabwriter.Writer) {
			items := slices.Clone(lr.Items)
			slices.SortFunc(items, func(a, b api.TokenView) int { return strings.Compare(a.Name, b.Name) })
			row(tw, "ID", "NAME", "KIND", "ROLE", "CREATED", "EXPIRES")
			for _, t := range items {
				row(tw, t.ID, t.Name, kindOf(t.Kind), roleOf(t), t.CreatedAt.UTC().Format(time.RFC3339), expiry(t.ExpiresAt))
			}
		})
	case "delete", "rm", "remove":
		if err := need(args, 2, "token id"); err != nil {
			return err
		}
		if err := c.do(ctx, "DELETE", "/api/v1/tokens/"+url.PathEscape(args[1]), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(w, "Token %s deleted\n", args[1])
		return nil
	}
	return usageError{fmt.Sprintf("unknown token subcommand %q", args[0])}
}

// roleOf is a token's role, with a deployer's projects.
func roleOf(t api.TokenView) string {
	if len(t.Projects) > 0 {
		return t.Role + ":" + strings.Join(t.Projects, ",")
	}
	return t.Role
}

func kindOf(k string) string {
	if k == "" {
		return "token"
	}
	return k
}

// expiry is when a token expires; "never" for tokens made before tokens
// expired (replace them: see docs/security.md).
func expiry(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
