package deploy

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func deployments(t *testing.T, objs []*unstructured.Unstructured) map[string]*appsv1.Deployment {
	t.Helper()
	out := map[string]*appsv1.Deployment{}
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
			t.Fatalf("Deployment %s: %v", o.GetName(), err)
		}
		out[d.Name] = &d
	}
	return out
}

// isHA reports whether a rendering is the highly available hub
// (deploy/hub-ha, the chart's hub.ha), which haPolicy checks instead of
// the single hub's replica, strategy, state volume and token rules.
func isHA(rendering string) bool {
	return strings.HasSuffix(rendering, "hub-ha") || strings.HasSuffix(rendering, "hub ha")
}

// TestDeploymentPolicy checks what an operator relies on in every
// rendering: one replica replaced with Recreate (the HA hub: see
// TestHAPolicy), non-root with a read-only
// root filesystem and no privilege escalation, resources, probes, and for
// the hub its state volume where --state-dir points.
func TestDeploymentPolicy(t *testing.T) {
	for name, objs := range renderAll(t) {
		for _, d := range deployments(t, objs) {
			where := name + ": Deployment " + d.Name
			ha := isHA(name) && d.Name == "flotilla-hub"
			if !ha && (d.Spec.Replicas == nil || *d.Spec.Replicas != 1) {
				t.Errorf("%s: replicas %v, want 1", where, d.Spec.Replicas)
			}
			if !ha && d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
				t.Errorf("%s: strategy %q, want Recreate", where, d.Spec.Strategy.Type)
			}
			pod := d.Spec.Template.Spec
			if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
				psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
				t.Errorf("%s: pod securityContext %+v, want runAsNonRoot and runAsUser 65532", where, psc)
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("%s: %d containers, want 1", where, len(pod.Containers))
			}
			c := pod.Containers[0]
			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Errorf("%s: container securityContext %+v, want a read-only root, no escalation, all capabilities dropped", where, sc)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: resources %+v, want cpu and memory requests and a memory limit", where, c.Resources)
			}
			if c.LivenessProbe == nil || c.ReadinessProbe == nil {
				t.Errorf("%s: want liveness and readiness probes", where)
			}
			switch d.Name {
			case "flotilla-hub":
				checkHub(t, where, pod, ha)
			case "flotilla-agent":
				checkAgent(t, where, pod)
			default:
				t.Errorf("%s: unexpected Deployment", where)
			}
		}
	}
}

func checkHub(t *testing.T, where string, pod corev1.PodSpec, ha bool) {
	t.Helper()
	c := pod.Containers[0]
	if !slices.Contains(c.Args, "--state-dir=/var/lib/flotilla") {
		t.Errorf("%s: args %v lack --state-dir=/var/lib/flotilla", where, c.Args)
	}
	if ha {
		// The state is in the API server; the state dir holds git mirrors.
		if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
			return m.MountPath == "/var/lib/flotilla" && !m.ReadOnly &&
				slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name && v.EmptyDir != nil })
		}) {
			t.Errorf("%s: no writable emptyDir at /var/lib/flotilla", where)
		}
		if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
			t.Errorf("%s: the replicas reach their store with the service account token; want automountServiceAccountToken true", where)
		}
		return
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.MountPath == "/var/lib/flotilla" && !m.ReadOnly &&
			slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name && v.PersistentVolumeClaim != nil })
	}) {
		t.Errorf("%s: no writable PersistentVolumeClaim at /var/lib/flotilla", where)
	}
	probes := map[string]string{"liveness": probePath(c.LivenessProbe), "readiness": probePath(c.ReadinessProbe)}
	if d := cmp.Diff(map[string]string{"liveness": "/healthz http", "readiness": "/readyz http"}, probes); d != "" {
		t.Errorf("%s: probes (-want +got):\n%s", where, d)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if d := cmp.Diff(map[string]int32{"http": 8080, "agents": 8443}, ports); d != "" {
		t.Errorf("%s: ports (-want +got):\n%s", where, d)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: the hub needs no Kubernetes token; want automountServiceAccountToken false", where)
	}
}

func checkAgent(t *testing.T, where string, pod corev1.PodSpec) {
	t.Helper()
	c := pod.Containers[0]
	refs := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			r := e.ValueFrom.SecretKeyRef
			opt := ""
			if r.Optional != nil && *r.Optional {
				opt = " optional"
			}
			refs[e.Name] = r.Name + "/" + r.Key + opt
		}
	}
	want := map[string]string{
		"FLOTILLA_HUB":        "flotilla-agent-join/FLOTILLA_HUB",
		"FLOTILLA_CLUSTER":    "flotilla-agent-join/FLOTILLA_CLUSTER",
		"FLOTILLA_JOIN_TOKEN": "flotilla-agent-join/FLOTILLA_JOIN_TOKEN optional",
		"FLOTILLA_CA_HASH":    "flotilla-agent-join/FLOTILLA_CA_HASH optional",
	}
	if d := cmp.Diff(want, refs); d != "" {
		t.Errorf("%s: env from the join Secret (-want +got):\n%s", where, d)
	}
	if pod.ServiceAccountName != "flotilla-agent" {
		t.Errorf("%s: serviceAccountName %q, want flotilla-agent", where, pod.ServiceAccountName)
	}
}

func probePath(p *corev1.Probe) string {
	if p == nil || p.HTTPGet == nil {
		return ""
	}
	return p.HTTPGet.Path + " " + p.HTTPGet.Port.String()
}

