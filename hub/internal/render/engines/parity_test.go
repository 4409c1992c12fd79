//go:build !unit

package engines

import (
	"bytes"
	stdcmp "cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
)

// The parity tests render the charts of testdata/parity twice, with
// Flotilla's render.Renderer (as the controller calls it) and with the helm CLI
// of the version in go.mod (`helm template`, as Argo CD renders), and
// compare the objects. Differences that are intended are documented in
// docs/sources.md and kept out of these charts.

// parityOld and parityNew are two clusters as their agents report them:
// an old one without the CRDs the charts look for, a new one with them.
// Both lists keep to versions that Helm's client-only defaults also have
// or lack alike (see sources.md: helm template adds its built-in list).
var (
	parityBase = []string{
		"v1", "v1/ConfigMap", "v1/Secret", "v1/Service", "v1/Pod", "v1/ServiceAccount",
		"apps/v1", "apps/v1/Deployment", "apps/v1/StatefulSet",
		"batch/v1", "batch/v1/Job",
		"networking.k8s.io/v1", "networking.k8s.io/v1/Ingress",
		"policy/v1", "policy/v1/PodDisruptionBudget",
		"rbac.authorization.k8s.io/v1", "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
		"apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1/CustomResourceDefinition",
	}
	parityOld = mustCapabilities("v1.24.17", parityBase)
	parityNew = mustCapabilities("v1.31.2", append(slices.Clone(parityBase),
		"monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor",
		"gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1/HTTPRoute"))
)

func mustCapabilities(kubeVersion string, apiVersions []string) *render.Capabilities {
	c, err := render.NewCapabilities(kubeVersion, apiVersions)
	if err != nil {
		panic(err)
	}
	return c
}

