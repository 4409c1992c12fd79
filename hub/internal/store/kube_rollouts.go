package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

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
