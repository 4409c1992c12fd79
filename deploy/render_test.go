package deploy

import (
	"context"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/deploy/internal/manifests"
)

// rendering is one way a user installs from deploy/.
type rendering struct {
	name   string
	render func(ctx context.Context) ([]*unstructured.Unstructured, error)
}

func kustomize(dir string) rendering {
	return rendering{name: "kustomize " + dir, render: func(context.Context) ([]*unstructured.Unstructured, error) {
		return manifests.Kustomize(dir)
	}}
}

func helmChart(name string, values map[string]any) rendering {
	return rendering{name: "helm " + name, render: func(ctx context.Context) ([]*unstructured.Unstructured, error) {
		return manifests.Helm(ctx, filepath.Join("helm", "flotilla"), manifests.HelmOptions{Values: values})
	}}
}

// renderings lists every supported way to install, with the Helm values
// that switch each template branch on.
func renderings() []rendering {
	return []rendering{
		kustomize("hub"),
		kustomize("agent"),
		kustomize("agent/namespaced"),
		kustomize("examples/hub-ingress"),
		kustomize("hub-ha"),
		{name: "file examples/networkpolicy.yaml", render: func(context.Context) ([]*unstructured.Unstructured, error) {
			return manifests.File(filepath.Join("examples", "networkpolicy.yaml"))
		}},
		{name: "file examples/hub-state-pod.yaml", render: func(context.Context) ([]*unstructured.Unstructured, error) {
			return manifests.File(filepath.Join("examples", "hub-state-pod.yaml"))
		}},
		helmChart("defaults (hub)", nil),
		helmChart("agent, cluster-admin, join Secret", map[string]any{
			"hub": map[string]any{"enabled": false},
			"agent": map[string]any{"enabled": true, "join": map[string]any{
				"create": true, "hub": "hub.example.com:8443", "cluster": "prod-eu-1",
				"token": "join-token", "caHash": "sha256:0123",
			}},
		}),
		helmChart("hub and namespaced agent, everything on", map[string]any{
			"createNamespace":  true,
			"imagePullSecrets": []any{map[string]any{"name": "regcred"}},
			"hub": map[string]any{
				"ingress":      map[string]any{"enabled": true, "className": "nginx", "annotations": map[string]any{"a": "b"}},
				"service":      map[string]any{"type": "LoadBalancer"},
				"persistence":  map[string]any{"storageClassName": "fast"},
				"nodeSelector": map[string]any{"kubernetes.io/os": "linux"},
				"tolerations":  []any{map[string]any{"key": "k", "operator": "Exists"}},
			},
			"agent": map[string]any{"enabled": true, "rbac": map[string]any{
				"clusterAdmin": false, "namespaces": []any{"team-a", "team-c"},
			}},
		}),
		helmChart("hub ha", map[string]any{
			"hub": map[string]any{"ha": map[string]any{"enabled": true}},
		}),
		helmChart("hub with an existing claim", map[string]any{
			"hub": map[string]any{"persistence": map[string]any{"existingClaim": "my-state"}},
		}),
	}
}

func renderAll(t *testing.T) map[string][]*unstructured.Unstructured {
	t.Helper()
	out := map[string][]*unstructured.Unstructured{}
	for _, r := range renderings() {
		objs, err := r.render(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if len(objs) == 0 {
			t.Fatalf("%s: no objects", r.name)
		}
		out[r.name] = objs
	}
	return out
}
