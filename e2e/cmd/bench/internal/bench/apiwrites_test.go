package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The testdata files are the apiserver_request_total family (and a few
// others around it) of a real management kube-apiserver's /metrics during
// the ha phase (three hub replicas, 300 simulated agents), read 10 s
// apart with nothing changing.
func readWrites(t *testing.T, name string) map[string]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := writeCounts(f)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestWriteCounts: write requests are counted per verb and resource (with
// the subresource), over every response code; reads are left out.
func TestWriteCounts(t *testing.T) {
	w := readWrites(t, "apiserver-metrics-ha-0.txt")
	for k := range w {
		if verb, _, _ := strings.Cut(k, " "); !writeVerbs[verb] {
			t.Errorf("read counted as a write: %s", k)
		}
	}
	cases := []struct {
		key  string
		want float64
	}{
		{"PUT leases", 38},
		{"PUT clusterstatuses", 568},
		{"PUT customresourcedefinitions", 32},
		{"PUT customresourcedefinitions/status", 16},
		{"POST historyentries", 891 + 1}, // 201 and one 409 conflict
		{"PUT configmaps", 4 + 1},        // 200 and one 404
		{"APPLY flowschemas/status", 13}, // server-side apply
		{"DELETE leases", 1},             // 404
		{"POST namespaces", 5 + 1},       // 201 and 409
		{"GET clusters", 0},              // a read
	}
	got := map[string]float64{}
	want := map[string]float64{}
	for _, c := range cases {
		got[c.key], want[c.key] = w[c.key], c.want
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("write counts (-want +got):\n%s", d)
	}
}

// TestSumWrites: between the two captures only the Leases were written
// (the leader's renewals and the API server's own).
func TestSumWrites(t *testing.T) {
	before, after := readWrites(t, "apiserver-metrics-ha-0.txt"), readWrites(t, "apiserver-metrics-ha-1.txt")
	all := sumWrites(before, after, func(string) bool { return true })
	others := sumWrites(before, after, func(k string) bool { return !strings.HasSuffix(k, " leases") })
	if d := cmp.Diff([]float64{8, 0}, []float64{all, others}); d != "" {
		t.Errorf("writes between the captures [all, not Leases] (-want +got):\n%s", d)
	}
}

// TestWriteCountsRejectsGarbage: text that is not the exposition format
// is an error, not zero writes.
func TestWriteCountsRejectsGarbage(t *testing.T) {
	if _, err := writeCounts(strings.NewReader("apiserver_request_total{verb=\"PUT\" 3\n")); err == nil {
		t.Error("malformed metrics text parsed without error")
	}
}

// TestWriteCountsDryRunApart: a dry-run is counted under its own key, not
// as a write of the resource.
func TestWriteCountsDryRunApart(t *testing.T) {
	text := `# TYPE apiserver_request_total counter
apiserver_request_total{code="200",dry_run="All",resource="configmaps",subresource="",verb="APPLY"} 7
apiserver_request_total{code="201",dry_run="",resource="configmaps",subresource="",verb="APPLY"} 5
apiserver_request_total{code="200",dry_run="",resource="configmaps",subresource="",verb="GET"} 9
`
	w, err := writeCounts(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]float64{"APPLY configmaps": 5, "APPLY configmaps (dry-run)": 7}, w); d != "" {
		t.Errorf("write counts (-want +got):\n%s", d)
	}
}
