package controller

import (
	"fmt"
	"time"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// syncPolicy converts an app's sync policy to its wire form.
func syncPolicy(a *app.Application) (*apiv1alpha1.SyncPolicy, error) {
	sp := a.Spec.SyncPolicy
	out := &apiv1alpha1.SyncPolicy{SyncOptions: sp.SyncOptions, Scope: &apiv1alpha1.Scope{}}
	if sc := a.Spec.Scope; sc != nil {
		out.Scope.Namespaces, out.Scope.ClusterScoped = sc.Namespaces, sc.ClusterScoped
	}
	if sp.Automated != nil {
		out.Automated, out.Prune, out.SelfHeal = true, sp.Automated.Prune, sp.Automated.SelfHeal
	}
	if r := sp.Retry; r != nil {
		out.Retry = &apiv1alpha1.Retry{Limit: r.Limit}
		if b := r.Backoff; b != nil {
			d, err := parseDuration(b.Duration)
			if err != nil {
				return nil, fmt.Errorf("spec.syncPolicy.retry.backoff.duration: %w", err)
			}
			md, err := parseDuration(b.MaxDuration)
			if err != nil {
				return nil, fmt.Errorf("spec.syncPolicy.retry.backoff.maxDuration: %w", err)
			}
			out.Retry.BackoffDurationMs, out.Retry.BackoffMaxDurationMs = d.Milliseconds(), md.Milliseconds()
			if b.Factor != nil {
				out.Retry.BackoffFactor = float64(*b.Factor)
			}
		}
	}
	return out, nil
}

// parseDuration accepts Go durations and Argo CD's bare seconds ("5").
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	var n int64
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		return time.Duration(n) * time.Second, nil
	}
	return 0, fmt.Errorf("%q is not a duration", s)
}

func ignoreDifferences(a *app.Application) []*apiv1alpha1.IgnoreDifference {
	out := make([]*apiv1alpha1.IgnoreDifference, 0, len(a.Spec.IgnoreDifferences))
	for _, d := range a.Spec.IgnoreDifferences {
		out = append(out, &apiv1alpha1.IgnoreDifference{
			Group: d.Group, Kind: d.Kind, Name: d.Name, Namespace: d.Namespace,
			JsonPointers: d.JSONPointers, ManagedFieldsManagers: d.ManagedFieldsManagers,
		})
	}
	return out
}
