package agentapi_test

import (
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/version"
)

func TestProtocolVersionSkew(t *testing.T) {
	h := startHub(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock())
	ctx := t.Context()
	a := h.enroll("a")
	app := bundle(t, "app", "v1")
	h.fleet.SetAll(map[string]fleet.Desired{"a": {"app": app}})

	v := version.ProtocolVersion
	tests := []struct {
		name    string
		version uint32
		want    codes.Code
	}{
		{name: "same", version: v},
		{name: "agent one minor version older", version: v - 1},
		{name: "agent one minor version newer", version: v + 1},
		{name: "agent two minor versions newer", version: v + 2, want: codes.FailedPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hl := hello(nil)
			hl.ProtocolVersion = tt.version
			hl.Capabilities = []string{"bundle-gzip"} // an older agent knows fewer
			s, err := a.connect(ctx, h.addr, hl)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("connect speaking version %d: %v; want %s", tt.version, err, tt.want)
			}
			if err != nil {
				return
			}
			defer s.close()
			if s.welcome.GetProtocolVersion() != v {
				t.Errorf("hub says version %d, want %d", s.welcome.GetProtocolVersion(), v)
			}
			ds := s.desired(t)
			if len(ds.GetBundles()) != 1 || ds.GetBundles()[0].GetDigest() != app.GetDigest() {
				t.Errorf("desired state %v, want the bundle of app", ds)
			}
		})
	}
}

// withUnknown returns m's wire form with fields a newer peer might add:
// an unknown varint and an unknown length-delimited field.
func withUnknown(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	b = protowire.AppendTag(b, 900, protowire.VarintType)
	b = protowire.AppendVarint(b, 42)
	b = protowire.AppendTag(b, 901, protowire.BytesType)
	return protowire.AppendBytes(b, []byte("from a newer hub"))
}

func TestUnknownFieldsAreIgnored(t *testing.T) {
	b := bundle(t, "app", "v1")
	ds := &apiv1alpha1.HubMessage{Msg: &apiv1alpha1.HubMessage_Desired{Desired: &apiv1alpha1.DesiredState{Bundles: []*apiv1alpha1.Bundle{b}, RemovedApps: []string{"old"}}}}
	for _, m := range []proto.Message{b, ds, hello(map[string]string{"app": b.GetDigest()}), &apiv1alpha1.AppStatus{App: "app", Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED}} {
		got := m.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(withUnknown(t, m), got); err != nil {
			t.Fatalf("decode %T with unknown fields: %v", m, err)
		}
		got.ProtoReflect().SetUnknown(nil)
		if !proto.Equal(m, got) {
			t.Errorf("%T with unknown fields decoded to %v, want %v", m, got, m)
		}
	}

	t.Run("over the wire", func(t *testing.T) {
		h := startHub(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock())
		a := h.enroll("a")
		h.fleet.SetAll(map[string]fleet.Desired{"a": {"app": b}})
		hl := hello(nil)
		var raw []byte
		raw = protowire.AppendTag(raw, 77, protowire.BytesType)
		raw = protowire.AppendBytes(raw, []byte("a field this hub does not know"))
		hl.ProtoReflect().SetUnknown(raw)
		s, err := a.connect(t.Context(), h.addr, hl)
		if err != nil {
			t.Fatalf("hello with an unknown field: %v", err)
		}
		defer s.close()
		st := &apiv1alpha1.AppStatus{App: "app", Digest: b.GetDigest()}
		st.ProtoReflect().SetUnknown(raw)
		if err := s.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Status{Status: st}}); err != nil {
			t.Fatal(err)
		}
		if ds := s.desired(t); len(ds.GetBundles()) != 1 {
			t.Fatalf("desired %v", ds)
		}
	})
}
