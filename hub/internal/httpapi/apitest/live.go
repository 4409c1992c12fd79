package apitest

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flotilla-cd/flotilla/hub/internal/liveview"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// The simulated agent's live view: it answers the hub's LiveRequests over
// the real broker (liveview.Broker.Attach and Agent.Deliver, as agentapi's
// stream does) from the bundles it applied, as a cluster would show them:
// each object of the app Healthy, a Deployment owning one ReplicaSet that
// owns one running Pod, a Service owning one EndpointSlice. Pod logs are
// what the test wrote with WriteLog; events what it put in Events.

// simNode is one object of the simulated cluster.
type simNode struct {
	ref        *apiv1alpha1.ObjectRef
	uid        string
	parent     string
	inApp      bool
	message    string
	containers []string
	json       []byte
}

// liveCall is one request the simulated agent is serving.
type liveCall struct {
	cancel context.CancelFunc
	credit chan int64
}

// startLive attaches a to the hub's broker.
func (a *SimAgent) startLive() {
	a.liveIn = make(chan *apiv1alpha1.LiveRequest, 4096)
	a.liveAgent = a.h.Live.Attach(a.Cluster, true, func(m *apiv1alpha1.HubMessage) {
		select {
		case a.liveIn <- m.GetLive():
		default:
			panic("sim agent " + a.Cluster + ": live queue full")
		}
	})
	a.logWoken = make(chan struct{})
	go a.liveLoop()
}

// liveLoop takes the hub's live messages in order: a request starts its
// own goroutine, CANCEL and CREDIT reach the running one.
func (a *SimAgent) liveLoop() {
	calls := map[string]*liveCall{}
	ended := make(chan string, 64)
	for {
		select {
		case <-a.done:
			for _, c := range calls {
				c.cancel()
			}
			return
		case id := <-ended:
			delete(calls, id)
		case req := <-a.liveIn:
			switch req.GetKind() {
			case apiv1alpha1.LiveRequest_KIND_CANCEL:
				if c := calls[req.GetId()]; c != nil {
					c.cancel()
				}
			case apiv1alpha1.LiveRequest_KIND_CREDIT:
				if c := calls[req.GetId()]; c != nil {
					c.credit <- req.GetCreditBytes()
				}
			default:
				ctx, cancel := context.WithCancel(a.h.ctx)
				c := &liveCall{cancel: cancel, credit: make(chan int64, 1024)}
				calls[req.GetId()] = c
				go func() {
					defer func() { ended <- req.GetId() }()
					defer cancel()
					a.serveLive(ctx, req, c)
				}()
			}
		}
	}
}

// WriteLog appends lines to pod's log (the simulated container's output)
// and wakes its followers.
func (a *SimAgent) WriteLog(pod string, lines ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.logs == nil {
		a.logs = map[string][]string{}
	}
	a.logs[pod] = append(a.logs[pod], lines...)
	close(a.logWoken)
	a.logWoken = make(chan struct{})
}

// SetEvents replaces the simulated cluster's events.
func (a *SimAgent) SetEvents(events ...*apiv1alpha1.LiveEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = events
}

func (a *SimAgent) answer(req *apiv1alpha1.LiveRequest, r *apiv1alpha1.LiveResponse) {
	r.Id = req.GetId()
	a.liveAgent.Deliver(r)
}

func (a *SimAgent) fail(req *apiv1alpha1.LiveRequest, code apiv1alpha1.LiveResponse_Code, format string, args ...any) {
	a.answer(req, &apiv1alpha1.LiveResponse{Done: true, Code: code, Message: fmt.Sprintf(format, args...)})
}

func (a *SimAgent) serveLive(ctx context.Context, req *apiv1alpha1.LiveRequest, c *liveCall) {
	a.mu.Lock()
	nodes, held := a.tree(req.GetApp())
	a.mu.Unlock()
	if !held {
		a.fail(req, apiv1alpha1.LiveResponse_CODE_NOT_FOUND, "application %q is not held by this agent", req.GetApp())
		return
	}
	switch req.GetKind() {
	case apiv1alpha1.LiveRequest_KIND_TREE:
		r := &apiv1alpha1.LiveResponse{Done: true}
		for _, n := range nodes {
			ln := &apiv1alpha1.LiveNode{Ref: n.ref, Uid: n.uid, InApp: n.inApp, Health: apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY, Message: n.message, Containers: n.containers, Created: timestamppb.New(Epoch.Add(time.Hour))}
			if n.parent != "" {
				ln.ParentUids = []string{n.parent}
			}
			r.Nodes = append(r.Nodes, ln)
		}
		a.answer(req, r)
		return
	case apiv1alpha1.LiveRequest_KIND_EVENTS:
		a.mu.Lock()
		evs := slices.Clone(a.events)
		a.mu.Unlock()
		r := &apiv1alpha1.LiveResponse{Done: true}
		for _, e := range evs {
			if req.GetObject().GetName() == "" || inSubtree(nodes, req.GetObject(), e.GetObject()) {
				r.Events = append(r.Events, e)
			}
		}
		a.answer(req, r)
		return
	}
	n, code, msg := lookup(nodes, req.GetApp(), req.GetObject())
	if code != apiv1alpha1.LiveResponse_CODE_OK {
		a.fail(req, code, "%s", msg)
		return
	}
	switch req.GetKind() {
	case apiv1alpha1.LiveRequest_KIND_MANIFEST:
		a.answer(req, &apiv1alpha1.LiveResponse{Done: true, ManifestJson: n.json})
	case apiv1alpha1.LiveRequest_KIND_ACTION:
		a.action(req, n)
	case apiv1alpha1.LiveRequest_KIND_LOGS:
		a.podLog(ctx, req, c, nodes, n)
	default:
		a.fail(req, apiv1alpha1.LiveResponse_CODE_INVALID, "unknown live request kind %d", req.GetKind())
	}
}

