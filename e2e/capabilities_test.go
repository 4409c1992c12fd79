//go:build !unit

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// widgetCRD is a CRD the scenario installs on alpha only.
const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.caps.example.com}
spec:
  group: caps.example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`

// capsChartFiles is a chart that branches on the cluster's capabilities,
// and two charts constrained by kubeVersion: one every cluster of the
// suite meets (but Helm's default v1.20 does not), one none meets.
var capsChartFiles = map[string]string{
	"caps/chart/Chart.yaml": "apiVersion: v2\nname: caps\nversion: 0.1.0\n",
	"caps/chart/templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: caps}
data:
  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}
  widgets: {{ .Capabilities.APIVersions.Has "caps.example.com/v1/Widget" | quote }}
  widgetGroup: {{ .Capabilities.APIVersions.Has "caps.example.com/v1" | quote }}
  pdb: {{ if .Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget" }}policy/v1{{ else }}policy/v1beta1{{ end }}
`,
	"caps/recent/Chart.yaml":         "apiVersion: v2\nname: recent\nversion: 0.1.0\nkubeVersion: \">=1.25.0-0\"\n",
	"caps/recent/templates/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: recent}\n",
	"caps/ancient/Chart.yaml":        "apiVersion: v2\nname: ancient\nversion: 0.1.0\nkubeVersion: \"<1.25.0-0\"\n",
	"caps/ancient/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ancient}\n",
}

// scenarioCapabilities: Helm charts render with each cluster's own
// capabilities as its agent reports them. A chart branching on
// .Capabilities.APIVersions.Has renders differently on alpha once a CRD is
// installed there (the agent notices and reports the change; beta, without
// the CRD, keeps its render), .Capabilities.KubeVersion is the API
// server's, and a chart's kubeVersion constraint is checked against the
// real cluster: refused with a clear error where it does not match.
func scenarioCapabilities(e *env) {
	rev := e.commit("capability charts", capsChartFiles)
	e.writeApp("caps", appSpec{name: "caps", path: "caps/chart", ns: "caps", clusters: []string{"alpha", "beta"}, prune: true, selfHeal: true}.yaml(e.repo.URL))
	e.waitSynced("caps", rev, "alpha", "beta")

	ver := map[string]string{}
	for _, cl := range []string{"alpha", "beta"} {
		info, err := e.clients[cl].Discovery().ServerVersion()
		if err != nil {
			e.t.Fatal(err)
		}
		ver[cl] = info.GitVersion
		want := map[string]string{"kubeVersion": info.GitVersion, "widgets": "false", "widgetGroup": "false", "pdb": "policy/v1"}
		e.waitConfigMap(cl, "caps", "caps", want)
	}

	// A CRD on alpha only: the agent reports it, alpha's render changes,
	// beta's does not.
	crd := filepath.Join(e.t.TempDir(), "crd.yaml")
	if err := os.WriteFile(crd, []byte(widgetCRD), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.kubectl("alpha", "apply", "-f", crd)
	e.waitConfigMap("alpha", "caps", "caps", map[string]string{"kubeVersion": ver["alpha"], "widgets": "true", "widgetGroup": "true", "pdb": "policy/v1"})
	e.waitApp("caps", "two different bundles", func(a api.AppView) error {
		if len(a.Clusters) != 2 || a.Clusters[0].Digest == a.Clusters[1].Digest {
			return fmt.Errorf("clusters %+v: want two different bundles", a.Clusters)
		}
		return nil
	})
	e.waitConfigMap("beta", "caps", "caps", map[string]string{"kubeVersion": ver["beta"], "widgets": "false", "widgetGroup": "false", "pdb": "policy/v1"})

	// kubeVersion against the real cluster.
	e.writeApp("caps-recent", appSpec{name: "caps-recent", path: "caps/recent", ns: "caps-recent", clusters: []string{"alpha", "beta"}, prune: true, selfHeal: true}.yaml(e.repo.URL))
	e.writeApp("caps-ancient", appSpec{name: "caps-ancient", path: "caps/ancient", ns: "caps-ancient", clusters: []string{"alpha", "beta"}, prune: true, selfHeal: true}.yaml(e.repo.URL))
	e.waitSynced("caps-recent", rev, "alpha", "beta")
	e.waitApp("caps-ancient", "refused on both clusters", func(a api.AppView) error {
		if len(a.Clusters) != 2 {
			return fmt.Errorf("clusters %+v", a.Clusters)
		}
		for _, c := range a.Clusters {
			want := fmt.Sprintf("chart requires kubeVersion: <1.25.0-0 which is incompatible with Kubernetes %s", ver[c.Cluster])
			if !strings.Contains(c.Error, want) || c.Digest != "" {
				return fmt.Errorf("cluster %s: error %q digest %q, want an error saying %q", c.Cluster, c.Error, c.Digest, want)
			}
		}
		return nil
	})

	// Leave the world as found.
	for _, name := range []string{"caps", "caps-recent", "caps-ancient"} {
		if err := os.Remove(filepath.Join(e.appsDir, name+".yaml")); err != nil {
			e.t.Fatal(err)
		}
	}
	e.kubectl("alpha", "delete", "-f", crd)
}

// waitConfigMap waits until the ConfigMap ns/name on cluster has exactly
// data.
func (e *env) waitConfigMap(cluster, ns, name string, data map[string]string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("%s: configmap %s/%s %v", cluster, ns, name, data), func() error {
		got, err := e.configMapData(cluster, ns, name)
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != fmt.Sprint(data) {
			return fmt.Errorf("data %v", got)
		}
		return nil
	})
}
