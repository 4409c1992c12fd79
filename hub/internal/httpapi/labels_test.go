package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/httpapi/apitest"
)

// TestClusterLabelsAreValidated: labels enter through the API as
// Kubernetes label keys and values, or not at all.
func TestClusterLabelsAreValidated(t *testing.T) {
	h := apitest.New(t, apitest.Options{})
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		want   int
	}{
		{"add with a good label", "POST", "/api/v1/clusters", api.AddClusterRequest{Name: "edge-1", Labels: map[string]string{"example.com/tier": "edge_1"}}, http.StatusCreated},
		{"add with a bad key", "POST", "/api/v1/clusters", api.AddClusterRequest{Name: "edge-2", Labels: map[string]string{"bad key": "x"}}, http.StatusBadRequest},
		{"add with a bad value", "POST", "/api/v1/clusters", api.AddClusterRequest{Name: "edge-3", Labels: map[string]string{"env": "<script>"}}, http.StatusBadRequest},
		{"add with a long value", "POST", "/api/v1/clusters", api.AddClusterRequest{Name: "edge-4", Labels: map[string]string{"env": strings.Repeat("a", 64)}}, http.StatusBadRequest},
		{"set a good label", "PATCH", "/api/v1/clusters/edge-1/labels", api.LabelRequest{Labels: map[string]string{"region": "eu"}}, http.StatusOK},
		{"set a bad key", "PATCH", "/api/v1/clusters/edge-1/labels", api.LabelRequest{Labels: map[string]string{"/region": "eu"}}, http.StatusBadRequest},
		{"set a bad value", "PATCH", "/api/v1/clusters/edge-1/labels", api.LabelRequest{Labels: map[string]string{"region": "eu west"}}, http.StatusBadRequest},
		{"remove a label", "PATCH", "/api/v1/clusters/edge-1/labels", api.LabelRequest{Labels: map[string]string{"region": ""}}, http.StatusOK},
	}
	for _, tt := range tests {
		if code := call(t, h, h.AdminToken, tt.method, tt.path, tt.body, nil); code != tt.want {
			t.Errorf("%s: HTTP %d, want %d", tt.name, code, tt.want)
		}
	}
	var c api.ClusterView
	call(t, h, h.AdminToken, "GET", "/api/v1/clusters/edge-1", nil, &c)
	if len(c.Labels) != 1 || c.Labels["example.com/tier"] != "edge_1" {
		t.Errorf("labels of edge-1: %v; want only example.com/tier=edge_1", c.Labels)
	}
	for _, name := range []string{"edge-2", "edge-3", "edge-4"} {
		if code := call(t, h, h.AdminToken, "GET", "/api/v1/clusters/"+name, nil, nil); code != http.StatusNotFound {
			t.Errorf("cluster %s with a refused label: HTTP %d, want 404", name, code)
		}
	}
}
