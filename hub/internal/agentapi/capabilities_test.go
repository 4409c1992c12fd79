package agentapi_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/flotilla-cd/flotilla/hub/internal/agentapi"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/version"
)

// TestClusterCapabilitiesReported: the hub hands what an agent reports
// about its API server (in its Hello, then in an update) to the
// Capabilities hook under the cluster's name from the certificate, and
// lists the capability in its Welcome. (An older agent's Hello, without
// them, is served as before: TestProtocolVersionSkew.)
func TestClusterCapabilitiesReported(t *testing.T) {
	type report struct {
		cluster string
		caps    *apiv1alpha1.ClusterCapabilities
	}
	got := make(chan report, 8)
	h := startHubWith(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock(), agentapi.Options{Hooks: agentapi.Hooks{
		Capabilities: func(_ context.Context, cluster string, c *apiv1alpha1.ClusterCapabilities) {
			got <- report{cluster, proto.Clone(c).(*apiv1alpha1.ClusterCapabilities)}
		},
	}})
	ctx := t.Context()
	wait := func(want report) {
		t.Helper()
		select {
		case r := <-got:
			if r.cluster != want.cluster || !cmp.Equal(r.caps, want.caps, protocmp.Transform()) {
				t.Fatalf("reported %s %v, want %s %v", r.cluster, r.caps, want.cluster, want.caps)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no report, want %s %v", want.cluster, want.caps)
		}
	}

	a := h.enroll("a")
	first := &apiv1alpha1.ClusterCapabilities{KubeVersion: "v1.31.0", ApiVersions: []string{"apps/v1", "v1"}}
	hl := hello(nil)
	hl.ClusterCapabilities = first
	s, err := a.connect(ctx, h.addr, hl)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if !slices.Contains(s.welcome.GetCapabilities(), version.CapClusterCapabilities) {
		t.Errorf("welcome capabilities %v lack %s", s.welcome.GetCapabilities(), version.CapClusterCapabilities)
	}
	wait(report{"a", first})

	update := &apiv1alpha1.ClusterCapabilities{KubeVersion: "v1.31.0", ApiVersions: []string{"apps/v1", "example.com/v1", "example.com/v1/Widget", "v1"}}
	if err := s.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_ClusterCapabilities{ClusterCapabilities: update}}); err != nil {
		t.Fatal(err)
	}
	wait(report{"a", update})

}