// TestHelmMatchesKustomize checks that the chart runs the same containers
// as the kustomize bases: the pod specs are equal once the names only one
// of them generates (the ConfigMap hash suffix, the image tag) and labels
// are set aside.
func TestHelmMatchesKustomize(t *testing.T) {
	all := renderAll(t)
	kust := deployments(t, append(all["kustomize hub"], all["kustomize agent"]...))
	helm := deployments(t, append(all["helm defaults (hub)"], all["helm agent, cluster-admin, join Secret"]...))
	for _, name := range []string{"flotilla-hub", "flotilla-agent"} {
		k, h := kust[name], helm[name]
		if k == nil || h == nil {
			t.Fatalf("Deployment %s: kustomize %v, helm %v", name, k != nil, h != nil)
		}
		if d := cmp.Diff(normalizePod(k.Spec.Template.Spec), normalizePod(h.Spec.Template.Spec)); d != "" {
			t.Errorf("Deployment %s pod spec (-kustomize +helm):\n%s", name, d)
		}
		if d := cmp.Diff(k.Spec.Strategy, h.Spec.Strategy); d != "" {
			t.Errorf("Deployment %s strategy (-kustomize +helm):\n%s", name, d)
		}
	}
	objectSet := func(names ...string) []string {
		var out []string
		for _, n := range names {
			for _, o := range all[n] {
				id := o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
				if o.GetKind() == "ConfigMap" {
					id = hashSuffix.ReplaceAllString(id, "")
				}
				out = append(out, id)
			}
		}
		return sorted(out)
	}
	k := objectSet("kustomize hub", "kustomize agent")
	h := objectSet("helm defaults (hub)", "helm agent, cluster-admin, join Secret")
	// Helm leaves the Namespace to --create-namespace (createNamespace
	// renders it), and the join Secret only exists in the chart.
	k = slices.DeleteFunc(k, func(s string) bool { return strings.HasPrefix(s, "Namespace ") })
	h = slices.DeleteFunc(h, func(s string) bool { return s == "Secret flotilla-system/flotilla-agent-join" })
	if d := cmp.Diff(k, h); d != "" {
		t.Errorf("objects (-kustomize +helm):\n%s", d)
	}
}

// hashSuffix is the content hash kustomize appends to generated names.
var hashSuffix = regexp.MustCompile(`-[a-z0-9]{10}$`)

func normalizePod(p corev1.PodSpec) corev1.PodSpec {
	p = *p.DeepCopy()
	for i := range p.Containers {
		c := &p.Containers[i]
		c.Image, _, _ = strings.Cut(c.Image, ":")
		c.ImagePullPolicy = ""
		for j := range c.EnvFrom {
			if r := c.EnvFrom[j].ConfigMapRef; r != nil && strings.HasPrefix(r.Name, "flotilla-hub") {
				r.Name = "flotilla-hub"
			}
		}
	}
	return p
}

// TestNamespacedAgentPolicy: every rendering that installs the agent
// without cluster-admin also ships its policy ConfigMap, in the agent's
// namespace, tells the agent to read it, and lists in it exactly the
// namespaces its Roles and FLOTILLA_WATCH_NAMESPACES cover, with no
// cluster-scoped objects; the agent may read that ConfigMap only.
func TestNamespacedAgentPolicy(t *testing.T) {
	checked := 0
	for name, objs := range renderAll(t) {
		agent := deployments(t, objs)["flotilla-agent"]
		if agent == nil || slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool {
			return o.GetKind() == "ClusterRoleBinding" && o.GetName() == "flotilla-agent"
		}) {
			continue
		}
		checked++
		env := map[string]string{}
		for _, e := range agent.Spec.Template.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		var roleNS []string
		var cm *unstructured.Unstructured
		var policyRules []any
		for _, o := range objs {
			switch {
			case o.GetKind() == "RoleBinding" && o.GetName() == "flotilla-agent":
				roleNS = append(roleNS, o.GetNamespace())
			case o.GetKind() == "ConfigMap" && o.GetName() == "flotilla-agent-policy":
				cm = o
			case o.GetKind() == "Role" && o.GetName() == "flotilla-agent-policy" && o.GetNamespace() == agent.Namespace:
				policyRules, _, _ = unstructured.NestedSlice(o.Object, "rules")
			}
		}
		if env["FLOTILLA_POLICY_CONFIGMAP"] != "flotilla-agent-policy" {
			t.Errorf("%s: the agent is not told to read flotilla-agent-policy (env %v)", name, env)
		}
		if cm == nil || cm.GetNamespace() != agent.Namespace {
			t.Errorf("%s: no ConfigMap flotilla-agent-policy in the agent's namespace %s", name, agent.Namespace)
			continue
		}
		data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
		got := map[string]any{
			"policy":  sorted(strings.Split(data["namespaces"], ",")),
			"watch":   sorted(strings.Split(env["FLOTILLA_WATCH_NAMESPACES"], ",")),
			"cluster": data["clusterScoped"],
		}
		want := map[string]any{"policy": sorted(roleNS), "watch": sorted(roleNS), "cluster": "false"}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: policy ConfigMap and watched namespaces against the Roles (-want +got):\n%s", name, d)
		}
		wantRules := []any{map[string]any{
			"apiGroups": []any{""}, "resources": []any{"configmaps"},
			"resourceNames": []any{"flotilla-agent-policy"}, "verbs": []any{"get", "list", "watch"},
		}}
		if d := cmp.Diff(wantRules, policyRules); d != "" {
			t.Errorf("%s: Role flotilla-agent-policy (-want +got):\n%s", name, d)
		}
	}
	if checked < 2 {
		t.Errorf("%d namespaced renderings checked, want kustomize and helm", checked)
	}
}
