package agentapi_test

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/flotilla-cd/flotilla/hub/internal/pki"
)

func TestConnectRefusesWithoutMutualTLS13(t *testing.T) {
	h := startHub(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock())
	ctx := t.Context()
	a := h.enroll("a")
	good, err := a.tlsConfig()
	if err != nil {
		t.Fatal(err)
	}

	// A certificate naming cluster a, from a CA other than the hub's.
	other, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, csrPEM, err := newCSR("a")
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.SignClient(csrPEM, "a", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forgedCert, err := tls.X509KeyPair(forged.CertPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}

	tls12 := good.Clone()
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	noCert := good.Clone()
	noCert.Certificates = nil
	forgedCfg := good.Clone()
	forgedCfg.Certificates = []tls.Certificate{forgedCert}

	tests := []struct {
		name  string
		creds credentials.TransportCredentials
		want  codes.Code
	}{
		{name: "plaintext", creds: insecure.NewCredentials(), want: codes.Unavailable},
		{name: "TLS 1.2", creds: credentials.NewTLS(tls12), want: codes.Unavailable},
		{name: "no client certificate", creds: credentials.NewTLS(noCert), want: codes.Unauthenticated},
		{name: "client certificate of another CA", creds: credentials.NewTLS(forgedCfg), want: codes.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := dialConnect(ctx, h.addr, tt.creds, hello(nil))
			if err == nil {
				s.close()
				t.Fatal("stream opened")
			}
			if got := status.Code(err); got != tt.want {
				t.Fatalf("connect: %v; want code %s", err, tt.want)
			}
			if n := h.fleet.ConnectedCount(); n != 0 {
				t.Fatalf("%d sessions attached", n)
			}
		})
	}

	t.Run("the agent's own certificate over TLS 1.3", func(t *testing.T) {
		s, err := a.connect(ctx, h.addr, hello(nil))
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		if s.welcome.GetCluster() != "a" {
			t.Errorf("welcomed as %q, want a", s.welcome.GetCluster())
		}
		conn, err := tls.Dial("tcp", h.addr, good)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.Handshake(); err != nil {
			t.Fatal(err)
		}
		if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
			t.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(v))
		}
	})

	t.Run("a serving certificate of the hub CA is no client identity", func(t *testing.T) {
		sc, err := h.ca.ServingCert([]string{"a"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cfg := good.Clone()
		cfg.Certificates = []tls.Certificate{sc}
		if s, err := dialConnect(ctx, h.addr, credentials.NewTLS(cfg), hello(nil)); err == nil {
			s.close()
			t.Fatal("stream opened with a serving certificate")
		}
		leaf, _ := x509.ParseCertificate(sc.Certificate[0])
		t.Logf("refused %s with key usage %v", leaf.Subject, leaf.ExtKeyUsage)
	})
}
