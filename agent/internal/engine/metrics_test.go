//go:build !unit

package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// gathered returns every sample of reg as "name{label=value,...}" → value
// (histograms as their count).
func gathered(t testing.TB, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[name] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	ns, agentNS := testNamespaces(t)
	reg := prometheus.NewRegistry()
	e, _ := runEngineWith(t, restCfg, Options{Namespace: agentNS, Registerer: reg})
	accept(t, e, bundle(t, "web", ns, auto(true, true), nil, deployment("web", 2, nil), service("web")))
	accept(t, e, bundle(t, "cfg", ns, auto(false, true), nil, configMap("c", map[string]any{"k": "v"})))
	waitStatus(t, e, "web", 20*time.Second, synced)
	waitStatus(t, e, "cfg", 20*time.Second, synced)

	// One drift healed (web), one reported (cfg).
	scale(t, ns, "web", 5)
	testenv.Eventually(t, 10*time.Second, func(context.Context) (bool, string) {
		return replicas(t, ns, "web") == 2, "replicas not reverted"
	})
	if _, err := dyn.Resource(gvrConfigMap).Namespace(ns).Patch(context.Background(), "c", "application/merge-patch+json", []byte(`{"data":{"k":"changed"}}`), metaPatch("someone")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, "cfg", 10*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetSync() == apiv1alpha1.SyncStatus_SYNC_STATUS_OUT_OF_SYNC
	})
	waitStatus(t, e, "web", 10*time.Second, func(s *apiv1alpha1.AppStatus) bool {
		return s.GetSync() == apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED
	})

	got := gathered(t, reg)
	// How many watch events the agent looked at depends on the API
	// server's timing; it looked at the two changes at least.
	if n := got["flotilla_agent_drift_checks_total"]; n < 2 {
		t.Errorf("flotilla_agent_drift_checks_total = %v, want at least the 2 changes", n)
	}
	delete(got, "flotilla_agent_drift_checks_total")
	want := map[string]float64{
		"flotilla_agent_apply_duration_seconds_count":                  2,
		"flotilla_agent_sync_total{result=succeeded}":                  2,
		"flotilla_agent_sync_total{result=failed}":                     0,
		"flotilla_agent_sync_total{result=superseded}":                 0,
		"flotilla_agent_drift_events_total":                            2,
		"flotilla_agent_self_heal_total":                               1,
		"flotilla_agent_managed_objects":                               3,
		"flotilla_agent_app_sync_status{app=web,status=Synced}":        1,
		"flotilla_agent_app_sync_status{app=cfg,status=OutOfSync}":     1,
		"flotilla_agent_app_health_status{app=cfg,status=Healthy}":     1,
		"flotilla_agent_app_health_status{app=web,status=Progressing}": 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}
