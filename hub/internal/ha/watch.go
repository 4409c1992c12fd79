package ha

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/flotilla-cd/flotilla/hub/internal/store"

	"github.com/flotilla-cd/flotilla/hub/internal/store/kubestore"
)

// RefreshConfigMap is where replicas announce the repositories a webhook
// or a refresh made them poll: key a hash of the URL, value the URL, who
// announced it and when.
const RefreshConfigMap = "flotilla-hub-refresh"

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// isAnswer reports whether err came from the API server itself (it
// answered, if with a refusal) rather than from the way to it.
func isAnswer(err error) bool {
	var st apierrors.APIStatus
	return errors.As(err, &st) && !apierrors.IsTimeout(err) && !apierrors.IsServerTimeout(err) &&
		!apierrors.IsServiceUnavailable(err) && !apierrors.IsInternalError(err)
}

func unstructuredOf(obj any) *unstructured.Unstructured {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	o, _ := obj.(*unstructured.Unstructured)
	return o
}

// watchClusters: a change of targeting (labels, enrolment) reconciles; a
// re-enrolment or revocation closes a stream held here with a certificate
// no longer accepted; a removal forgets the cluster here too.
func (r *Replica) watchClusters(inf cache.SharedIndexInformer) (cache.ResourceEventHandlerRegistration, error) {
	return inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o := unstructuredOf(obj); o != nil {
				if c, err := kubestore.ClusterOf(o); err == nil {
					r.setHolder(c.Name, c.ConnectedTo)
				}
			}
			r.d.Controller.Trigger()
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, n := unstructuredOf(oldObj), unstructuredOf(newObj)
			if o == nil || n == nil {
				return
			}
			oc, err1 := kubestore.ClusterOf(o)
			nc, err2 := kubestore.ClusterOf(n)
			if err1 != nil || err2 != nil {
				return
			}
			r.d.Agents.Revalidate(nc)
			r.setHolder(nc.Name, nc.ConnectedTo)
			// LastSeen, the agent version and the stream's replica change
			// on every connection; they target nothing.
			oc.LastSeen, oc.AgentVersion, oc.ConnectedTo = nc.LastSeen, nc.AgentVersion, nc.ConnectedTo
			if !reflect.DeepEqual(oc, nc) {
				r.d.Controller.Trigger()
			}
		},
		DeleteFunc: func(obj any) {
			o := unstructuredOf(obj)
			if o == nil {
				return
			}
			if c, err := kubestore.ClusterOf(o); err == nil {
				r.setHolder(c.Name, "")
				r.d.Fleet.Forget(c.Name)
			}
			r.d.Controller.Trigger()
		},
	})
}

// watchStatuses hands statuses other replicas stored to the fleet (which
// ignores them for agents connected here).
func (r *Replica) watchStatuses(inf cache.SharedIndexInformer) (cache.ResourceEventHandlerRegistration, error) {
	apps := func(obj any) (string, map[string]bool, bool) {
		o := unstructuredOf(obj)
		if o == nil {
			return "", nil, false
		}
		cluster, sts, err := kubestore.StatusesOf(o)
		if err != nil {
			r.log.Warn("status page not readable", "object", o.GetName(), "error", err)
			return "", nil, false
		}
		m := map[string]bool{}
		for _, st := range sts {
			m[st.GetApp()] = true
		}
		return cluster, m, true
	}
	apply := func(oldObj, newObj any) {
		var removed []string
		var cluster string
		if oldObj != nil {
			c, old, ok := apps(oldObj)
			if !ok {
				return
			}
			cluster = c
			var now map[string]bool
			if newObj != nil {
				_, now, _ = apps(newObj)
			}
			for a := range old {
				if !now[a] {
					removed = append(removed, a)
				}
			}
		}
		if newObj != nil {
			c, sts, err := kubestore.StatusesOf(unstructuredOf(newObj))
			if err != nil {
				return
			}
			r.d.Fleet.ApplyRemote(c, sts, removed)
			return
		}
		r.d.Fleet.ApplyRemote(cluster, nil, removed)
	}
	return inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { apply(nil, obj) },
		UpdateFunc: func(oldObj, newObj any) { apply(oldObj, newObj) },
		DeleteFunc: func(obj any) { apply(obj, nil) },
	})
}

