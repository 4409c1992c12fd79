package kubestore

import (
	"context"
	"errors"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// History and audit entries of the Kubernetes store are one object each
// ("h-<id>", "a-<id>"), their free-text fields capped at maxTextBytes and
// a history entry's hooks at maxHooks, so that no entry nears etcd's
// object size limit. IDs are microseconds since 1970 (below 2^53, exact
// in JavaScript), made unique by the API server: a create that finds the
// ID taken takes the next one. So IDs grow with time across hubs, up to
// their clock difference.
const (
	maxTextBytes = 8 << 10
	maxHooks     = 200
)

// idClock hands out increasing IDs from the wall clock.
type idClock struct {
	mu   sync.Mutex
	last uint64
}

func (c *idClock) next(taken uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := max(uint64(time.Now().UnixMicro()), c.last+1, taken+1)
	c.last = id
	return id
}

func capText(s string) string {
	if len(s) <= maxTextBytes {
		return s
	}
	cut := maxTextBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "… (truncated)"
}

func capHistory(e store.HistoryEntry) store.HistoryEntry {
	e.Message = capText(e.Message)
	if len(e.Hooks) > maxHooks {
		e.Hooks = e.Hooks[:maxHooks]
	}
	for i := range e.Hooks {
		e.Hooks[i].Message = capText(e.Hooks[i].Message)
	}
	return e
}

func historyName(id uint64) string { return "h-" + strconv.FormatUint(id, 10) }
func auditName(id uint64) string   { return "a-" + strconv.FormatUint(id, 10) }

func historyLabels(e store.HistoryEntry) map[string]string {
	return labels("history", labelApp, e.App, labelCluster, e.Cluster, labelPair, e.App+"\x00"+e.Cluster)
}

// historyWriters bounds the history appends of one store in flight. A
// commit finishes an operation on every cluster at once, and the hub
// appends each one's history entry as its agent reports it: with one
// request each, unbounded, a thousand agents' appends filled the API
// server's queue and the client's rate limit ahead of the status writes
// that the other replicas (and every replica's API) wait for. History is
// read by people, a few seconds late costs nothing.
const historyWriters = 8

// AppendHistory implements Store. Beyond the history limit the oldest
// entries of the (app, cluster) are deleted. At most historyWriters
// appends are sent at once; the others wait.
func (k *Store) AppendHistory(ctx context.Context, e store.HistoryEntry) (uint64, error) {
	if err := store.CheckName("app", e.App); err != nil {
		return 0, fmt.Errorf("append history: %w", err)
	}
	if err := store.CheckName("cluster", e.Cluster); err != nil {
		return 0, fmt.Errorf("append history of app %s: %w", e.App, err)
	}
	select {
	case k.histSlots <- struct{}{}:
		defer func() { <-k.histSlots }()
	case <-ctx.Done():
		return 0, fmt.Errorf("append history of app %s on cluster %s: %w", e.App, e.Cluster, ctx.Err())
	}
	err := k.check(ctx)
	if err == nil {
		e, err = k.createNumbered(ctx, e)
	}
	if err == nil {
		err = k.trimHistory(ctx, e.App, e.Cluster)
	}
	if err != nil {
		return 0, fmt.Errorf("append history of app %s on cluster %s: %w", e.App, e.Cluster, err)
	}
	return e.ID, nil
}

// createNumbered creates e under the next free ID.
func (k *Store) createNumbered(ctx context.Context, e store.HistoryEntry) (store.HistoryEntry, error) {
	e = capHistory(e)
	var taken uint64
	for {
		e.ID = k.ids.next(taken)
		err := k.ImportHistory(ctx, e)
		if errors.Is(err, store.ErrConflict) {
			taken = e.ID
			continue
		}
		return e, err
	}
}

// ImportHistory stores e under its own ID; ErrConflict if it is taken.
func (k *Store) ImportHistory(ctx context.Context, e store.HistoryEntry) error {
	o, err := newObject(resHistory, historyName(e.ID), historyLabels(e), e)
	if err == nil {
		_, err = k.res(resHistory).Create(ctx, o, metav1.CreateOptions{})
	}
	return apiErr(err)
}

// trimHistory deletes the oldest entries of (app, cluster) beyond the
// limit. Listing the pair's entries on every append made appends cost
// more with every entry stored, in every replica, so the store counts
// instead: a pair is listed (by its label) and trimmed only when the
// entries this store appended since it last looked could have taken it
// past the limit by historySlack. Until then it may hold up to that many
// entries more (also those other replicas appended), which reads leave
// out (listHistory).
func (k *Store) trimHistory(ctx context.Context, app, cluster string) error {
	if k.historyLimit < 0 {
		return nil
	}
	key := app + "\x00" + cluster
	k.histMu.Lock()
	n := k.histCount[key] + 1
	k.histCount[key] = n
	k.histMu.Unlock()
	if n <= k.historyLimit+historySlack(k.historyLimit) {
		return nil
	}
	es, err := k.listHistory(ctx, app, cluster, false)
	if err != nil {
		return err
	}
	kept := len(es)
	for _, e := range es[min(k.historyLimit, len(es)):] {
		if err := k.res(resHistory).Delete(ctx, historyName(e.ID), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		kept--
	}
	k.histMu.Lock()
	// Appends made meanwhile count on top of what the listing saw.
	k.histCount[key] = kept + (k.histCount[key] - n)
	k.histMu.Unlock()
	return nil
}

// historySlack is how many entries above the limit a pair may hold before
// it is trimmed.
func historySlack(limit int) int { return max(1, limit/4) }

// GetHistory implements Store.
func (k *Store) GetHistory(ctx context.Context, id uint64) (store.HistoryEntry, error) {
	var e store.HistoryEntry
	err := k.check(ctx)
	if err == nil {
		_, err = k.get(ctx, resHistory, historyName(id), &e)
	}
	if err != nil {
		return store.HistoryEntry{}, fmt.Errorf("get history %d: %w", id, err)
	}
	return e, nil
}

// listHistory returns the entries of app and cluster ("" = any), newest
// first; capped, only the newest HistoryLimit of each (app, cluster)
// (entries beyond wait for trimHistory).
func (k *Store) listHistory(ctx context.Context, app, cluster string, capped bool) ([]store.HistoryEntry, error) {
	sel := ""
	switch {
	case app != "" && cluster != "":
		sel = labelPair + "=" + labelValue(app+"\x00"+cluster)
	case app != "":
		sel = labelApp + "=" + labelValue(app)
	case cluster != "":
		sel = labelCluster + "=" + labelValue(cluster)
	}
	var out []store.HistoryEntry
	err := k.listSpecs(ctx, resHistory, sel, func(o *unstructured.Unstructured) error {
		var e store.HistoryEntry
		if err := getSpec(o, &e); err != nil {
			return err
		}
		if (app == "" || e.App == app) && (cluster == "" || e.Cluster == cluster) {
			out = append(out, e)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	if err != nil || !capped || k.historyLimit < 0 {
		return out, err
	}
	per := map[[2]string]int{}
	kept := out[:0]
	for _, e := range out {
		p := [2]string{e.App, e.Cluster}
		if per[p] < k.historyLimit {
			per[p]++
			kept = append(kept, e)
		}
	}
	return kept, nil
}

// ListHistory implements Store.
func (k *Store) ListHistory(ctx context.Context, app, cluster string, p store.Page) ([]store.HistoryEntry, string, error) {
	out, next, err := func() ([]store.HistoryEntry, string, error) {
		before, err := decodeIDCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		es, err := k.listHistory(ctx, app, cluster, true)
		if err != nil {
			return nil, "", err
		}
		return pageByID(es, before, p.EffectiveLimit(), func(e store.HistoryEntry) uint64 { return e.ID })
	}()
	if err != nil {
		return nil, "", fmt.Errorf("list history of app %q cluster %q: %w", app, cluster, err)
	}
	return out, next, nil
}

// AppendAudit implements Store. Its Detail is capped.
func (k *Store) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	e.Detail = capText(e.Detail)
	err := k.check(ctx)
	var taken uint64
	for err == nil {
		e.ID = k.ids.next(taken)
		err = k.ImportAudit(ctx, e)
		if errors.Is(err, store.ErrConflict) {
			taken, err = e.ID, nil
			continue
		}
		break
	}
	if err != nil {
		return fmt.Errorf("append audit %s %s: %w", e.Action, e.Target, err)
	}
	return nil
}

// ImportAudit stores e under its own ID; ErrConflict if it is taken.
func (k *Store) ImportAudit(ctx context.Context, e store.AuditEntry) error {
	o, err := newObject(resAudit, auditName(e.ID), labels("audit"), e)
	if err == nil {
		_, err = k.res(resAudit).Create(ctx, o, metav1.CreateOptions{})
	}
	return apiErr(err)
}

// ListAudit implements Store.
func (k *Store) ListAudit(ctx context.Context, p store.Page) ([]store.AuditEntry, string, error) {
	out, next, err := func() ([]store.AuditEntry, string, error) {
		before, err := decodeIDCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		var all []store.AuditEntry
		err = k.listSpecs(ctx, resAudit, "", func(o *unstructured.Unstructured) error {
			var e store.AuditEntry
			if err := getSpec(o, &e); err != nil {
				return err
			}
			all = append(all, e)
			return nil
		})
		if err != nil {
			return nil, "", err
		}
		sort.Slice(all, func(i, j int) bool { return all[i].ID > all[j].ID })
		return pageByID(all, before, p.EffectiveLimit(), func(e store.AuditEntry) uint64 { return e.ID })
	}()
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	return out, next, nil
}

// decodeIDCursor reads a newest-first cursor: the last ID of the previous
// page, as Bolt's; none is MaxUint64 (from the newest).
func decodeIDCursor(after string) (uint64, error) {
	b, err := store.DecodeCursor(after)
	if err != nil {
		return 0, err
	}
	if b == nil {
		return math.MaxUint64, nil
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("cursor %q: %w", after, store.ErrBadCursor)
	}
	return store.KeyID(b), nil
}

// pageByID returns up to limit items of the newest-first list with IDs
// below before, and the cursor of the next page.
func pageByID[T any](newestFirst []T, before uint64, limit int, id func(T) uint64) ([]T, string, error) {
	start := sort.Search(len(newestFirst), func(i int) bool { return id(newestFirst[i]) < before })
	if before == math.MaxUint64 {
		start = 0
	}
	end := min(start+limit, len(newestFirst))
	out := newestFirst[start:end]
	if len(out) == 0 {
		return nil, "", nil
	}
	if end < len(newestFirst) {
		return out, store.EncodeCursor(store.IDKey(id(out[len(out)-1]))), nil
	}
	return out, "", nil
}
