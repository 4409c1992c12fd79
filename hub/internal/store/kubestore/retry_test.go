package kubestore

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestOnConflictUntilDeadline: conflicts are retried as long as the
// caller's context allows, not a fixed number of times (45 replicas'
// updates of one object at once used up 30 tries at load 30); when the
// context ends, the last conflict is returned.
func TestOnConflictUntilDeadline(t *testing.T) {
	saved := conflictBackoff
	conflictBackoff = wait.Backoff{Duration: time.Microsecond, Factor: 1.5, Cap: 50 * time.Microsecond}
	t.Cleanup(func() { conflictBackoff = saved })
	conflict := apierrors.NewConflict(schema.GroupResource{Group: Group, Resource: "clusters"}, "c", nil)

	tries := 0
	err := onConflict(t.Context(), func() error {
		tries++
		if tries <= 200 {
			return conflict
		}
		return nil
	})
	if err != nil || tries != 201 {
		t.Errorf("after 200 conflicts: %v in %d tries, want success in 201", err, tries)
	}

	ctx, cancel := context.WithCancel(t.Context())
	tries = 0
	err = onConflict(ctx, func() error {
		if tries++; tries == 50 {
			cancel()
		}
		return conflict
	})
	if !apierrors.IsConflict(err) || tries != 50 {
		t.Errorf("context ended after 50 tries: %v in %d tries, want the conflict after 50", err, tries)
	}
}