// watchPins gives the controller the whole set of pins on every change.
func (r *Replica) watchPins(inf cache.SharedIndexInformer) {
	reload := func(any) {
		var pins []store.Pin
		for _, obj := range inf.GetStore().List() {
			o := unstructuredOf(obj)
			if o == nil {
				continue
			}
			var p struct {
				Spec store.Pin `json:"spec"`
			}
			b, _ := json.Marshal(o.Object)
			if err := json.Unmarshal(b, &p); err == nil {
				pins = append(pins, p.Spec)
			}
		}
		r.d.Controller.ReplacePins(pins)
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: reload, UpdateFunc: func(_, n any) { reload(n) }, DeleteFunc: reload,
	})
}

// watchRollouts gives the controller the rollouts other replicas wrote:
// the Lease holder's decisions (every replica renders each cluster by
// them) and people's operations made on any replica (the holder acts on
// them).
func (r *Replica) watchRollouts(inf cache.SharedIndexInformer) {
	observe := func(obj any) {
		o := unstructuredOf(obj)
		if o == nil {
			return
		}
		rec, err := kubestore.RolloutOf(o)
		if err != nil {
			r.log.Warn("rollout not readable", "object", o.GetName(), "error", err)
			return
		}
		r.d.Controller.ObserveRollout(rec, true)
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, n any) { observe(n) },
		DeleteFunc: func(obj any) {
			if o := unstructuredOf(obj); o != nil {
				if rec, err := kubestore.RolloutOf(o); err == nil {
					r.d.Controller.ForgetRollout(rec.App)
				}
			}
		},
	})
}

type announcement struct {
	URL string    `json:"url"`
	By  string    `json:"by"`
	At  time.Time `json:"at"`
}

func announcements(obj any) map[string]announcement {
	out := map[string]announcement{}
	o := unstructuredOf(obj)
	if o == nil {
		return out
	}
	data, _, _ := unstructured.NestedStringMap(o.Object, "data")
	for k, v := range data {
		var a announcement
		if json.Unmarshal([]byte(v), &a) == nil {
			out[k] = a
		}
	}
	return out
}

// watchRefresh polls here what another replica announced it polled.
func (r *Replica) watchRefresh(inf cache.SharedIndexInformer) {
	handle := func(oldObj, newObj any) {
		old := map[string]announcement{}
		if oldObj != nil {
			old = announcements(oldObj)
		}
		hit := false
		for k, a := range announcements(newObj) {
			if a.By == r.opts.Identity || old[k] == a {
				continue
			}
			r.log.Debug("repository polled by another replica: polling it here", "repo", a.URL, "by", a.By)
			if r.d.Git.Refresh(a.URL) {
				hit = true
			}
		}
		if hit {
			r.d.Controller.Trigger()
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if !initial { // the first list is history, not news
				handle(nil, obj)
			}
		},
		UpdateFunc: handle,
	})
}

// Announce tells the other replicas that repoURL was polled here on a
// webhook or refresh, so that they poll it too. It does not wait.
func (r *Replica) Announce(repoURL string) {
	r.pubMu.Lock()
	r.pending[repoURL] = true
	r.pubMu.Unlock()
	select {
	case r.pubWake <- struct{}{}:
	default:
	}
}

// publish writes announcements, all that queued up in one update.
func (r *Replica) publish(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.pubWake:
		}
		r.pubMu.Lock()
		urls := r.pending
		r.pending = map[string]bool{}
		r.pubMu.Unlock()
		if err := r.announce(ctx, urls); err != nil && ctx.Err() == nil {
			r.log.Warn("announce repository refresh to the other replicas", "error", err)
		} else {
			r.log.Debug("repository refresh announced to the other replicas", "repos", len(urls))
		}
	}
}

func (r *Replica) announce(ctx context.Context, urls map[string]bool) error {
	data := map[string]string{}
	now := time.Now().UTC()
	for u := range urls {
		sum := sha256.Sum256([]byte(u))
		b, _ := json.Marshal(announcement{URL: u, By: r.opts.Identity, At: now})
		data[hex.EncodeToString(sum[:12])] = string(b)
	}
	cms := r.core.CoreV1().ConfigMaps(r.d.Store.Namespace())
	return retry.OnError(retry.DefaultBackoff, func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
	}, func() error {
		cm, err := cms.Get(ctx, RefreshConfigMap, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = cms.Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: RefreshConfigMap, Labels: map[string]string{"app.kubernetes.io/managed-by": "flotilla-hub"}},
				Data:       data,
			}, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		maps.Copy(cm.Data, data)
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
}
