//go:build !unit

package e2e

import (
	"testing"
)

// TestFleet runs the scenarios of the e2e suite against one world: three
// real clusters (alpha and beta labelled env=prod, gamma env=staging), a
// git repository served over HTTP, a hub and one enrolled agent per
// cluster, all real processes. Each scenario uses its own applications and
// namespaces, so they share the clusters; the ones that break something
// (the hub, an agent, a cluster) run last and leave the world healed.
func TestFleet(t *testing.T) {
	parallel(t)
	e := newEnv(t, "alpha", "beta", "gamma")
	e.startHub(hubDefaults())
	e.enroll("alpha", "env=prod", "region=eu")
	e.enroll("beta", "env=prod", "region=us")
	e.enroll("gamma", "env=staging", "region=eu")
	for name := range e.agents {
		e.waitConnected(e.hub, name, true)
	}

	for _, sc := range []struct {
		name string
		run  func(*env)
	}{
		{"ArgoCDDemo", scenarioDemo},
		{"AlertOnly", scenarioAlertOnly},
		{"Rollback", scenarioRollback},
		{"Targeting", scenarioTargeting},
		{"Capabilities", scenarioCapabilities},
		{"MultiSource", scenarioMultiSource},
		{"BadInput", scenarioBadInput},
		{"Security", scenarioSecurity},
		{"HubDown", scenarioHubDown},
		{"AgentFaults", scenarioAgentFaults},
		{"DisasterRecovery", scenarioDisasterRecovery},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.run(e.sub(t)) })
	}
}