// TestHelmParity renders each chart with Flotilla and with `helm template`
// at each capability set and requires the same objects (or both to fail
// with the same message).
func TestHelmParity(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the helm CLI")
	}
	helm := helmCLI(t)
	both := []*render.Capabilities{parityOld, parityNew}
	tests := []struct {
		name      string
		chart     string
		helm      *app.Helm
		release   string // app name (default "web")
		namespace string // destination namespace (default "shop")
		caps      []*render.Capabilities
		differ    bool   // the capability sets render differently
		wantErr   string // both fail with this in their message
	}{
		{name: "plain templates, helpers, NOTES.txt", chart: "plain", caps: both},
		{name: "values.yaml only", chart: "values", caps: both[:1]},
		{name: "value file, inline values, valuesObject and parameters", chart: "values", caps: both[:1], helm: &app.Helm{
			ValueFiles:   []string{"values-prod.yaml"},
			Values:       "replicas: 3\nlabels: {tier: api}\nextra: {a: 1}\n",
			ValuesObject: map[string]any{"config": map[string]any{"debug": true}, "extra": map[string]any{"b": "two"}},
			Parameters: []app.HelmParameter{
				{Name: "ports[1]", Value: "8443"},
				{Name: "config.level", Value: "error"},
				{Name: "version", Value: "2", ForceString: true},
				{Name: "replicas", Value: "5"},
				{Name: "labels.owner", Value: "a\\,b"},
			},
		}},
		{name: "kubeVersion constraint not met", chart: "kubeversion", caps: both[:1], wantErr: "chart requires kubeVersion: >=1.25.0-0 which is incompatible with Kubernetes v1.24.17"},
		{name: "kubeVersion constraint met", chart: "kubeversion", caps: both[1:]},
		{name: "semverCompare on KubeVersion", differ: true, chart: "semver", caps: both},
		{name: "APIVersions.Has group/version of a CRD", differ: true, chart: "crdgroup", caps: both},
		{name: "APIVersions.Has group/version/Kind", differ: true, chart: "kindform", caps: both},
		{name: "library chart, subcharts by condition and tags", chart: "umbrella", caps: both[:1]},
		{name: "subcharts switched by parameters", chart: "umbrella", caps: both[:1], helm: &app.Helm{Parameters: []app.HelmParameter{
			{Name: "cache.enabled", Value: "false"}, {Name: "replica.enabled", Value: "true"}, {Name: "tags.monitoring", Value: "true"}, {Name: "global.owner", Value: "shop"},
		}}},
		{name: "lookup finds nothing", chart: "lookup", caps: both[:1]},
		{name: "tpl", chart: "tpl", caps: both[:1]},
		{name: "required value missing", chart: "required", caps: both[:1], wantErr: "image.tag is required"},
		{name: "required value given", chart: "required", caps: both[:1], helm: &app.Helm{Parameters: []app.HelmParameter{{Name: "image.tag", Value: "1.2.3"}}}},
		{name: "hooks", chart: "hooks", caps: both[:1]},
		{name: "crds/ included", chart: "crds", caps: both[:1]},
		{name: "crds/ skipped", chart: "crds", caps: both[:1], helm: &app.Helm{SkipCRDs: true}},
		{name: "release name and namespace from the app", chart: "namespaces", caps: both[:1]},
		{name: "helm.releaseName and helm.namespace", chart: "namespaces", caps: both[:1], helm: &app.Helm{ReleaseName: "rel", Namespace: "other"}},
		{name: "helm.kubeVersion override", chart: "semver", caps: both, helm: &app.Helm{KubeVersion: "1.29"}},
		{name: "helm.kubeVersion override below the chart's kubeVersion", chart: "kubeversion", caps: both[1:], helm: &app.Helm{KubeVersion: "v1.23.4"},
			wantErr: "chart requires kubeVersion: >=1.25.0-0 which is incompatible with Kubernetes v1.23.4"},
		{name: "helm.apiVersions override", chart: "kindform", caps: both, helm: &app.Helm{APIVersions: []string{"gateway.networking.k8s.io/v1/HTTPRoute"}}},
		{name: "helm.apiVersions override without the CRD", chart: "crdgroup", caps: both[1:], helm: &app.Helm{APIVersions: []string{"v1", "apps/v1"}}},
		{name: "values schema met", chart: "schema", caps: both[:1]},
		{name: "values schema violated", chart: "schema", caps: both[:1], helm: &app.Helm{Parameters: []app.HelmParameter{{Name: "replicas", Value: "0"}}},
			wantErr: "minimum"},
	}
	root, err := filepath.Abs("testdata/parity")
	if err != nil {
		t.Fatal(err)
	}
	r := newRenderer(render.Options{})
	for _, tt := range tests {
		var renders []any
		for _, caps := range tt.caps {
			t.Run(tt.name+"/"+caps.KubeVersion, func(t *testing.T) {
				in := render.Input{Root: root, Source: app.Source{Path: tt.chart, Helm: tt.helm}, Namespace: tt.namespace, AppName: tt.release, Capabilities: caps}
				if in.Namespace == "" {
					in.Namespace = "shop"
				}
				if in.AppName == "" {
					in.AppName = "web"
				}
				objs, ferr := r.Render(context.Background(), render.CacheKey(tt.name, in), in)
				want, herr := helmTemplate(t, helm, root, in)
				if tt.wantErr != "" {
					if ferr == nil || herr == nil || !strings.Contains(ferr.Error(), tt.wantErr) || !strings.Contains(herr.Error(), tt.wantErr) {
						t.Fatalf("want both to fail with %q\nflotilla: %v\nhelm: %v", tt.wantErr, ferr, herr)
					}
					return
				}
				if ferr != nil || herr != nil {
					t.Fatalf("flotilla: %v\nhelm: %v", ferr, herr)
				}
				got := map[string]any{}
				for _, o := range objs {
					got[objectKey(o.Object)] = normalise(t, o.Object)
				}
				if len(got) == 0 {
					t.Fatal("rendered nothing")
				}
				if diff := cmp.Diff(argoHooks(t, want), got); diff != "" {
					t.Errorf("Flotilla's render differs from helm template (-helm +flotilla):\n%s", diff)
				}
				renders = append(renders, got)
			})
		}
		if tt.differ && len(renders) == 2 && cmp.Equal(renders[0], renders[1]) {
			t.Errorf("%s: both capability sets render the same; the case tests nothing", tt.name)
		}
	}
}

