// Command flotilla-render is the hub's worker binary: flotilla-hub starts
// it, from next to its own executable (or --render-worker-binary), to
// render Helm charts, kustomizations and Jsonnet and to fetch charts from
// Helm repositories in processes it can limit and kill. It links Helm,
// Kustomize and the OCI client so that flotilla-hub does not.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/flotilla-cd/flotilla/hub/internal/renderworker"
	"github.com/flotilla-cd/flotilla/shared/version"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println(version.Version)
		return
	}
	if err := renderworker.Run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "flotilla-render:", err)
		os.Exit(1)
	}
}
