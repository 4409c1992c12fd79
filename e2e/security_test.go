//go:build !unit

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// scenarioSecurity: a wrong join token, an expired join token, another
// cluster's certificate, a TLS connection without a client certificate
// and a plaintext connection are all refused, and the refusal is in the
// logs. The intruding agents keep their state in their own namespace and
// identity folder, so the real agents are not disturbed.
func scenarioSecurity(e *env) {
	e.t.Run("WrongJoinToken", func(t *testing.T) {
		e := e.sub(t)
		j, err := e.hub.AddCluster(t.Context(), "intruder")
		if err != nil {
			t.Fatal(err)
		}
		defer e.cli("cluster", "remove", "intruder")
		j.Token = strings.Repeat("0", len(j.Token))
		a := e.intruder("wrong-token", "gamma", j)
		e.wantRefused(a, "join token invalid")
		e.wantHubLog("enrolment refused", "intruder")
		e.wantNotEnrolled("intruder")
	})

	e.t.Run("ExpiredJoinToken", func(t *testing.T) {
		e := e.sub(t)
		// A hub of its own, with join tokens that live one second.
		apps := filepath.Join(e.dir, "short-ttl-apps")
		if err := os.MkdirAll(apps, 0o755); err != nil {
			t.Fatal(err)
		}
		hubDir := filepath.Join(e.dir, "short-ttl")
		if err := os.MkdirAll(hubDir, 0o755); err != nil {
			t.Fatal(err)
		}
		h, err := harness.StartHub(t.Context(), binDir, hubDir, harness.HubOptions{AppsDir: apps, Extra: []string{"--join-token-ttl", "1s"}})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Stop()
		j, err := h.AddCluster(t.Context(), "late")
		if err != nil {
			t.Fatal(err)
		}
		e.eventually("join token expired", func() error {
			if time.Now().Before(j.ExpiresAt) {
				return fmt.Errorf("token valid until %s", j.ExpiresAt)
			}
			return nil
		})
		a := e.intruder("expired-token", "gamma", j)
		e.wantRefused(a, "join token expired")
		if !h.Grep("enrolment refused") {
			t.Errorf("hub log does not show the refused enrolment:\n%s", h.Tail(4000))
		}
		// The control: a fresh token enrols the same agent at once.
		j, err = h.NewToken(t.Context(), "late")
		if err != nil {
			t.Fatal(err)
		}
		a = e.intruder("fresh-token", "gamma", j)
		defer a.Stop()
		e.waitConnected(h, "late", true)
	})

	e.t.Run("OtherClustersCertificate", func(t *testing.T) {
		e := e.sub(t)
		sec, err := e.clients["alpha"].CoreV1().Secrets("flotilla-system").Get(t.Context(), "flotilla-agent-identity", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		copyIdentity := func(dir, cluster string) string {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			for k, v := range sec.Data {
				if err := os.WriteFile(filepath.Join(dir, k), v, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if cluster != "" {
				if err := os.WriteFile(filepath.Join(dir, "cluster"), []byte(cluster), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			return dir
		}
		j := harness.Join{Cluster: "beta", HubAddr: e.hub.AgentAddr}

		// alpha's identity as it was taken, used for beta.
		a := e.intruder("stolen-cert", "beta", j, "--identity-dir", copyIdentity(filepath.Join(e.dir, "stolen-id"), ""))
		e.wantRefused(a, "cluster beta is not enrolled")

		// The same, with the identity's stored cluster name rewritten to
		// beta: the certificate still says alpha (and the hub would take it
		// for alpha), so the agent must not run as beta with it.
		a = e.intruder("forged-cert", "beta", j, "--identity-dir", copyIdentity(filepath.Join(e.dir, "forged-id"), "beta"))
		e.wantRefused(a, "certificate is for cluster alpha")
	})

	e.t.Run("NoClientCertificate", func(t *testing.T) {
		e := e.sub(t)
		sec, err := e.clients["alpha"].CoreV1().Secrets("flotilla-system").Get(t.Context(), "flotilla-agent-identity", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(sec.Data["ca.crt"]) {
			t.Fatal("no CA in alpha's identity")
		}
		creds := credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
		err = dialConnect(t, e.hub.AgentAddr, grpc.WithTransportCredentials(creds))
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "client certificate") {
			t.Fatalf("Connect over TLS without a client certificate: %v, want Unauthenticated naming the client certificate", err)
		}
		t.Logf("refused: %v", err)
		e.wantHubLog("stream refused", "client certificate")
	})

	e.t.Run("Plaintext", func(t *testing.T) {
		e := e.sub(t)
		err := dialConnect(t, e.hub.AgentAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err == nil || status.Code(err) == codes.OK {
			t.Fatalf("plaintext Connect: %v, want refused", err)
		}
		t.Logf("refused: %v", err)
		e.wantHubLog("handshake", "127.0.0.1")
	})
}

// intruder starts an agent for cluster name with the join data j on the
// cluster named on, keeping its state in a namespace and folder of its own.
func (e *env) intruder(name, on string, j harness.Join, extra ...string) *harness.Agent {
	e.t.Helper()
	dir := filepath.Join(e.dir, "intruders", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	args := append([]string{"--namespace", "flotilla-" + name}, extra...)
	if !containsArg(extra, "--identity-dir") {
		args = append(args, "--identity-dir", filepath.Join(dir, "identity"))
	}
	a, err := harness.StartAgent(binDir, dir, e.clusters[on].Kubeconfig(), j, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(a.Kill)
	return a
}

func containsArg(args []string, a string) bool {
	for _, x := range args {
		if x == a {
			return true
		}
	}
	return false
}

// wantRefused waits for agent a to give up with an error whose log names
// reason.
func (e *env) wantRefused(a *harness.Agent, reason string) {
	e.t.Helper()
	exited, err := a.WaitExit(waitTimeout)
	if !exited {
		e.t.Fatalf("agent %s still runs; it should have been refused (%s):\n%s", a.Cluster, reason, a.Tail(4000))
	}
	if err == nil {
		e.t.Fatalf("agent %s exited without error; it should have been refused (%s):\n%s", a.Cluster, reason, a.Tail(4000))
	}
	if !a.Grep(reason) {
		e.t.Fatalf("agent %s log does not name the refusal %q:\n%s", a.Cluster, reason, a.Tail(4000))
	}
	e.t.Logf("agent refused as expected (%v); log:\n%s", err, lastLines(a.Tail(2000), 3))
}

// wantHubLog waits until the hub log has a line with every one of parts.
func (e *env) wantHubLog(parts ...string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("hub log line with %q", parts), func() error {
		for _, line := range strings.Split(e.hub.Tail(1<<20), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				e.t.Logf("hub log: %s", line)
				return nil
			}
		}
		return fmt.Errorf("no such line")
	})
}

func (e *env) wantNotEnrolled(cluster string) {
	e.t.Helper()
	cs, err := getCluster(e.t.Context(), e.hub, cluster)
	if err != nil {
		e.t.Fatal(err)
	}
	if cs.Connected || cs.Enrolled {
		e.t.Fatalf("cluster %s after a refused enrolment: %+v", cluster, cs)
	}
}

// dialConnect opens the agent stream with opts, sends a Hello and returns
// the error the hub answers with.
func dialConnect(t *testing.T, addr string, opts ...grpc.DialOption) error {
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return err
	}
	defer conn.Close()
	stream, err := apiv1alpha1.NewAgentServiceClient(conn).Connect(t.Context())
	if err != nil {
		return err
	}
	if err := stream.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Hello{Hello: &apiv1alpha1.Hello{ProtocolVersion: 1}}}); err != nil {
		_, err = stream.Recv()
		return err
	}
	_, err = stream.Recv()
	return err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
