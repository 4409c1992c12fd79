package engines

import (
	"context"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"os"
	"path/filepath"
	"testing"
)

// writeFiles writes files (slash-separated names) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// newRenderer returns a Renderer with o and the engines.
func newRenderer(o render.Options) *render.Renderer {
	o.Engines = New()
	return render.New(o)
}

// renderSource renders in without caching, with the engines.
func renderSource(ctx context.Context, in render.Input) ([]*unstructured.Unstructured, error) {
	return render.Source(ctx, New(), in)
}