// helmTemplate runs `helm template` on the chart of in as Argo CD does
// (value files, then the inline values and valuesObject as a file, then
// the parameters as --set and --set-string) with in's capabilities, and
// returns its objects by key.
func helmTemplate(t *testing.T, helm, root string, in render.Input) (map[string]any, error) {
	t.Helper()
	h := in.Source.Helm
	if h == nil {
		h = &app.Helm{}
	}
	release, ns := stdcmp.Or(h.ReleaseName, in.AppName), stdcmp.Or(h.Namespace, in.Namespace)
	chart := filepath.Join(root, in.Source.Path)
	// As Argo CD: the source's overrides replace the cluster's values.
	kubeVersion, apiVersions := stdcmp.Or(h.KubeVersion, in.Capabilities.KubeVersion), in.Capabilities.APIVersions
	if len(h.APIVersions) > 0 {
		apiVersions = h.APIVersions
	}
	args := []string{"template", release, chart, "--namespace", ns, "--kube-version", kubeVersion}
	for _, v := range apiVersions {
		args = append(args, "--api-versions", v)
	}
	if !h.SkipCRDs {
		args = append(args, "--include-crds")
	}
	for _, f := range h.ValueFiles {
		args = append(args, "--values", filepath.Join(chart, f))
	}
	dir, err := os.MkdirTemp("", "parity-") // t.TempDir has the test's name, commas included: helm splits --values at commas
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var inline []string
	if h.Values != "" {
		inline = append(inline, h.Values)
	}
	if h.ValuesObject != nil {
		js, err := json.Marshal(h.ValuesObject)
		if err != nil {
			t.Fatal(err)
		}
		inline = append(inline, string(js))
	}
	for i, data := range inline {
		f := filepath.Join(dir, fmt.Sprintf("values-%d.yaml", i))
		if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--values", f)
	}
	for _, p := range h.Parameters {
		flag := "--set"
		if p.ForceString {
			flag = "--set-string"
		}
		args = append(args, flag, p.Name+"="+p.Value)
	}
	cmd := exec.Command(helm, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+dir+"/cache", "HELM_CONFIG_HOME="+dir+"/config", "HELM_DATA_HOME="+dir+"/data")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	out := map[string]any{}
	dec := yaml.NewYAMLOrJSONDecoder(&stdout, 4096)
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm output: %v\n%s", err, stdout.String())
		}
		if obj == nil {
			continue
		}
		out[objectKey(obj)] = normalise(t, obj)
	}
	return out, nil
}

// argoHooks applies to helm's output what Argo CD documents for Helm
// hooks: hooks of install and upgrade become PreSync and PostSync hooks
// (weight as sync wave, delete policies renamed), other hooks (test,
// delete, rollback) are not applied, and an object with Argo CD's own hook
// annotation is left as it is.
func argoHooks(t *testing.T, objs map[string]any) map[string]any {
	t.Helper()
	out := map[string]any{}
	for k, o := range objs {
		md, _ := o.(map[string]any)["metadata"].(map[string]any)
		ann, _ := md["annotations"].(map[string]any)
		events, isHook := ann["helm.sh/hook"].(string)
		if _, argo := ann["argocd.argoproj.io/hook"]; !isHook || argo {
			out[k] = o
			continue
		}
		var phases []string
		for _, e := range strings.Split(events, ",") {
			ph := map[string]string{"pre-install": "PreSync", "pre-upgrade": "PreSync", "post-install": "PostSync", "post-upgrade": "PostSync"}[strings.TrimSpace(e)]
			if ph != "" && !slices.Contains(phases, ph) {
				phases = append(phases, ph)
			}
		}
		if len(phases) == 0 {
			continue
		}
		ann["argocd.argoproj.io/hook"] = strings.Join(phases, ",")
		if w, _ := strconv.Atoi(fmt.Sprint(ann["helm.sh/hook-weight"])); w != 0 && ann["argocd.argoproj.io/sync-wave"] == nil {
			ann["argocd.argoproj.io/sync-wave"] = strconv.Itoa(w)
		}
		if p, ok := ann["helm.sh/hook-delete-policy"].(string); ok {
			var policies []string
			for _, e := range strings.Split(p, ",") {
				policies = append(policies, map[string]string{"hook-succeeded": "HookSucceeded", "hook-failed": "HookFailed", "before-hook-creation": "BeforeHookCreation"}[strings.TrimSpace(e)])
			}
			ann["argocd.argoproj.io/hook-delete-policy"] = strings.Join(policies, ",")
		}
		out[k] = o
	}
	return out
}