func (a *SimAgent) action(req *apiv1alpha1.LiveRequest, n *simNode) {
	want := map[string][]string{"restart": {"apps/Deployment", "apps/StatefulSet", "apps/DaemonSet"}, "delete": {"/Pod"}, "run": {"batch/CronJob"}}[req.GetAction()]
	if want == nil {
		a.fail(req, apiv1alpha1.LiveResponse_CODE_INVALID, "unknown action %q (restart, delete or run)", req.GetAction())
		return
	}
	if !slices.Contains(want, n.ref.GetGroup()+"/"+n.ref.GetKind()) {
		a.fail(req, apiv1alpha1.LiveResponse_CODE_INVALID, "action %s does not apply to %s", req.GetAction(), describe(n.ref))
		return
	}
	if req.GetAction() != "delete" && !n.inApp {
		a.fail(req, apiv1alpha1.LiveResponse_CODE_NOT_OWNED, "%s is not an object of application %q", describe(n.ref), req.GetApp())
		return
	}
	a.mu.Lock()
	now := a.tick().Format(time.RFC3339)
	a.mu.Unlock()
	msg := map[string]string{
		"restart": fmt.Sprintf("%s restarted at %s", describe(n.ref), now),
		"delete":  describe(n.ref) + " deleted",
		"run":     fmt.Sprintf("job %s/%s-manual created from %s", n.ref.GetNamespace(), n.ref.GetName(), describe(n.ref)),
	}[req.GetAction()]
	a.answer(req, &apiv1alpha1.LiveResponse{Done: true, Message: msg})
}

// podLog streams the log of n (a Pod, or a workload's Pod) within the
// credit the hub grants; a followed log goes on until cancelled.
func (a *SimAgent) podLog(ctx context.Context, req *apiv1alpha1.LiveRequest, c *liveCall, nodes []*simNode, n *simNode) {
	pod := n
	if n.ref.GetKind() != "Pod" {
		pod = nil
		for _, m := range nodes {
			if m.ref.GetKind() == "Pod" && inSubtree(nodes, n.ref, m.ref) {
				pod = m
			}
		}
		if pod == nil {
			a.fail(req, apiv1alpha1.LiveResponse_CODE_NOT_FOUND, "%s owns no Pod", describe(n.ref))
			return
		}
	}
	container := req.GetLogs().GetContainer()
	if container == "" {
		container = pod.containers[0]
	} else if !slices.Contains(pod.containers, container) {
		a.fail(req, apiv1alpha1.LiveResponse_CODE_INVALID, "container %s is not in pod %s", container, pod.ref.GetName())
		return
	}
	credit := req.GetCreditBytes()
	first := true
	sent := 0
	for {
		a.mu.Lock()
		lines, woken := a.logs[pod.ref.GetName()], a.logWoken
		a.mu.Unlock()
		if first {
			if t := int(req.GetLogs().GetTailLines()); t > 0 && t < len(lines) {
				sent = len(lines) - t
			}
		}
		data := ""
		if sent < len(lines) {
			data = strings.Join(lines[sent:], "\n") + "\n"
			sent = len(lines)
		}
		if data != "" || first {
			r := &apiv1alpha1.LiveResponse{LogData: []byte(data)}
			if first {
				r.Pod, r.Container = pod.ref.GetName(), container
			}
			cost := int64(max(len(data), liveview.MinFrameCost))
			for credit < cost {
				select {
				case g := <-c.credit:
					credit += g
				case <-ctx.Done():
					return
				}
			}
			credit -= cost
			if !req.GetLogs().GetFollow() {
				r.Done = true
				a.answer(req, r)
				return
			}
			a.answer(req, r)
			first = false
		}
		select {
		case <-woken:
		case g := <-c.credit:
			credit += g
		case <-ctx.Done():
			return
		}
	}
}

