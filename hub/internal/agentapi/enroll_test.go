package agentapi_test

import (
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flotilla-cd/flotilla/hub/internal/pki"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func TestEnrollRefusesBadTokens(t *testing.T) {
	h := startHub(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock())
	ctx := t.Context()
	pin := h.ca.Hash()

	tokA := h.addCluster("a", 10*time.Minute)
	tokB := h.addCluster("b", 10*time.Minute)
	tests := []struct {
		name, cluster, token string
		want                 codes.Code
	}{
		{name: "another cluster's token", cluster: "a", token: tokB, want: codes.Unauthenticated},
		{name: "unknown cluster", cluster: "nope", token: tokA, want: codes.Unauthenticated},
		{name: "made-up token", cluster: "a", token: "flt_join_made_up", want: codes.Unauthenticated},
		{name: "no token", cluster: "a", token: "", want: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := enroll(ctx, h.addr, tt.cluster, tt.token, pin)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("enrol %s: %v; want code %s", tt.cluster, err, tt.want)
			}
		})
	}

	t.Run("a CA with another hash stops the first contact", func(t *testing.T) {
		other, err := pki.NewCA(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := enroll(ctx, h.addr, "a", tokA, other.Hash()); err == nil {
			t.Fatal("enrolled against a hub whose CA does not match the pin")
		}
	})
	t.Run("a certificate request that cannot be signed leaves the token usable", func(t *testing.T) {
		conn, err := dialEnroll(h.addr, pin)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = apiv1alpha1.NewAgentServiceClient(conn).Enroll(ctx, &apiv1alpha1.EnrollRequest{Cluster: "a", Token: tokA, CsrPem: []byte("not a CSR")})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("enrol with a bad CSR: %v; want InvalidArgument", err)
		}
	})
	t.Run("the token works once", func(t *testing.T) {
		if _, err := enroll(ctx, h.addr, "a", tokA, pin); err != nil {
			t.Fatalf("first use: %v", err)
		}
		_, err := enroll(ctx, h.addr, "a", tokA, pin)
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("second use: %v; want Unauthenticated", err)
		}
	})
	t.Run("an expired token is refused", func(t *testing.T) {
		tok := h.addCluster("c", time.Second)
		h.clock.Add(2 * time.Second)
		_, err := enroll(ctx, h.addr, "c", tok, pin)
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("expired token: %v; want Unauthenticated", err)
		}
		jt, err := h.st.GetJoinToken(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		if !jt.UsedAt.IsZero() {
			t.Error("the refused token was marked used")
		}
	})
}