// objectKey names an object: apiVersion, kind, namespace/name.
func objectKey(o map[string]any) string {
	md, _ := o["metadata"].(map[string]any)
	return fmt.Sprintf("%v %v %v/%v%v", o["apiVersion"], o["kind"], md["namespace"], md["name"], md["generateName"])
}

// normalise returns o as JSON decodes it (one type per kind of number).
func normalise(t *testing.T, o map[string]any) any {
	t.Helper()
	js, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

var helmCLIOnce struct {
	sync.Once
	path string
	err  error
}

// helmCLI returns the helm CLI of the helm.sh/helm/v3 version this module
// uses, built once with `go install` into the user cache dir (keyed by
// version) and reused by later runs: the first run takes minutes.
func helmCLI(t *testing.T) string {
	t.Helper()
	helmCLIOnce.Do(func() {
		helmCLIOnce.path, helmCLIOnce.err = buildHelmCLI()
	})
	if helmCLIOnce.err != nil {
		t.Fatalf("helm CLI: %v", helmCLIOnce.err)
	}
	return helmCLIOnce.path
}

func buildHelmCLI() (string, error) {
	// The test runs in its package folder, inside this module.
	out, err := exec.Command("go", "list", "-m", "-f", "{{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}", "helm.sh/helm/v3").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m helm.sh/helm/v3: %w", err)
	}
	version := strings.TrimSpace(string(out))
	if version == "" {
		return "", errors.New("helm.sh/helm/v3 has no version in go.mod")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "flotilla-test", "helm", version)
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Built into a fresh folder, then renamed: a run interrupted half way
	// or running alongside leaves no broken binary behind.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "install", "helm.sh/helm/v3/cmd/helm@"+version)
	cmd.Dir = tmp // outside this module: helm's own go.mod decides its dependencies
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install helm %s: %w: %s", version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "helm"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// TestHelmParityKnownDifferences shows the two intended differences from
// `helm template` (docs/sources.md, "helm template parity"): Flotilla's
// .Capabilities.APIVersions are exactly what the cluster serves, where
// helm template also answers yes for every group/version compiled into
// Helm; and the cluster's version keeps its pre-release part, as helm
// install against the cluster has it, where --kube-version drops it.
func TestHelmParityKnownDifferences(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the helm CLI")
	}
	helm := helmCLI(t)
	root, err := filepath.Abs("testdata/parity")
	if err != nil {
		t.Fatal(err)
	}
	caps := mustCapabilities("v1.31.2-eks-1234", []string{"v1", "v1/ConfigMap", "policy/v1"})
	in := render.Input{Root: root, Source: app.Source{Path: "builtin"}, Namespace: "shop", AppName: "web", Capabilities: caps}
	objs, err := newRenderer(render.Options{}).Render(context.Background(), render.CacheKey("builtin", in), in)
	if err != nil {
		t.Fatal(err)
	}
	helmObjs, err := helmTemplate(t, helm, root, in)
	if err != nil {
		t.Fatal(err)
	}
	key := "v1 ConfigMap <nil>/web-builtin<nil>"
	got := map[string]any{"flotilla": normalise(t, objs[0].Object).(map[string]any)["data"], "helm": helmObjs[key].(map[string]any)["data"]}
	want := map[string]any{
		"flotilla": map[string]any{"batchV1beta1": "false", "policyV1": "true", "version": "v1.31.2-eks-1234"},
		"helm":     map[string]any{"batchV1beta1": "true", "policyV1": "true", "version": "v1.31.2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("differences (-want +got):\n%s", diff)
	}
}
