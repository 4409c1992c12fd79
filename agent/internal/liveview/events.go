package liveview

import (
	"context"
	"fmt"
	"sort"

	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// events answers EVENTS: the events of the object and of everything it
// owns (of the whole tree when the request names no object), oldest first.
func (s *Server) events(ctx context.Context, app string, ref *apiv1alpha1.ObjectRef) (*apiv1alpha1.LiveResponse, error) {
	var nodes []*node
	if ref.GetKind() == "" && ref.GetName() == "" {
		t, err := s.load(ctx, app)
		if err != nil {
			return nil, err
		}
		nodes = t.nodes
	} else {
		t, n, err := s.lookup(ctx, app, ref)
		if err != nil {
			return nil, err
		}
		nodes = t.descendants(n)
	}
	uids := map[string]bool{}
	namespaces := map[string]bool{}
	for _, d := range nodes {
		if d.obj != nil {
			uids[string(d.obj.GetUID())] = true
			namespaces[d.obj.GetNamespace()] = true
		}
	}
	var out []*apiv1alpha1.LiveEvent
	var times []metav1.Time
	for ns := range namespaces {
		list, err := s.dyn.Resource(eventsGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list events in namespace %q: %w", ns, err)
		}
		for i := range list.Items {
			ev := &corev1.Event{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, ev); err != nil {
				return nil, fmt.Errorf("event %s/%s: %w", ns, list.Items[i].GetName(), err)
			}
			if !uids[string(ev.InvolvedObject.UID)] {
				continue
			}
			out = append(out, liveEvent(ev))
			times = append(times, eventTime(ev))
		}
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return times[idx[a]].Before(&times[idx[b]]) })
	sorted := make([]*apiv1alpha1.LiveEvent, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	return &apiv1alpha1.LiveResponse{Events: sorted}, nil
}

// eventsGVR is the core group's Event (read with the dynamic client:
// the typed clientset would link every API group into the agent).
var eventsGVR = schema.GroupVersionResource{Version: "v1", Resource: "events"}

// eventTime is when ev was last seen.
func eventTime(ev *corev1.Event) metav1.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp
	case !ev.EventTime.IsZero():
		return metav1.Time{Time: ev.EventTime.Time}
	default:
		return ev.CreationTimestamp
	}
}

func liveEvent(ev *corev1.Event) *apiv1alpha1.LiveEvent {
	io := ev.InvolvedObject
	gv, _ := splitAPIVersion(io.APIVersion)
	src := ev.Source.Component
	if src == "" {
		src = ev.ReportingController
	}
	count := ev.Count
	if count == 0 && ev.Series != nil {
		count = ev.Series.Count
	}
	return &apiv1alpha1.LiveEvent{
		Object:   &apiv1alpha1.ObjectRef{Group: gv[0], Version: gv[1], Kind: io.Kind, Namespace: io.Namespace, Name: io.Name},
		Type:     ev.Type,
		Reason:   ev.Reason,
		Message:  ev.Message,
		Count:    count,
		LastSeen: timestamppb.New(eventTime(ev).Time),
		Source:   src,
	}
}

// splitAPIVersion splits "group/version" (or "version") into group and
// version.
func splitAPIVersion(av string) ([2]string, bool) {
	for i := 0; i < len(av); i++ {
		if av[i] == '/' {
			return [2]string{av[:i], av[i+1:]}, true
		}
	}
	return [2]string{"", av}, false
}
