package agentapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flotilla-cd/flotilla/hub/internal/agentapi"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/pki"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/identity"
	"github.com/flotilla-cd/flotilla/shared/manifest"
	"github.com/flotilla-cd/flotilla/shared/version"
)

// clock is the hub's clock in these tests. It starts at the real time and
// is only moved forward by seconds, so that certificates it stamps stay
// valid for the real TLS stacks on both sides.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// hub is an in-process hub agent endpoint: a real bbolt store file, the CA
// loaded from it, a fleet, and the gRPC server on a TLS listener on
// 127.0.0.1.
type hub struct {
	t     *testing.T
	path  string
	st    *store.Bolt
	ca    *pki.CA
	fleet *fleet.Fleet
	gs    *agentapi.Endpoint
	addr  string
	clock *clock
	done  chan struct{}
}

// startHub starts a hub on the store file path, listening on addr
// ("127.0.0.1:0" for any port). It is stopped at the end of the test.
func startHub(t *testing.T, path, addr string, clk *clock) *hub {
	t.Helper()
	return startHubWith(t, path, addr, clk, agentapi.Options{})
}

// startHubWith is startHub with options (CertTTL and Now are set here).
func startHubWith(t *testing.T, path, addr string, clk *clock, opts agentapi.Options) *hub {
	t.Helper()
	return startHubWrapped(t, path, addr, clk, opts, nil)
}

// startHubWrapped is startHubWith whose agent server uses wrap's store
// around the bbolt one (nil: the bbolt store itself).
func startHubWrapped(t *testing.T, path, addr string, clk *clock, opts agentapi.Options, wrap func(*store.Bolt) store.Store) *hub {
	t.Helper()
	ctx := t.Context()
	log := hclog.NewNullLogger()
	if testing.Verbose() {
		log = hclog.New(&hclog.LoggerOptions{Name: "hub", Level: hclog.Info, Output: os.Stderr})
	}
	st, err := store.Open(path, log.Named("store"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadOrCreate(ctx, st, filepath.Join(filepath.Dir(path), "ca.key"), false, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.ServingCert([]string{"127.0.0.1", "localhost"}, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	fl := fleet.New()
	opts.CertTTL, opts.Now = time.Hour, clk.Now
	var served store.Store = st
	if wrap != nil {
		served = wrap(st)
	}
	srv := agentapi.New(ca, served, fl, opts, log.Named("agents"))
	gs := srv.Endpoint(agentapi.TLSConfig(ca, serving))
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &hub{t: t, path: path, st: st, ca: ca, fleet: fl, gs: gs, addr: lis.Addr().String(), clock: clk, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(h.stop)
	return h
}

// stop stops serving (closing every stream) and closes the store; it may
// be called more than once.
func (h *hub) stop() {
	select {
	case <-h.done:
		return
	default:
	}
	h.gs.Stop()
	<-h.done
	if err := h.st.Close(); err != nil {
		h.t.Errorf("close store: %v", err)
	}
}

// addCluster registers a cluster and returns a join token valid for ttl.
func (h *hub) addCluster(name string, ttl time.Duration) string {
	h.t.Helper()
	ctx := h.t.Context()
	if err := h.st.CreateCluster(ctx, store.Cluster{Name: name, CreatedAt: h.clock.Now()}); err != nil && !errors.Is(err, store.ErrConflict) {
		h.t.Fatal(err)
	}
	tok, err := h.st.CreateJoinToken(ctx, name, ttl, h.clock.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// enroll registers and enrols cluster.
func (h *hub) enroll(cluster string) *agent {
	h.t.Helper()
	a, err := enroll(h.t.Context(), h.addr, cluster, h.addCluster(cluster, 10*time.Minute), h.ca.Hash())
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// agent is the agent side of the protocol, spoken directly with grpc.
type agent struct {
	cluster string
	keyPEM  []byte
	certPEM []byte
	caPEM   []byte
}

func newCSR(cn string) (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		return nil, nil, err
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// pinnedTLS trusts the hub's serving certificate only when its chain holds
// a CA with the pin (as the agent's first contact does).
func pinnedTLS(pin string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // verified below against the pin
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			for _, r := range raw[1:] {
				if identity.VerifyPin(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r}), pin) == nil {
					return nil
				}
			}
			return identity.ErrPinMismatch
		},
	}
}

// enroll enrols cluster with token; the returned error is the gRPC one.
func enroll(ctx context.Context, addr, cluster, token, pin string) (*agent, error) {
	keyPEM, csrPEM, err := newCSR(cluster)
	if err != nil {
		return nil, err
	}
	conn, err := dialEnroll(addr, pin)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	resp, err := apiv1alpha1.NewAgentServiceClient(conn).Enroll(ctx, &apiv1alpha1.EnrollRequest{Cluster: cluster, Token: token, CsrPem: csrPEM, AgentVersion: "test"})
	if err != nil {
		return nil, err
	}
	return &agent{cluster: cluster, keyPEM: keyPEM, certPEM: resp.GetCertificatePem(), caPEM: resp.GetCaPem()}, nil
}

func dialEnroll(addr, pin string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(pinnedTLS(pin))))
}

// tlsConfig is the agent's mutual TLS configuration.
func (a *agent) tlsConfig() (*tls.Config, error) {
	cert, err := tls.X509KeyPair(a.certPEM, a.keyPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.caPEM)
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}}, nil
}

func (a *agent) serial() string {
	c, err := identity.FirstCert(a.certPEM)
	if err != nil {
		panic(err)
	}
	return c.SerialNumber.Text(16)
}

// stream is an open Connect stream whose messages are pumped into msgs.
type stream struct {
	apiv1alpha1.AgentService_ConnectClient
	welcome *apiv1alpha1.Welcome
	msgs    chan *apiv1alpha1.HubMessage
	err     chan error // the error that ended the stream
	close   func()
}

func hello(digests map[string]string) *apiv1alpha1.Hello {
	return &apiv1alpha1.Hello{ProtocolVersion: version.ProtocolVersion, AgentVersion: "test", Capabilities: version.Capabilities, BundleDigests: digests}
}

// connect opens a stream, says h and waits for the Welcome. The error is
// the one the hub ended the stream with.
func (a *agent) connect(ctx context.Context, addr string, h *apiv1alpha1.Hello) (*stream, error) {
	cfg, err := a.tlsConfig()
	if err != nil {
		return nil, err
	}
	return dialConnect(ctx, addr, credentials.NewTLS(cfg), h)
}

func dialConnect(ctx context.Context, addr string, creds credentials.TransportCredentials, h *apiv1alpha1.Hello) (*stream, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(agentapi.MaxMessageBytes)))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	closeAll := func() { cancel(); conn.Close() }
	cs, err := apiv1alpha1.NewAgentServiceClient(conn).Connect(ctx)
	if err != nil {
		closeAll()
		return nil, err
	}
	if err := cs.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Hello{Hello: h}}); err != nil {
		// The hub refused the stream before reading; Recv has the reason.
		if _, rerr := cs.Recv(); rerr != nil {
			err = rerr
		}
		closeAll()
		return nil, err
	}
	first, err := cs.Recv()
	if err != nil {
		closeAll()
		return nil, err
	}
	if first.GetWelcome() == nil {
		closeAll()
		return nil, fmt.Errorf("first message %v is not a Welcome", first)
	}
	s := &stream{AgentService_ConnectClient: cs, welcome: first.GetWelcome(), msgs: make(chan *apiv1alpha1.HubMessage, 64), err: make(chan error, 1), close: closeAll}
	go func() {
		for {
			m, err := cs.Recv()
			if err != nil {
				s.err <- err
				return
			}
			s.msgs <- m
		}
	}()
	return s, nil
}