// tree lists the simulated cluster's objects of app; a.mu is held.
func (a *SimAgent) tree(app string) ([]*simNode, bool) {
	b := a.appliedBundle[app]
	if b == nil {
		return nil, a.held[app] != nil
	}
	objs, err := manifest.DecodeObjects(b)
	if err != nil {
		panic(fmt.Sprintf("sim agent %s: decode bundle of %s: %v", a.Cluster, app, err))
	}
	var out []*simNode
	for _, o := range objs {
		if o.GetNamespace() == "" && b.GetNamespace() != "" && namespaced(o.GetKind()) {
			o.SetNamespace(b.GetNamespace())
		}
		n := node(o, "", true, "")
		out = append(out, n)
		ns, name := o.GetNamespace(), o.GetName()
		switch o.GroupVersionKind().GroupKind().String() {
		case "Deployment.apps":
			rs := simObject("apps/v1", "ReplicaSet", ns, name+"-"+suffix(name, 10))
			rsn := node(rs, n.uid, false, "")
			pod := simObject("v1", "Pod", ns, rs.GetName()+"-"+suffix(rs.GetName(), 5))
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			var names []string
			for _, c := range cs {
				if m, ok := c.(map[string]any); ok {
					names = append(names, fmt.Sprint(m["name"]))
				}
			}
			podn := node(pod, rsn.uid, false, "Running")
			podn.containers = names
			out = append(out, rsn, podn)
		case "Service":
			eps := simObject("discovery.k8s.io/v1", "EndpointSlice", ns, name+"-"+suffix(name, 5))
			out = append(out, node(eps, n.uid, false, ""))
		}
	}
	return out, true
}

func namespaced(kind string) bool {
	return !slices.Contains([]string{"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}, kind)
}

func simObject(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func node(o *unstructured.Unstructured, parent string, inApp bool, message string) *simNode {
	gvk := o.GroupVersionKind()
	ref := &apiv1alpha1.ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: o.GetNamespace(), Name: o.GetName()}
	uid := strings.ToLower(fmt.Sprintf("uid-%s-%s", gvk.Kind, o.GetName()))
	c := o.DeepCopy()
	c.SetUID(types.UID(uid))
	if parent != "" {
		c.SetOwnerReferences(nil)
	}
	if c.GetKind() == "Secret" {
		for _, f := range []string{"data", "stringData"} {
			if m, ok := c.Object[f].(map[string]any); ok {
				for k := range m {
					m[k] = manifest.Redacted
				}
			}
		}
	}
	j, err := json.Marshal(c.Object)
	if err != nil {
		panic(err)
	}
	return &simNode{ref: ref, uid: uid, parent: parent, inApp: inApp, message: message, json: j}
}

// suffix is a deterministic stand-in for a controller's random name
// suffix, in the alphabet Kubernetes uses.
func suffix(name string, n int) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	v := h.Sum64()
	out := make([]byte, n)
	for i := range out {
		out[i] = alphabet[v%uint64(len(alphabet))]
		v /= uint64(len(alphabet))
	}
	return string(out)
}

// lookup finds ref among nodes: the answer codes the real agent gives.
func lookup(nodes []*simNode, app string, ref *apiv1alpha1.ObjectRef) (*simNode, apiv1alpha1.LiveResponse_Code, string) {
	if ref.GetKind() == "" || ref.GetName() == "" {
		return nil, apiv1alpha1.LiveResponse_CODE_INVALID, "the request names no object (kind and name are needed)"
	}
	for _, n := range nodes {
		if n.ref.GetKind() == ref.GetKind() && n.ref.GetGroup() == ref.GetGroup() && n.ref.GetName() == ref.GetName() &&
			(ref.GetNamespace() == "" || ref.GetNamespace() == n.ref.GetNamespace()) {
			return n, apiv1alpha1.LiveResponse_CODE_OK, ""
		}
	}
	return nil, apiv1alpha1.LiveResponse_CODE_NOT_OWNED, fmt.Sprintf("%s is neither an object of application %q nor owned by one", describe(ref), app)
}

// inSubtree says whether obj is root or owned, directly or not, by it.
func inSubtree(nodes []*simNode, root, obj *apiv1alpha1.ObjectRef) bool {
	byUID := map[string]*simNode{}
	var at *simNode
	for _, n := range nodes {
		byUID[n.uid] = n
		if n.ref.GetKind() == obj.GetKind() && n.ref.GetName() == obj.GetName() {
			at = n
		}
	}
	for at != nil {
		if at.ref.GetKind() == root.GetKind() && at.ref.GetName() == root.GetName() {
			return true
		}
		at = byUID[at.parent]
	}
	return false
}

func describe(ref *apiv1alpha1.ObjectRef) string {
	k := ref.GetKind()
	if ref.GetGroup() != "" {
		k += "." + ref.GetGroup()
	}
	if ref.GetNamespace() != "" {
		return fmt.Sprintf("%s %s/%s", k, ref.GetNamespace(), ref.GetName())
	}
	return k + " " + ref.GetName()
}
