package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// printOut writes v as JSON or YAML, or calls table for the default form.
func printOut(w io.Writer, format string, v any, table func(*tabwriter.Writer)) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "", "table", "wide":
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	}
	return usageError{fmt.Sprintf("unknown output format %q: want table, json or yaml", format)}
}

func row(w io.Writer, cols ...string) {
	fmt.Fprintln(w, strings.Join(cols, "\t"))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shortRev(s string) string {
	if s == "" {
		return orDash(s)
	}
	// An app with several sources has one commit per source, joined by
	// commas.
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if len(p) > 8 {
			parts[i] = p[:8]
		}
	}
	return strings.Join(parts, ",")
}