// next returns the next message, failing the test after a generous wait.
func (s *stream) next(t *testing.T) *apiv1alpha1.HubMessage {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case err := <-s.err:
		t.Fatalf("stream ended: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no message from the hub within 20s")
	}
	return nil
}

// desired returns the next DesiredState, skipping other messages.
func (s *stream) desired(t *testing.T) *apiv1alpha1.DesiredState {
	t.Helper()
	for {
		if ds := s.next(t).GetDesired(); ds != nil {
			return ds
		}
	}
}

// ended waits for the hub to end the stream and returns its error.
func (s *stream) ended(t *testing.T) error {
	t.Helper()
	for {
		select {
		case <-s.msgs:
		case err := <-s.err:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("the hub did not end the stream within 20s")
			return nil
		}
	}
}

// configMaps returns n ConfigMaps named <prefix>-<i> holding data.
func configMaps(prefix string, n int, data func(i int) string) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, n)
	for i := range out {
		out[i] = &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": fmt.Sprintf("%s-%d", prefix, i)},
			"data":     map[string]any{"v": data(i)},
		}}
	}
	return out
}

// bundle builds a bundle of app holding ConfigMaps with value v.
func bundle(t *testing.T, app, v string) *apiv1alpha1.Bundle {
	t.Helper()
	b, err := manifest.NewBundle(app, "ns-"+app, "rev", "apps/"+app, configMaps(app, 2, func(int) string { return v }), &apiv1alpha1.SyncPolicy{Automated: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// digests maps app to digest.
func digests(bs ...*apiv1alpha1.Bundle) map[string]string {
	m := map[string]string{}
	for _, b := range bs {
		m[b.GetApp()] = b.GetDigest()
	}
	return m
}
