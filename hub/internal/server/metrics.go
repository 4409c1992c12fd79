package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/status"
)

// metrics are the hub's Prometheus metrics.
type metrics struct {
	reg         *prometheus.Registry
	pushes      prometheus.Counter
	gitPoll     *prometheus.HistogramVec
	reconcile   prometheus.Histogram
	renders     prometheus.Counter
	statusCount prometheus.Counter
	// rolloutEvents counts rollout events by type (StepDone, Halted,
	// RolledBack, ...).
	rolloutEvents *prometheus.CounterVec
}

func newMetrics(fl *fleet.Fleet, ctrl func() *controller.Controller) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		// No per-cluster label: at 10,000 agents that would be 10,000 series.
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flotilla_hub_bundle_pushes_total", Help: "Bundles pushed to agents.",
		}),
		gitPoll: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flotilla_hub_git_poll_duration_seconds", Help: "Time to list refs and fetch one repository.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"result"}),
		reconcile: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "flotilla_hub_reconcile_duration_seconds", Help: "Time to compute every cluster's desired state (renders included).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		renders: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flotilla_hub_renders_total", Help: "Bundles built from a render that was not cached.",
		}),
		statusCount: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flotilla_hub_status_reports_total", Help: "Status reports received from agents.",
		}),
		rolloutEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flotilla_rollout_events_total", Help: "Rollout events by type (RolloutStarted, StepDone, Halted, RolledBack, Completed, ...).",
		}, []string{"type"}),
	}
	// Export the poll histogram from the start, before the first poll.
	m.gitPoll.WithLabelValues("ok")
	m.gitPoll.WithLabelValues("error")
	m.reg.MustRegister(m.pushes, m.gitPoll, m.reconcile, m.renders, m.statusCount, m.rolloutEvents,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flotilla_hub_connected_agents", Help: "Agents with an open stream.",
		}, func() float64 { return float64(fl.ConnectedCount()) }),
		&appCollector{fl: fl, ctrl: ctrl},
	)
	return m
}

// appCollector exports per-(app, cluster) sync and health as gauges.
type appCollector struct {
	fl   *fleet.Fleet
	ctrl func() *controller.Controller
}

var (
	appSyncDesc   = prometheus.NewDesc("flotilla_app_sync_status", "1 for the current sync status of an app on a cluster.", []string{"app", "cluster", "status"}, nil)
	appHealthDesc = prometheus.NewDesc("flotilla_app_health_status", "1 for the current health of an app on a cluster.", []string{"app", "cluster", "status"}, nil)
	appErrorDesc  = prometheus.NewDesc("flotilla_app_definition_error", "1 for an app whose definition could not be used (it keeps its last state).", []string{"app"}, nil)
	brokenDesc    = prometheus.NewDesc("flotilla_hub_broken_definitions", "Definitions that could not be used at the last reconcile.", nil, nil)
	rolloutStep   = prometheus.NewDesc("flotilla_rollout_step", "The 1-based step an app's rollout is at (number of steps + 1 once done).", []string{"app"}, nil)
	rolloutPhase  = prometheus.NewDesc("flotilla_rollout_phase", "1 for the current phase of an app's rollout (Progressing, WaitingApproval, Paused, Halted, Aborted, Completed).", []string{"app", "phase"}, nil)
)

func (c *appCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- appSyncDesc
	ch <- appHealthDesc
	ch <- appErrorDesc
	ch <- brokenDesc
	ch <- rolloutStep
	ch <- rolloutPhase
}

func (c *appCollector) Collect(ch chan<- prometheus.Metric) {
	ctl := c.ctrl()
	if ctl == nil {
		return
	}
	snap := ctl.Snapshot()
	ch <- prometheus.MustNewConstMetric(brokenDesc, prometheus.GaugeValue, float64(len(snap.Broken)))
	for _, as := range snap.Apps {
		if as.Broken {
			ch <- prometheus.MustNewConstMetric(appErrorDesc, prometheus.GaugeValue, 1, as.Name)
		}
	}
	for _, ro := range ctl.Rollouts() {
		phase := string(ro.State.Phase)
		if ro.State.Paused {
			phase = "Paused"
		}
		ch <- prometheus.MustNewConstMetric(rolloutStep, prometheus.GaugeValue, float64(ro.State.Step+1), ro.State.App)
		ch <- prometheus.MustNewConstMetric(rolloutPhase, prometheus.GaugeValue, 1, ro.State.App, phase)
	}
	for _, v := range status.Views(snap, c.fl, false) {
		for _, cv := range v.Clusters {
			ch <- prometheus.MustNewConstMetric(appSyncDesc, prometheus.GaugeValue, 1, v.Name, cv.Cluster, cv.Sync)
			ch <- prometheus.MustNewConstMetric(appHealthDesc, prometheus.GaugeValue, 1, v.Name, cv.Cluster, cv.Health)
		}
	}
}
