//go:build !unit

package liveview_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/flotilla-cd/flotilla/agent/internal/apply"
	"github.com/flotilla-cd/flotilla/agent/internal/engine"
	"github.com/flotilla-cd/flotilla/agent/internal/liveview"
	"github.com/flotilla-cd/flotilla/agent/internal/testenv"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

var restCfg *rest.Config

func TestMain(m *testing.M) {
	if testenv.UnitOnly() {
		os.Exit(m.Run())
	}
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "liveview integration tests:", err)
		os.Exit(1)
	}
	restCfg = env.Config
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

const secretValue = "do-not-leak-this-value"

var (
	gvrDeploy = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrRS     = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	gvrNS     = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

func deployment(name string) *unstructured.Unstructured {
	return testenv.Obj(map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": "pause"}}},
			},
		},
	})
}

// fixture runs the real engine with one synced app ("shop": a Deployment
// and a Secret) on a real API server, and a liveview.Server over it.
type fixture struct {
	t   *testing.T
	ns  string
	dyn dynamic.Interface
	srv *liveview.Server
}

func newFixture(t *testing.T) *fixture {
	testenv.Need(t, restCfg != nil)
	ctx := t.Context()
	dyn := dynamic.NewForConfigOrDie(restCfg)
	ns := fmt.Sprintf("live-%d", time.Now().UnixNano())
	for _, n := range []string{ns, ns + "-agent"} {
		if _, err := dyn.Resource(gvrNS).Create(ctx, testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": n}}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr})
	eng, err := engine.New(restCfg, engine.Options{Namespace: ns + "-agent", Cluster: "test"}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Load(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = eng.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	secret := testenv.Obj(map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "creds"}, "stringData": map[string]any{"password": secretValue}})
	b, err := manifest.NewBundle("shop", ns, "rev1", "shop", []*unstructured.Unstructured{deployment("web"), secret}, &apiv1alpha1.SyncPolicy{Automated: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Accept(ctx, []*apiv1alpha1.Bundle{b}, nil); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, func(context.Context) (bool, string) {
		for _, s := range eng.Statuses() {
			if s.GetApp() == "shop" && s.GetSync() == apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED {
				return true, ""
			}
		}
		return false, fmt.Sprintf("statuses %v", eng.Statuses())
	})
	mapper, err := apply.NewMapper(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	podLogs, err := liveview.NewPodLogs(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := liveview.New(dyn, podLogs, mapper, eng, liveview.Options{}, log)
	return &fixture{t: t, ns: ns, dyn: dyn, srv: srv}
}

// ask sends req and returns the frame that ends it, as the agent would put
// it on the stream.
func (f *fixture) ask(req *apiv1alpha1.LiveRequest) *apiv1alpha1.LiveResponse {
	f.t.Helper()
	frames := make(chan *apiv1alpha1.LiveResponse, 16)
	f.srv.Handle(f.t.Context(), req, func(_ context.Context, r *apiv1alpha1.LiveResponse) error {
		frames <- r
		return nil
	})
	for {
		select {
		case r := <-frames:
			if r.GetId() != req.GetId() {
				f.t.Fatalf("answer to %q has id %q", req.GetId(), r.GetId())
			}
			if r.GetDone() {
				return r
			}
		case <-time.After(time.Minute):
			f.t.Fatalf("no answer to %v", req)
		}
	}
}

// TestSecretIsRedactedByTheAgent: what the agent puts on the stream for a
// Secret's manifest holds neither its value nor its base64, and no
// managedFields.
func TestSecretIsRedactedByTheAgent(t *testing.T) {
	f := newFixture(t)
	r := f.ask(&apiv1alpha1.LiveRequest{Id: "1", Kind: apiv1alpha1.LiveRequest_KIND_MANIFEST, App: "shop", Object: &apiv1alpha1.ObjectRef{Kind: "Secret", Name: "creds"}})
	if r.GetCode() != apiv1alpha1.LiveResponse_CODE_OK {
		t.Fatalf("manifest: %v %s", r.GetCode(), r.GetMessage())
	}
	raw := r.GetManifestJson()
	for _, leak := range []string{secretValue, base64.StdEncoding.EncodeToString([]byte(secretValue))} {
		if strings.Contains(string(raw), leak) {
			t.Fatalf("the agent's frame holds %q: %s", leak, raw)
		}
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	if pw, _, _ := unstructured.NestedString(obj, "data", "password"); pw != manifest.Redacted || len(u.GetManagedFields()) != 0 || u.GetName() != "creds" {
		t.Errorf("manifest %s: want data.password %s, no managedFields", raw, manifest.Redacted)
	}
}

// TestAgentRefusesObjectsTheAppDoesNotOwn: an object in the app's
// namespace that its inventory does not name is neither shown nor acted
// on, whatever the request says; what the app's objects own is.
func TestAgentRefusesObjectsTheAppDoesNotOwn(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.dyn.Resource(gvrDeploy).Namespace(f.ns).Create(ctx, deployment("outsider"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, req := range []*apiv1alpha1.LiveRequest{
		{Id: "restart", Kind: apiv1alpha1.LiveRequest_KIND_ACTION, App: "shop", Action: liveview.ActionRestart, Object: &apiv1alpha1.ObjectRef{Group: "apps", Kind: "Deployment", Namespace: f.ns, Name: "outsider"}},
		{Id: "manifest", Kind: apiv1alpha1.LiveRequest_KIND_MANIFEST, App: "shop", Object: &apiv1alpha1.ObjectRef{Group: "apps", Kind: "Deployment", Namespace: f.ns, Name: "outsider"}},
		{Id: "other-app", Kind: apiv1alpha1.LiveRequest_KIND_ACTION, App: "nope", Action: liveview.ActionRestart, Object: &apiv1alpha1.ObjectRef{Group: "apps", Kind: "Deployment", Namespace: f.ns, Name: "web"}},
	} {
		r := f.ask(req)
		want := apiv1alpha1.LiveResponse_CODE_NOT_OWNED
		if req.GetApp() == "nope" {
			want = apiv1alpha1.LiveResponse_CODE_NOT_FOUND
		}
		if r.GetCode() != want {
			t.Errorf("%s: code %v (%s), want %v", req.GetId(), r.GetCode(), r.GetMessage(), want)
		}
	}
	out, err := f.dyn.Resource(gvrDeploy).Namespace(f.ns).Get(ctx, "outsider", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ann, _, _ := unstructured.NestedStringMap(out.Object, "spec", "template", "metadata", "annotations"); ann["kubectl.kubernetes.io/restartedAt"] != "" {
		t.Fatalf("the outsider was restarted: %v", ann)
	}

	// A ReplicaSet the app's Deployment owns is in the tree; the
	// Deployment restarts.
	web, err := f.dyn.Resource(gvrDeploy).Namespace(f.ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs := testenv.Obj(map[string]any{
		"apiVersion": "apps/v1", "kind": "ReplicaSet",
		"metadata": map[string]any{"name": "web-1", "ownerReferences": []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": string(web.GetUID()), "controller": true}}},
		"spec":     map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}}, "template": web.Object["spec"].(map[string]any)["template"]},
	})
	if _, err := f.dyn.Resource(gvrRS).Namespace(f.ns).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tree := f.ask(&apiv1alpha1.LiveRequest{Id: "tree", Kind: apiv1alpha1.LiveRequest_KIND_TREE, App: "shop"})
	var got []string
	for _, n := range tree.GetNodes() {
		got = append(got, fmt.Sprintf("%s/%s in_app=%t parents=%d", n.GetRef().GetKind(), n.GetRef().GetName(), n.GetInApp(), len(n.GetParentUids())))
	}
	want := []string{"Deployment/web in_app=true parents=0", "ReplicaSet/web-1 in_app=false parents=1", "Secret/creds in_app=true parents=0"}
	sort.Strings(got)
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("tree:\n got %q\nwant %q", got, want)
	}
	if r := f.ask(&apiv1alpha1.LiveRequest{Id: "restart-web", Kind: apiv1alpha1.LiveRequest_KIND_ACTION, App: "shop", Action: liveview.ActionRestart, Object: &apiv1alpha1.ObjectRef{Group: "apps", Kind: "Deployment", Name: "web"}}); r.GetCode() != apiv1alpha1.LiveResponse_CODE_OK {
		t.Fatalf("restart web: %v %s", r.GetCode(), r.GetMessage())
	}
}
