//go:build !unit

package containers

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flotilla-cd/flotilla/internal/testsupport/docker"
)

// TestImages runs each image as the manifests do (read-only root, user
// 65532, every capability dropped) with --version, and checks that it
// prints the version of the binaries make build made, that the image's own
// user is 65532 and its entrypoint the binary; it logs the image sizes.
func TestImages(t *testing.T) {
	images := map[string]string{"flotilla-hub": os.Getenv(EnvHubImage), "flotilla-agent": os.Getenv(EnvAgentImage)}
	if images["flotilla-hub"] == "" || images["flotilla-agent"] == "" {
		t.Skipf("%s and %s are not set: run make e2e-containers, which builds the images", EnvHubImage, EnvAgentImage)
	}
	binDir := os.Getenv("FLOTILLA_E2E_BIN_DIR")
	var d docker.CLI
	ctx := t.Context()
	for bin, ref := range images {
		t.Run(bin, func(t *testing.T) {
			want, err := exec.CommandContext(ctx, filepath.Join(binDir, bin), "--version").Output()
			if err != nil {
				t.Fatalf("%s --version: %v", bin, err)
			}
			got := run(ctx, t, d, "run", "--rm", "--read-only", "--user", "65532", "--cap-drop", "ALL", ref, "--version")
			if got != strings.TrimSpace(string(want)) {
				t.Errorf("%s --version printed %q, want %q", ref, got, strings.TrimSpace(string(want)))
			}
			if user := run(ctx, t, d, "image", "inspect", "--format", "{{.Config.User}}", ref); user != "65532:65532" {
				t.Errorf("%s runs as %q, want 65532:65532", ref, user)
			}
			if ep := run(ctx, t, d, "image", "inspect", "--format", "{{json .Config.Entrypoint}}", ref); ep != `["/usr/local/bin/`+bin+`"]` {
				t.Errorf("%s entrypoint %s, want /usr/local/bin/%s", ref, ep, bin)
			}
			size, err := strconv.ParseInt(run(ctx, t, d, "image", "inspect", "--format", "{{.Size}}", ref), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %.1f MB", ref, float64(size)/1e6)
		})
	}
}

func run(ctx context.Context, t *testing.T, d docker.CLI, args ...string) string {
	t.Helper()
	out, err := d.Run(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
