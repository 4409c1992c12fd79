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
		if err := c.do(ctx, "POST", "/api/v1/tokens", api.CreateTokenRequest{Name: args[1], Role: f.role}, &tr); err != nil {
			return err
		}
		return printOut(w, f.out, tr, func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "Token %s (%s, id %s) created. It is shown once:\n\n  %s\n", tr.Name, tr.Role, tr.ID, tr.Token)
		})
	case "list":
		var lr api.ListResponse[api.TokenView]
		if err := listAll(ctx, c, "/api/v1/tokens", &lr); err != nil {
			return err
		}
		return printOut(w, f.out, lr.Items, func(tw *tabwriter.Writer) {
			items := slices.Clone(lr.Items)
			slices.SortFunc(items, func(a, b api.TokenView) int { return strings.Compare(a.Name, b.Name) })
			row(tw, "ID", "NAME", "ROLE", "CREATED")
			for _, t := range items {
				row(tw, t.ID, t.Name, t.Role, t.CreatedAt.UTC().Format(time.RFC3339))
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
