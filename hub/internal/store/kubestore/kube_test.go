//go:build !unit

package kubestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/testing/protocmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/transport"
)

var update = flag.Bool("update", false, "rewrite the CRD copies in deploy/")

// crdFiles are the copies of the store's CRDs that deploy/ ships: for
// kustomize and in the Helm chart.
var crdFiles = []string{"../../../../deploy/crds/hub-store.yaml", "../../../../deploy/helm/flotilla/files/hub-store-crds.yaml"}

// TestCRDManifest: deploy/ ships the CRDs the store installs.
func TestCRDManifest(t *testing.T) {
	for _, f := range crdFiles {
		if *update {
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, CRDManifest(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(CRDManifest()), string(got)); diff != "" {
			t.Errorf("%s is stale; run go test ./hub/internal/store -run TestCRDManifest -update (-want +got):\n%s", f, diff)
		}
	}
}

// TestKubeReplicasNeverOverwrite: hubs sharing one namespace update the
// same cluster and the same status object at once; every update lands,
// none is overwritten (resourceVersion conflicts are retried).
func TestKubeReplicasNeverOverwrite(t *testing.T) {
	ns := newTestNamespace(t)
	replicas := []*Store{openKube(t, ns, 0), openKube(t, ns, 0), openKube(t, ns, 0)}
	ctx := t.Context()
	if err := replicas[0].CreateCluster(ctx, store.Cluster{Name: "shared"}); err != nil {
		t.Fatal(err)
	}
	const perReplica = 15
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(replicas)*perReplica)
	for r, s := range replicas {
		for i := range perReplica {
			wg.Go(func() {
				errs <- s.UpdateCluster(ctx, "shared", func(c *store.Cluster) error {
					if c.Labels == nil {
						c.Labels = map[string]string{}
					}
					c.Labels[fmt.Sprintf("r%d-%d", r, i)] = "x"
					return nil
				})
			})
			wg.Go(func() {
				errs <- s.PutStatus(ctx, "shared", testStatus(fmt.Sprintf("app-%d-%d", r, i), "r1"))
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c, err := replicas[1].GetCluster(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Labels) != len(replicas)*perReplica {
		t.Errorf("cluster has %d labels after %d concurrent updates: updates were lost", len(c.Labels), len(replicas)*perReplica)
	}
	sts, err := replicas[2].ListStatus(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != len(replicas)*perReplica {
		t.Errorf("%d statuses after %d concurrent puts: writes were lost", len(sts), len(replicas)*perReplica)
	}
}

// TestKubeStatusWrites: an unchanged status costs no write, and a
// cluster whose statuses outgrow one object is spread over several, each
// far below etcd's limit, and read back whole.
func TestKubeStatusWrites(t *testing.T) {
	ns := newTestNamespace(t)
	s := openKube(t, ns, 0)
	ctx := t.Context()
	if err := s.CreateCluster(ctx, store.Cluster{Name: "big"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutStatus(ctx, "big", testStatus("web", "r1")); err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(testAPIServer(t))
	pages := dyn.Resource(resStatus.gvr()).Namespace(ns)
	before, err := pages.Get(ctx, statusPageName("big", 0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.PutStatus(ctx, "big", testStatus("web", "r1")); err != nil {
			t.Fatal(err)
		}
	}
	after, err := pages.Get(ctx, statusPageName("big", 0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if before.GetResourceVersion() != after.GetResourceVersion() {
		t.Errorf("unchanged status rewrote its object (resourceVersion %s → %s)", before.GetResourceVersion(), after.GetResourceVersion())
	}

	// 1,500 apps of ~1 KiB each: more than one page holds.
	var want []store.StatusRecord
	var wg sync.WaitGroup
	errs := make(chan error, 1500)
	for i := range 1500 {
		st := testStatus(fmt.Sprintf("app-%04d", i), "r1")
		st.Message = strings.Repeat("m", 600)
		want = append(want, store.StatusRecord{Cluster: "big", Status: st})
		wg.Go(func() { errs <- s.PutStatus(ctx, "big", st) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteStatus(ctx, "big", "web"); err != nil {
		t.Fatal(err)
	}
	l, err := pages.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) < 2 {
		t.Errorf("1,500 statuses of ~1 KiB in %d object(s), want them spread over several", len(l.Items))
	}
	for _, o := range l.Items {
		b, _ := json.Marshal(o.Object)
		if len(b) > 1<<20 {
			t.Errorf("status object %s is %d bytes, over 1 MiB", o.GetName(), len(b))
		}
	}
	got, err := s.ListStatus(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

// TestKubeEntriesCapped: a history message or audit detail too big for an
// object is stored truncated, not refused.
func TestKubeEntriesCapped(t *testing.T) {
	s := openKube(t, newTestNamespace(t), 0)
	ctx := t.Context()
	e := histEntry("web", "a", 1)
	e.Message = strings.Repeat("é", 2<<20)
	id, err := s.AppendHistory(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetHistory(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Message) > maxTextBytes+64 || !strings.HasPrefix(got.Message, "éé") || !strings.HasSuffix(got.Message, "(truncated)") {
		t.Errorf("stored message of %d bytes, want it cut to about %d and marked", len(got.Message), maxTextBytes)
	}
	if err := s.AppendAudit(ctx, store.AuditEntry{Time: t0, Actor: "a", Action: "x", Detail: strings.Repeat("d", 3<<20)}); err != nil {
		t.Fatal(err)
	}
}

// TestKubeSecretsHoldSecrets: hashes live in Secrets only, raw tokens
// nowhere, and the custom resources carry neither.
func TestKubeSecretsHoldSecrets(t *testing.T) {
	ns := newTestNamespace(t)
	s := openKube(t, ns, 0)
	ctx := t.Context()
	if err := s.CreateCluster(ctx, store.Cluster{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	join, err := s.CreateJoinToken(ctx, "a", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	api, tok, err := s.CreateAPIToken(ctx, "ci", store.RoleReadOnly, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutCA(ctx, []byte("cert"), []byte("key")); err != nil {
		t.Fatal(err)
	}
	cfg := testAPIServer(t)
	var crs, secrets bytes.Buffer
	dyn := dynamic.NewForConfigOrDie(cfg)
	for _, r := range allResources {
		l, err := dyn.Resource(r.gvr()).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(l)
		crs.Write(b)
	}
	sl, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(sl)
	secrets.Write(b)
	for _, raw := range []string{join, api} {
		if bytes.Contains(crs.Bytes(), []byte(raw)) || bytes.Contains(secrets.Bytes(), []byte(raw)) {
			t.Errorf("raw token %q stored", raw)
		}
	}
	for _, hash := range []string{store.HashToken(join), tok.Hash} {
		if bytes.Contains(crs.Bytes(), []byte(hash)) {
			t.Errorf("hash %q in a custom resource, want Secrets only", hash)
		}
	}
	if bytes.Contains(crs.Bytes(), []byte("key")) && bytes.Contains(crs.Bytes(), []byte("tls.key")) {
		t.Error("CA key in a custom resource")
	}
}

// TestKubeCompact: the Lease holder's compaction removes a status page
// written for a cluster while it was removed, and API tokens long expired;
// what belongs to live clusters and valid tokens stays.
func TestKubeCompact(t *testing.T) {
	ns := newTestNamespace(t)
	s := openKube(t, ns, 0)
	ctx := t.Context()
	for _, c := range []string{"kept", "gone"} {
		if err := s.CreateCluster(ctx, store.Cluster{Name: c}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutStatus(ctx, c, testStatus("web", "r1")); err != nil {
			t.Fatal(err)
		}
	}
	// "gone" is removed by a replica while another still writes its
	// status: the late page outlives the cluster.
	if err := s.DeleteCluster(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	o, err := newObject(resStatus, statusPageName("gone", 0), labels("status", labelCluster, "gone"), statusPage{Cluster: "gone", Pages: 1, Apps: map[string]string{"web": ""}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.res(resStatus).Create(ctx, o, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	oldRaw, _, err := s.IssueAPIToken(ctx, store.APIToken{Name: "old", Role: store.RoleReadOnly, ExpiresAt: t0.Add(-48 * time.Hour)}, t0.Add(-72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	validRaw, _, err := s.IssueAPIToken(ctx, store.APIToken{Name: "valid", Role: store.RoleReadOnly, ExpiresAt: t0.Add(time.Hour)}, t0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Compact(ctx, t0, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("compaction removed %d objects, want 2 (the orphaned page, the old token)", n)
	}
	sts, err := s.ListStatus(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 1 || sts[0].Cluster != "kept" {
		t.Errorf("statuses after compaction: %v, want kept's only", sts)
	}
	if _, err := s.LookupAPIToken(ctx, oldRaw); err == nil {
		t.Error("long-expired token still stored")
	}
	if _, err := s.LookupAPIToken(ctx, validRaw); err != nil {
		t.Errorf("valid token: %v", err)
	}
}

// TestKubeCompactKeepsNewClusters: a cluster enrolled while the Lease
// holder compacts, whose agent reported before compaction listed the
// status pages, keeps its status and capabilities. Compaction listed the
// clusters first and the pages after: such a page looked orphaned and
// was deleted, and the hubs showed the app Unknown on that cluster for
// good (the agent re-sends a status only when it changes or on a new
// stream): 87 of 10,000 clusters in bench ha while the fleet grew.
func TestKubeCompactKeepsNewClusters(t *testing.T) {
	ns := newTestNamespace(t)
	ctx := t.Context()
	other := openKube(t, ns, 0)
	if err := other.CreateCluster(ctx, store.Cluster{Name: "old"}); err != nil {
		t.Fatal(err)
	}
	if err := other.PutStatus(ctx, "old", testStatus("web", "r1")); err != nil {
		t.Fatal(err)
	}
	// Between compaction's first list and its list of another resource,
	// another replica enrols "late" and stores what its agent reported.
	var mu sync.Mutex
	first := ""
	injected := false
	var raced error
	cfg := testAPIServer(t)
	cfg.Wrap(transport.WrapperFunc(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			kind := requestKind(r)
			mu.Lock()
			inject := false
			if strings.HasPrefix(kind, "list ") && kind != "list apitokens" {
				if first == "" {
					first = kind
				}
				inject = kind != first && !injected
				injected = injected || inject
			}
			mu.Unlock()
			if inject {
				raced = errors.Join(
					other.CreateCluster(ctx, store.Cluster{Name: "late"}),
					other.PutStatus(ctx, "late", testStatus("web", "r1")),
					other.PutCapabilities(ctx, store.ClusterCapabilities{Cluster: "late", KubeVersion: "v1.31.0"}),
				)
			}
			return rt.RoundTrip(r)
		})
	}))
	s, err := New(cfg, Options{Namespace: ns}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	n, err := s.Compact(ctx, t0, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if raced != nil {
		t.Fatal(raced)
	}
	if !injected {
		t.Fatal("compaction listed one resource only; the test wants to enrol a cluster between two lists")
	}
	if n != 0 {
		t.Errorf("compaction removed %d objects, want 0 (every page and capability has its cluster)", n)
	}
	sts, err := other.ListStatus(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range sts {
		got = append(got, r.Cluster+"/"+r.Status.GetApp())
	}
	if diff := cmp.Diff([]string{"late/web", "old/web"}, got); diff != "" {
		t.Errorf("statuses after compaction (-want +got):\n%s", diff)
	}
	caps, err := other.ListCapabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != 1 || caps[0].Cluster != "late" {
		t.Errorf("capabilities after compaction: %v, want late's", caps)
	}
}
