package policy

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
)

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// WatchConfigMap keeps the policy of ConfigMap namespace/name in set until
// ctx ends. It returns once the ConfigMap has been read (or found missing)
// the first time, so that nothing is applied before the policy is known.
// A missing or malformed ConfigMap refuses everything (fail closed): the
// agent was told to take its policy from there.
func WatchConfigMap(ctx context.Context, dyn dynamic.Interface, namespace, name string, set *Set, log hclog.Logger) error {
	source := fmt.Sprintf("ConfigMap %s/%s", namespace, name)
	// A plain informer over the dynamic client: dynamicinformer would link
	// client-go's typed informers, every API group, into the agent.
	field := fields.OneTermEqualSelector("metadata.name", name).String()
	cms := dyn.Resource(configMaps).Namespace(namespace)
	inf := cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = field
			return cms.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = field
			return cms.Watch(ctx, o)
		},
	}, &unstructured.Unstructured{}, 0, cache.Indexers{})
	apply := func(obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		data, _, _ := unstructured.NestedStringMap(u.Object, "data")
		p, err := FromData(source, data)
		if err != nil {
			log.Error("cluster policy unreadable; refusing every object until it is fixed", "source", source, "error", err)
			p = Policy{Source: source, Broken: fmt.Sprintf("%s could not be read (%v); nothing is applied until it is fixed", source, err)}
		} else {
			log.Info("cluster policy", "source", source, "namespaces", p.Namespaces, "allow_kinds", p.AllowKinds, "deny_kinds", p.DenyKinds, "cluster_scoped", !p.NoClusterScoped)
		}
		set.Update(p)
	}
	missing := func() {
		log.Error("cluster policy ConfigMap missing; refusing every object until it exists", "source", source)
		set.Update(Policy{Source: source, Broken: source + " does not exist; nothing is applied until it does"})
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    apply,
		UpdateFunc: func(_, o any) { apply(o) },
		DeleteFunc: func(any) { missing() },
	}); err != nil {
		return fmt.Errorf("watch %s: %w", source, err)
	}
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("watch %s: %w", source, context.Cause(ctx))
	}
	if len(inf.GetStore().ListKeys()) == 0 {
		missing()
	}
	return nil
}
