package agentapi_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// TestLargeBundleIsDelivered sends a bundle whose objects are random (so
// gzip barely helps): 16 MiB of objects, more than 8 MiB and far more than
// gRPC's default 4 MiB message limit even compressed.
func TestLargeBundleIsDelivered(t *testing.T) {
	h := startHub(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock())
	a := h.enroll("a")
	objs := configMaps("big", 16, func(int) string {
		b := make([]byte, 768<<10)
		rand.Read(b)
		return base64.StdEncoding.EncodeToString(b) // 1 MiB, as a ConfigMap holds at most
	})
	raw, err := json.Marshal(objs)
	if err != nil {
		t.Fatal(err)
	}
	big, err := manifest.NewBundle("big", "ns", "rev", "apps/big", objs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 16<<20 || len(big.GetObjectsGzip()) < 8<<20 {
		t.Fatalf("bundle of %d bytes, %d compressed: not large enough to prove anything", len(raw), len(big.GetObjectsGzip()))
	}
	t.Logf("objects %.1f MiB, compressed %.1f MiB", float64(len(raw))/(1<<20), float64(len(big.GetObjectsGzip()))/(1<<20))
	h.fleet.SetAll(map[string]fleet.Desired{"a": {"big": big}})

	s, err := a.connect(t.Context(), h.addr, hello(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	ds := s.desired(t)
	if len(ds.GetBundles()) != 1 {
		t.Fatalf("got %d bundles", len(ds.GetBundles()))
	}
	got := ds.GetBundles()[0]
	if err := manifest.VerifyDigest(got); err != nil {
		t.Fatal(err)
	}
	decoded, err := manifest.DecodeObjects(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(decoded) != len(objs) {
		t.Fatalf("decoded %d objects, want %d", len(decoded), len(objs))
	}
}
