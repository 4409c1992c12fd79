package engine

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Sync results, the values of flotilla_agent_sync_total's result label.
const (
	resultSucceeded  = "succeeded"
	resultFailed     = "failed"
	resultSuperseded = "superseded"
)

// metrics are the engine's Prometheus metrics. Per-app series are only the
// two status gauges, which hold one series per app each.
type metrics struct {
	applyDuration prometheus.Histogram
	syncs         *prometheus.CounterVec
	drift         prometheus.Counter
	selfHeals     prometheus.Counter
	checks        prometheus.Counter
	hooks         *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flotilla_agent_apply_duration_seconds",
			Help:    "Duration of one sync operation of an app: dry-run, apply of every wave, prune.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180},
		}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flotilla_agent_sync_total",
			Help: "Sync operations by result: succeeded, failed or superseded (a newer bundle arrived).",
		}, []string{"result"}),
		drift: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flotilla_agent_drift_events_total",
			Help: "Live objects found to differ from their desired state (changed or deleted out of band), healed or not.",
		}),
		selfHeals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flotilla_agent_self_heal_total",
			Help: "Objects re-applied by self-heal that the write changed back.",
		}),
		checks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flotilla_agent_drift_checks_total",
			Help: "Live objects looked at for drift after the watch saw them change (most are found in sync).",
		}),
		hooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flotilla_agent_hook_runs_total",
			Help: "Resource hooks run by sync operations, by phase (PreSync, Sync, PostSync, SyncFail) and result (succeeded or failed).",
		}, []string{"phase", "result"}),
	}
	for _, r := range []string{resultSucceeded, resultFailed, resultSuperseded} {
		m.syncs.WithLabelValues(r)
	}
	return m
}

// register registers the engine's metrics, the gauges read from its state
// at scrape time included.
func (m *metrics) register(reg prometheus.Registerer, e *Engine) error {
	for _, c := range []prometheus.Collector{m.applyDuration, m.syncs, m.drift, m.selfHeals, m.checks, m.hooks, &appCollector{e: e}} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register engine metrics: %w", err)
		}
	}
	return nil
}

var (
	managedObjectsDesc = prometheus.NewDesc("flotilla_agent_managed_objects",
		"Objects in the desired state of every app the agent holds.", nil, nil)
	appSyncDesc = prometheus.NewDesc("flotilla_agent_app_sync_status",
		"1 for the current sync status of an app (Synced, OutOfSync, Unknown).", []string{"app", "status"}, nil)
	appHealthDesc = prometheus.NewDesc("flotilla_agent_app_health_status",
		"1 for the current health of an app (Healthy, Progressing, Degraded, Missing, Suspended, Unknown).", []string{"app", "status"}, nil)
)

// appCollector exports the apps' published statuses at scrape time.
type appCollector struct{ e *Engine }

func (c *appCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- managedObjectsDesc
	ch <- appSyncDesc
	ch <- appHealthDesc
}

func (c *appCollector) Collect(ch chan<- prometheus.Metric) {
	c.e.mu.Lock()
	apps := make([]*app, 0, len(c.e.apps))
	for _, a := range c.e.apps {
		apps = append(apps, a)
	}
	c.e.mu.Unlock()
	var objects int64
	for _, a := range apps {
		a.mu.Lock()
		st, removed := a.status, a.removed
		a.mu.Unlock()
		if removed {
			continue
		}
		objects += a.managed.Load()
		sync, health := apiv1alpha1.SyncStatus_SYNC_STATUS_UNKNOWN, apiv1alpha1.HealthStatus_HEALTH_STATUS_UNKNOWN
		if st != nil { // published statuses are never modified
			sync, health = st.GetSync(), st.GetHealth()
		}
		ch <- prometheus.MustNewConstMetric(appSyncDesc, prometheus.GaugeValue, 1, a.name, sync.Name())
		ch <- prometheus.MustNewConstMetric(appHealthDesc, prometheus.GaugeValue, 1, a.name, health.Name())
	}
	ch <- prometheus.MustNewConstMetric(managedObjectsDesc, prometheus.GaugeValue, float64(objects))
}
