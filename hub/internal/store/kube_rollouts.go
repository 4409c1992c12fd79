package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func rolloutName(app string) string { return hashName(app) }

// PutRollout implements Store.
func (k *Kube) PutRollout(ctx context.Context, r RolloutRecord) error {
	if err := checkName("app", r.App); err != nil {
		return fmt.Errorf("put rollout: %w", err)
	}
	if !json.Valid(r.State) {
		return fmt.Errorf("put rollout of %s: state is not JSON: %w", r.App, ErrInvalid)
	}
	err := k.check(ctx)
	if err == nil {
		err = k.upsert(ctx, resRollout, rolloutName(r.App), labels("rollout", labelApp, r.App), r)
	}
	if err != nil {
		return fmt.Errorf("put rollout of %s: %w", r.App, err)
	}
	return nil
}

// UpdateRollout implements Store: the update carries the
// resourceVersion fn's record was read at; a conflict reads and runs fn
// again.
func (k *Kube) UpdateRollout(ctx context.Context, app string, fn func(cur *RolloutRecord) (*RolloutRecord, error)) error {
	if err := checkName("app", app); err != nil {
		return fmt.Errorf("update rollout: %w", err)
	}
	err := k.check(ctx)
	if err == nil {
		err = onConflict(func() error {
			var rec RolloutRecord
			o, err := k.get(ctx, resRollout, rolloutName(app), &rec)
			var cur *RolloutRecord
			switch {
			case errors.Is(err, ErrNotFound):
			case err != nil:
				return err
			default:
				cur = &rec
			}
			next, err := fn(cur)
			if err != nil || next == nil {
				return err
			}
			if next.App != app || !json.Valid(next.State) {
				return fmt.Errorf("app %q or state not JSON: %w", next.App, ErrInvalid)
			}
			if o == nil {
				o, err := newObject(resRollout, rolloutName(app), labels("rollout", labelApp, app), next)
				if err != nil {
					return err
				}
				_, err = k.res(resRollout).Create(ctx, o, metav1.CreateOptions{})
				return err
			}
			if err := setSpec(o, next); err != nil {
				return err
			}
			_, err = k.res(resRollout).Update(ctx, o, metav1.UpdateOptions{})
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("update rollout of %s: %w", app, err)
	}
	return nil
}

// RolloutOf decodes a Rollout object of the store.
func RolloutOf(o *unstructured.Unstructured) (RolloutRecord, error) {
	var r RolloutRecord
	err := getSpec(o, &r)
	return r, err
}

// DeleteRollout implements Store.
func (k *Kube) DeleteRollout(ctx context.Context, app string) error {
	err := k.check(ctx)
	if err == nil {
		err = k.del(ctx, resRollout, rolloutName(app))
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete rollout of %s: %w", app, err)
	}
	return nil
}

// ListRollouts implements Store.
func (k *Kube) ListRollouts(ctx context.Context) ([]RolloutRecord, error) {
	var out []RolloutRecord
	err := k.listSpecs(ctx, resRollout, "", func(o *unstructured.Unstructured) error {
		var r RolloutRecord
		if err := getSpec(o, &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].App < out[j].App })
	return out, nil
}
