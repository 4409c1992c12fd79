package engines

import (
	"context"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"os"
	"testing"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/target"
)

// TestArgoGuestbook takes Argo CD's getting-started Application with only
// destination.name added, through decoding, targeting and rendering.
func TestArgoGuestbook(t *testing.T) {
	data, err := os.ReadFile("../../app/testdata/decode/argo-guestbook-named.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defs, err := app.Decode("guestbook.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(defs.Apps) != 1 {
		t.Fatalf("%d apps", len(defs.Apps))
	}
	a := defs.Apps[0]
	c := target.Cluster{Name: "prod-eu-1"}
	if !target.Targets(a, c) || target.Targets(a, target.Cluster{Name: "other"}) {
		t.Fatal("guestbook must target exactly its named cluster")
	}
	src, err := target.Effective(a, c)
	if err != nil {
		t.Fatal(err)
	}
	root := repoRootForTest(t)
	in := render.Input{Root: root, Source: src, Namespace: a.Spec.Destination.Namespace, AppName: a.Name}
	objs, err := newRenderer(render.Options{}).Render(context.Background(), render.CacheKey("tree", in), in)
	golden(t, "argo-guestbook", dump(root, objs, err))
}

// TestHelmPerCluster renders one Flotilla Application with per-cluster
// Helm values (templated and by override) for two clusters.
func TestHelmPerCluster(t *testing.T) {
	defs, err := app.Decode("shop.yaml", []byte(`apiVersion: flotilla.dev/v1alpha1
kind: Application
metadata: {name: shop}
spec:
  source:
    repoURL: https://git.example.com/config.git
    path: helm/mychart
    helm:
      valueFiles: ['values-{{ .cluster.labels.env }}.yaml']
      values: |
        region: {{ .cluster.labels.region }}
        extra: {cluster: {{ .cluster.name }}}
  destination:
    namespace: shop
    clusterSelector: {matchLabels: {env: prod}}
  clusterOverrides:
  - clusters: [prod-us-1]
    helm:
      values: |
        replicas: 5
        extra: {capacity: high}
      parameters: [{name: image.tag, value: "1.27"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	a := defs.Apps[0]
	root := repoRootForTest(t)
	r := newRenderer(render.Options{})
	for _, c := range []target.Cluster{
		{Name: "prod-eu-1", Labels: map[string]string{"env": "prod", "region": "eu"}},
		{Name: "prod-us-1", Labels: map[string]string{"env": "prod", "region": "us"}},
	} {
		t.Run(c.Name, func(t *testing.T) {
			src, err := target.Effective(a, c)
			if err != nil {
				t.Fatal(err)
			}
			in := render.Input{Root: root, Source: src, Namespace: a.Spec.Destination.Namespace, AppName: a.Name}
			objs, err := r.Render(context.Background(), render.CacheKey("tree", in), in)
			golden(t, "helm-per-cluster-"+c.Name, dump(root, objs, err))
		})
	}
}
