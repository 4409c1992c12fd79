package engines

import (
	"context"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// TestHelmValueFilesFromRefs reads "$ref/path" value files from another
// checkout, and only from inside it.
func TestHelmValueFilesFromRefs(t *testing.T) {
	other := t.TempDir()
	if err := os.MkdirAll(filepath.Join(other, "env"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "env", "prod.yaml"), []byte("replicas: 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		valueFile  string
		refs       map[string]string
		wantErr    string
		wantReplic int64
	}{
		{name: "from the ref's repository", valueFile: "$values/env/prod.yaml", refs: map[string]string{"values": other}, wantReplic: 7},
		{name: "unknown ref", valueFile: "$nope/env/prod.yaml", refs: map[string]string{"values": other}, wantErr: `no source has ref "nope"`},
		{name: "missing file", valueFile: "$values/env/dev.yaml", refs: map[string]string{"values": other}, wantErr: "env/dev.yaml"},
		{name: "leaving the ref's repository", valueFile: "$values/../../etc/passwd", refs: map[string]string{"values": other}, wantErr: "outside the repository"},
		{name: "no file", valueFile: "$values", refs: map[string]string{"values": other}, wantErr: "no file after $values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := render.Input{Root: repoRootForTest(t), Source: app.Source{Path: "helm/mychart", Helm: &app.Helm{ValueFiles: []string{tt.valueFile}}},
				Namespace: "shop", AppName: "web", Refs: tt.refs}
			objs, err := renderSource(context.Background(), in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if o.GetKind() == "Deployment" {
					if r, _, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "replicas"); fmt.Sprint(r) != fmt.Sprint(tt.wantReplic) {
						t.Errorf("replicas %v, want %d", r, tt.wantReplic)
					}
					return
				}
			}
			t.Fatal("no Deployment rendered")
		})
	}
}
