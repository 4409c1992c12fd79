package agentapi_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/agentapi"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/version"
)

// TestSecretDiffsOfOldAgentsWithheld: an agent that does not say it masks
// Secret values (an agent from before masking) sends a drift diff and a
// DIFF result holding a Secret's values; the hub relays neither value,
// and keeps the diffs of other objects. An agent with the capability is
// relayed as it is.
func TestSecretDiffsOfOldAgentsWithheld(t *testing.T) {
	const secretDiff = "--- live /Secret team/db\n+++ desired /Secret team/db\n@@ -1,2 +1,2 @@\n data:\n-  password: aHVudGVyMg==\n+  password: c2VjcmV0\n"
	const cmDiff = "--- live /ConfigMap team/cfg\n+++ desired /ConfigMap team/cfg\n@@ -1,2 +1,2 @@\n data:\n-  k: old\n+  k: new\n"
	for _, tc := range []struct {
		name  string
		caps  []string
		masks bool
	}{
		{"old agent", []string{"bundle-gzip", "renew", "commands", "drift-diff"}, false},
		{"agent that masks", version.Capabilities, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			statuses := make(chan *apiv1alpha1.AppStatus, 1)
			results := make(chan *apiv1alpha1.CommandResult, 1)
			h := startHubWith(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock(), agentapi.Options{Hooks: agentapi.Hooks{
				Status:        func(_ string, _, st *apiv1alpha1.AppStatus) { statuses <- st },
				CommandResult: func(_ string, r *apiv1alpha1.CommandResult) { results <- r },
			}})
			a := h.enroll("a")
			b := bundle(t, "app", "v1")
			h.fleet.SetAll(map[string]fleet.Desired{"a": {"app": b}})
			hl := hello(nil)
			hl.Capabilities = tc.caps
			s, err := a.connect(t.Context(), h.addr, hl)
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			s.desired(t)
			st := &apiv1alpha1.AppStatus{App: "app", Digest: b.GetDigest(), Objects: []*apiv1alpha1.ObjectStatus{
				{Kind: "Secret", Namespace: "team", Name: "db", Diff: secretDiff},
				{Kind: "ConfigMap", Namespace: "team", Name: "cfg", Diff: cmDiff},
			}}
			if err := s.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Status{Status: st}}); err != nil {
				t.Fatal(err)
			}
			if err := s.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_CommandResult{CommandResult: &apiv1alpha1.CommandResult{Id: "c1", Ok: true, Diff: cmDiff + secretDiff + cmDiff}}}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for range 2 {
				select {
				case st := <-statuses:
					for _, o := range st.GetObjects() {
						got = append(got, o.GetDiff())
					}
				case r := <-results:
					got = append(got, r.GetDiff())
				case <-time.After(30 * time.Second):
					t.Fatal("the hub passed on no status or result")
				}
			}
			all := strings.Join(got, "\n")
			for _, v := range []string{"aHVudGVyMg==", "c2VjcmV0"} {
				if has := strings.Contains(all, v); has != tc.masks {
					t.Errorf("relayed diffs hold the Secret value %s: %t, want %t:\n%s", v, has, tc.masks, all)
				}
			}
			if !strings.Contains(all, "+  k: new") {
				t.Errorf("the ConfigMap's diff was not relayed:\n%s", all)
			}
			if !tc.masks && !strings.Contains(all, "withheld") {
				t.Errorf("no word that the Secret's diff was withheld:\n%s", all)
			}
		})
	}
}
