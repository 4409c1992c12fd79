package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// backupCmd writes an online snapshot of the hub's store to a file.
func backupCmd(ctx context.Context, c *client, args []string, w io.Writer) error {
	if err := need(args, 1, "backup file name"); err != nil {
		return err
	}
	resp, err := c.send(ctx, "GET", "/api/v1/backup", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	tmp := args[0] + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, args[0]); err != nil {
		return err
	}
	fmt.Fprintf(w, "Wrote %d bytes to %s; restore by starting a hub with it as <state-dir>/hub.db\n", n, args[0])
	return nil
}

// definitionsCmd shows whether the definitions loaded and what was ignored.
func definitionsCmd(ctx context.Context, c *client, f flags, w io.Writer) error {
	var v api.DefinitionsView
	if err := c.do(ctx, "GET", "/api/v1/definitions", nil, &v); err != nil {
		return err
	}
	err := printOut(w, f.out, v, func(tw *tabwriter.Writer) {
		row(tw, "Evaluated:", v.At.Format("2006-01-02 15:04:05 MST"))
		row(tw, "Applications:", fmt.Sprint(v.Apps))
		row(tw, "Clusters:", fmt.Sprint(v.Clusters))
		if v.Error != "" {
			row(tw, "Error:", v.Error+" (the previous desired state stays in force)")
		}
		for _, b := range v.Broken {
			row(tw, "Broken:", b.Error+" (not used; the apps it names keep their last state)")
		}
		for _, wn := range v.Warnings {
			row(tw, "Warning:", wn)
		}
	})
	switch {
	case err != nil:
		return err
	case v.Error != "":
		return fmt.Errorf("%w: they could not be loaded", ErrDefinitions)
	case len(v.Broken) > 0:
		return fmt.Errorf("%w: %d could not be used", ErrDefinitions, len(v.Broken))
	}
	return nil
}
