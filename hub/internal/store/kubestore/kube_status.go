package kubestore

import (
	"context"
	"encoding/base64"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"hash/fnv"
	"sort"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Statuses of the Kubernetes store: a cluster's statuses are one
// ClusterStatus object ("<cluster>.0") while they fit in statusPageBytes;
// beyond, they are spread over 2, 4, 8... pages by a hash of the app name.
// Writes of one cluster are serialised in the store and batched: what
// arrives while a write is in flight goes into the next one, one update
// per page. An unchanged status writes nothing.

// statusPageBytes bounds the encoded statuses of one page, well under
// etcd's 1.5 MiB request limit.
const statusPageBytes = 512 << 10

// statusPage is the spec of a ClusterStatus object.
type statusPage struct {
	Cluster string `json:"cluster"`
	Page    int    `json:"page"`
	Pages   int    `json:"pages"`
	// Apps maps app names to base64 deterministic protobuf AppStatus.
	Apps map[string]string `json:"apps,omitempty"`
}

// statusBatch is the changes to one cluster's statuses waiting for a
// write, and the callers waiting for it.
type statusBatch struct {
	changes map[string]*string // app → encoded status, nil to delete
	done    chan struct{}
	err     error
}

func statusPageName(cluster string, page int) string {
	return objectName("", cluster) + "." + strconv.Itoa(page)
}

func statusPageOf(app string, pages int) int {
	h := fnv.New32a()
	h.Write([]byte(app))
	return int(h.Sum32() % uint32(pages))
}

// PutStatus implements Store: it waits for the batch its change went into.
func (k *Store) PutStatus(ctx context.Context, cluster string, st *apiv1alpha1.AppStatus) error {
	if st == nil {
		return fmt.Errorf("put status on cluster %s: nil status: %w", cluster, store.ErrInvalid)
	}
	if err := store.CheckName("app", st.GetApp()); err != nil {
		return fmt.Errorf("put status on cluster %s: %w", cluster, err)
	}
	data, err := store.StatusMarshal.Marshal(st)
	if err != nil {
		return fmt.Errorf("put status of app %s on cluster %s: encode: %w", st.GetApp(), cluster, err)
	}
	enc := base64.StdEncoding.EncodeToString(data)
	if err := k.queueStatus(ctx, cluster, st.GetApp(), &enc); err != nil {
		return fmt.Errorf("put status of app %s on cluster %s: %w", st.GetApp(), cluster, err)
	}
	return nil
}

// DeleteStatus implements Store.
func (k *Store) DeleteStatus(ctx context.Context, cluster, app string) error {
	if err := k.queueStatus(ctx, cluster, app, nil); err != nil {
		return fmt.Errorf("delete status of app %s on cluster %s: %w", app, cluster, err)
	}
	return nil
}

func (k *Store) queueStatus(ctx context.Context, cluster, app string, enc *string) error {
	if err := k.check(ctx); err != nil {
		return err
	}
	k.statusMu.Lock()
	b := k.pending[cluster]
	if b == nil {
		b = &statusBatch{changes: map[string]*string{}, done: make(chan struct{})}
		k.pending[cluster] = b
	}
	b.changes[app] = enc
	if !k.writing[cluster] {
		k.writing[cluster] = true
		k.wg.Add(1)
		go k.statusWriter(cluster)
	}
	k.statusMu.Unlock()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// statusWriter writes the cluster's batches one after the other until
// none is waiting.
func (k *Store) statusWriter(cluster string) {
	defer k.wg.Done()
	for {
		k.statusMu.Lock()
		b := k.pending[cluster]
		delete(k.pending, cluster)
		if b == nil {
			delete(k.writing, cluster)
			k.statusMu.Unlock()
			return
		}
		k.statusMu.Unlock()
		// A batch taken is written whole, also while the store closes.
		b.err = k.writeStatus(context.Background(), cluster, b.changes)
		close(b.done)
	}
}

// writeStatus applies changes to the cluster's status pages. The first
// try starts from the watch cache (no request but the write at steady
// state); a conflict, stale cache, retries from the API server.
func (k *Store) writeStatus(ctx context.Context, cluster string, changes map[string]*string) error {
	if err := k.clusterExists(ctx, cluster); err != nil {
		deletesOnly := true
		for _, c := range changes {
			deletesOnly = deletesOnly && c == nil
		}
		if deletesOnly {
			return nil
		}
		return err
	}
	tries := 0
	return onConflict(ctx, func() error {
		var pages map[int]loadedPage
		cached := false
		if tries == 0 {
			pages, cached = k.cachedStatusPages(ctx, cluster)
		}
		conflicted := tries > 0
		tries++
		if !cached {
			var err error
			if pages, err = k.statusPages(ctx, cluster); err != nil {
				return err
			}
		}
		apps, n := map[string]string{}, 1
		for _, p := range pages {
			n = max(n, p.spec.Pages)
			for a, s := range p.spec.Apps {
				apps[a] = s
			}
		}
		changed := false
		for a, s := range changes {
			old, had := apps[a]
			switch {
			case s == nil && had:
				delete(apps, a)
				changed = true
			case s != nil && had && old != *s && conflicted && observedLater(old, *s):
				// Another replica wrote this app's status since this
				// write began, from a later report of the agent: keep it.
			case s != nil && (!had || old != *s):
				apps[a] = *s
				changed = true
			}
		}
		if !changed {
			return nil
		}
		size := 0
		for a, s := range apps {
			size += len(a) + len(s) + 8
		}
		for size/n > statusPageBytes {
			n *= 2
		}
		want := make([]map[string]string, n)
		for a, s := range apps {
			i := statusPageOf(a, n)
			if want[i] == nil {
				want[i] = map[string]string{}
			}
			want[i][a] = s
		}
		for i := range n {
			if err := k.writeStatusPage(ctx, cluster, i, n, want[i], pages[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// observedLater reports whether the encoded status stored was observed by
// the agent after the encoded status cur (both decodable, both with an
// observation time). An agent's reports of one app are in time order, so
// of two replicas writing the same app's status, the one with the later
// report is the agent's word; the other's write, which conflicted, is
// retried without replacing it.
func observedLater(stored, cur string) bool {
	at := func(enc string) (time.Time, bool) {
		data, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return time.Time{}, false
		}
		st := new(apiv1alpha1.AppStatus)
		if err := proto.Unmarshal(data, st); err != nil || st.GetObservedAt() == nil {
			return time.Time{}, false
		}
		return st.GetObservedAt().AsTime(), true
	}
	s, ok1 := at(stored)
	n, ok2 := at(cur)
	return ok1 && ok2 && s.After(n)
}

type loadedPage struct {
	obj  *unstructured.Unstructured
	spec statusPage
}

// clusterExists is nil if the cluster is in the watch cache or, if not
// there, in the API server.
func (k *Store) clusterExists(ctx context.Context, cluster string) error {
	if _, found, _ := k.cachedObject(ctx, k.cache().clusters, objectName("", cluster)); found {
		return nil
	}
	_, err := k.GetCluster(ctx, cluster)
	return err
}

// cachedStatusPages reads the cluster's pages from the watch cache by
// name (page 0 says how many there are); false if the cache cannot tell.
func (k *Store) cachedStatusPages(ctx context.Context, cluster string) (map[int]loadedPage, bool) {
	w := k.cache().statuses
	out := map[int]loadedPage{}
	for i, n := 0, 1; i < n; i++ {
		o, found, ok := k.cachedObject(ctx, w, statusPageName(cluster, i))
		if !ok {
			return nil, false
		}
		if !found {
			continue
		}
		var sp statusPage
		if err := getSpec(o, &sp); err != nil || sp.Cluster != cluster {
			return nil, false
		}
		n = max(n, sp.Pages)
		out[sp.Page] = loadedPage{o, sp}
	}
	return out, true
}

// statusPages reads the cluster's pages by number.
func (k *Store) statusPages(ctx context.Context, cluster string) (map[int]loadedPage, error) {
	mark := k.watch.statuses.listing()
	items, err := k.list(ctx, resStatus, labelCluster+"="+labelValue(cluster))
	if err != nil {
		return nil, err
	}
	k.watch.statuses.listed(mark)
	out := map[int]loadedPage{}
	for i := range items {
		var sp statusPage
		if err := getSpec(&items[i], &sp); err != nil {
			return nil, err
		}
		if sp.Cluster == cluster {
			out[sp.Page] = loadedPage{&items[i], sp}
		}
	}
	return out, nil
}

func (k *Store) writeStatusPage(ctx context.Context, cluster string, i, n int, apps map[string]string, cur loadedPage) error {
	sp := statusPage{Cluster: cluster, Page: i, Pages: n, Apps: apps}
	if cur.obj == nil {
		if len(apps) == 0 && i > 0 {
			return nil
		}
		o, err := newObject(resStatus, statusPageName(cluster, i), labels("status", labelCluster, cluster), sp)
		if err != nil {
			return err
		}
		o, err = k.res(resStatus).Create(ctx, o, metav1.CreateOptions{})
		k.noteWrite(resStatus, o, err)
		return err
	}
	if cur.spec.Pages == n && equalApps(cur.spec.Apps, apps) {
		return nil
	}
	if err := setSpec(cur.obj, sp); err != nil {
		return err
	}
	o, err := k.res(resStatus).Update(ctx, cur.obj, metav1.UpdateOptions{})
	k.noteWrite(resStatus, o, err)
	if apierrors.IsNotFound(err) {
		return apierrors.NewConflict(resStatus.gvr().GroupResource(), cur.obj.GetName(), err)
	}
	return err
}

func equalApps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// ListStatus implements Store.
func (k *Store) ListStatus(ctx context.Context, cluster string) ([]store.StatusRecord, error) {
	out, err := k.listStatus(ctx, cluster)
	if err != nil {
		if cluster == "" {
			return nil, fmt.Errorf("list statuses: %w", err)
		}
		return nil, fmt.Errorf("list statuses of cluster %s: %w", cluster, err)
	}
	return out, nil
}

func (k *Store) listStatus(ctx context.Context, cluster string) ([]store.StatusRecord, error) {
	sel := ""
	if cluster != "" {
		sel = labelCluster + "=" + labelValue(cluster)
	}
	var out []store.StatusRecord
	err := k.listSpecs(ctx, resStatus, sel, func(o *unstructured.Unstructured) error {
		var sp statusPage
		if err := getSpec(o, &sp); err != nil {
			return err
		}
		if cluster != "" && sp.Cluster != cluster {
			return nil
		}
		for app, enc := range sp.Apps {
			data, err := base64.StdEncoding.DecodeString(enc)
			if err != nil {
				return fmt.Errorf("decode status of app %s on cluster %s: %w", app, sp.Cluster, err)
			}
			st := new(apiv1alpha1.AppStatus)
			if err := proto.Unmarshal(data, st); err != nil {
				return fmt.Errorf("decode status of app %s on cluster %s: %w", app, sp.Cluster, err)
			}
			out = append(out, store.StatusRecord{Cluster: sp.Cluster, Status: st})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Cluster != out[j].Cluster {
			return out[i].Cluster < out[j].Cluster
		}
		return out[i].Status.GetApp() < out[j].Status.GetApp()
	})
	return out, err
}
