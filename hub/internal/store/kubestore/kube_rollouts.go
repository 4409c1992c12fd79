package kubestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func rolloutName(app string) string { return hashName(app) }

// PutRollout implements Store.
func (k *Store) PutRollout(ctx context.Context, r store.RolloutRecord) error {
	if err := store.CheckName("app", r.App); err != nil {
		return fmt.Errorf("put rollout: %w", err)
	}
	if !json.Valid(r.State) {
		return fmt.Errorf("put rollout of %s: state is not JSON: %w", r.App, store.ErrInvalid)
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
func (k *Store) UpdateRollout(ctx context.Context, app string, fn func(cur *store.RolloutRecord) (*store.RolloutRecord, error)) error {
	if err := store.CheckName("app", app); err != nil {
		return fmt.Errorf("update rollout: %w", err)
	}
	err := k.check(ctx)
	if err == nil {
		err = onConflict(ctx, func() error {
			var rec store.RolloutRecord
			o, err := k.get(ctx, resRollout, rolloutName(app), &rec)
			var cur *store.RolloutRecord
			switch {
			case errors.Is(err, store.ErrNotFound):
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
				return fmt.Errorf("app %q or state not JSON: %w", next.App, store.ErrInvalid)
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
func RolloutOf(o *unstructured.Unstructured) (store.RolloutRecord, error) {
	var r store.RolloutRecord
	err := getSpec(o, &r)
	return r, err
}

// DeleteRollout implements Store.
func (k *Store) DeleteRollout(ctx context.Context, app string) error {
	err := k.check(ctx)
	if err == nil {
		err = k.del(ctx, resRollout, rolloutName(app))
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delete rollout of %s: %w", app, err)
	}
	return nil
}

// ListRollouts implements Store.
func (k *Store) ListRollouts(ctx context.Context) ([]store.RolloutRecord, error) {
	var out []store.RolloutRecord
	err := k.listSpecs(ctx, resRollout, "", func(o *unstructured.Unstructured) error {
		var r store.RolloutRecord
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
