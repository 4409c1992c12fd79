package agentapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // lets agents compress status
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/liveview"
	"github.com/flotilla-cd/flotilla/hub/internal/pki"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	"github.com/flotilla-cd/flotilla/shared/agentkeepalive"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Options configure the server.
type Options struct {
	// CertTTL is the lifetime of agent client certificates; default 24h.
	CertTTL time.Duration
	// HelloTimeout bounds the wait for a stream's first message (the
	// agent's Hello); default DefaultHelloTimeout.
	HelloTimeout time.Duration
	// Limits bound the agent port; zero fields take DefaultLimits.
	Limits Limits
	// RestoreMode adopts a certificate this hub's CA issued for a cluster
	// after the one the store names (the store was restored from a backup
	// older than the agents' renewals); see admit.
	RestoreMode bool
	// Ready, when set, is asked before a stream is attached: an error
	// refuses it (Unavailable), so that the agent goes to another hub (one
	// that lost its store, say).
	Ready func() error
	// SharedStore says other hubs write the same store (replicas on the
	// Kubernetes store): an agent's status is then written only while
	// the stream that brought it is still open here. Once it ended the
	// agent may be on another replica, which writes what it sends there
	// (agents send every status again on a new stream); a late write from
	// here, retried after this hub lost and regained its API server,
	// would put back an older status over that one.
	SharedStore bool
	// Hooks observe the protocol (metrics, history); any may be nil.
	Hooks Hooks
	// Live, when set, gets every stream (Attach) to send live-view
	// requests on, and the agents' answers.
	Live *liveview.Broker
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Hooks are called as agents talk to the hub.
type Hooks struct {
	// Status is called after an agent's status was recorded.
	Status func(cluster string, prev, cur *apiv1alpha1.AppStatus)
	// Sent is called after a desired state was pushed to an agent.
	Sent func(cluster string, ds *apiv1alpha1.DesiredState)
	// CommandResult is called for every command result from an agent.
	CommandResult func(cluster string, r *apiv1alpha1.CommandResult)
	// Capabilities is called with what an agent reports about its API
	// server: in its Hello and whenever it changes. Agents that do not
	// report them never call it.
	Capabilities func(ctx context.Context, cluster string, c *apiv1alpha1.ClusterCapabilities)
}

// Server implements apiv1alpha1.AgentServiceServer.
type Server struct {
	apiv1alpha1.UnimplementedAgentServiceServer
	opts  Options
	ca    *pki.CA
	store store.Store
	fleet *fleet.Fleet
	log   hclog.Logger
	now   func() time.Time

	statuses  *statusWriter
	serialsMu sync.Mutex
	serials   map[string]string // cluster → serial of the stream attached here
	dropped   atomic.Int64      // statuses refused since the last log line
	dropLog   *rate.Limiter     // of that log line
}

var _ apiv1alpha1.AgentServiceServer = (*Server)(nil)

// New returns a Server.
func New(ca *pki.CA, st store.Store, fl *fleet.Fleet, opts Options, log hclog.Logger) *Server {
	if opts.CertTTL <= 0 {
		opts.CertTTL = 24 * time.Hour
	}
	if opts.HelloTimeout <= 0 {
		opts.HelloTimeout = DefaultHelloTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Limits = opts.Limits.withDefaults()
	return &Server{opts: opts, ca: ca, store: st, fleet: fl, log: log, now: opts.Now, statuses: newStatusWriter(st, opts.SharedStore, log), serials: map[string]string{},
		dropLog: rate.NewLimiter(rate.Every(10*time.Second), 1)}
}

// Run writes agents' status reports to the store in the background until
// ctx ends (and then writes what is left). Without Run, each report is
// written before the next message of its stream is read.
func (s *Server) Run(ctx context.Context) error {
	s.statuses.run(ctx)
	return nil
}

// PendingStatusWrites returns how many agents' statuses were received and
// are not stored yet: queued, being written, or waiting for a retry.
func (s *Server) PendingStatusWrites() int { return s.statuses.waiting() }

// MaxMessageBytes bounds one gRPC message either way. Bundles carry
// gzip-compressed objects, so this is far more than MaxBundleBytes needs.
const MaxMessageBytes = 512 << 20

// TLSConfig returns the server's TLS configuration: TLS 1.3 only, the given
// serving certificate, client certificates verified against the hub CA when
// offered (Enroll runs without one; Connect requires one), HTTP/2 by ALPN.
func TLSConfig(ca *pki.CA, serving tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{serving},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    ca.Pool(),
		NextProtos:   []string{"h2"},
	}
}

// maxHeaderListBytes bounds the request headers of one call on the agent
// port; agents send a few hundred bytes.
const maxHeaderListBytes = 16 << 10

// Endpoint is the agent port: its admission (connection limits, TLS
// handshake under a deadline) and its two gRPC servers, one for enrolled
// agents and one for clients without a certificate (see port.go).
type Endpoint struct {
	srv            *Server
	tlsCfg         *tls.Config
	agents, enroll *grpc.Server

	mu  sync.Mutex
	lis net.Listener
}

// Endpoint builds the agent port's gRPC servers with TLS, keepalives and
// message and connection limits (Options.Limits), and registers s on them.
func (s *Server) Endpoint(tlsCfg *tls.Config) *Endpoint {
	lim := s.opts.Limits
	agents := grpc.NewServer(
		grpc.Creds(handshakenCreds{}),
		grpc.MaxRecvMsgSize(64<<20),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.MaxConcurrentStreams(lim.MaxStreamsPerConn),
		grpc.MaxHeaderListSize(maxHeaderListBytes),
		// Only agents ping an idle connection; the hub pings an agent
		// quiet for longer than its interval (see agentkeepalive).
		grpc.KeepaliveParams(agentkeepalive.Server(lim.AuthenticatedIdle)),
		grpc.KeepaliveEnforcementPolicy(agentkeepalive.Enforcement()),
		// Agents are mostly idle: gRPC shares write buffers between
		// connections (its default now), taken only while writing, which
		// keeps the memory per connected agent down. No read
		// buffer: the framer reads from the TLS connection, which already
		// holds a whole decrypted record, so a bufio.Reader on top only
		// copied it again and kept 8 KiB per connection.
		grpc.ReadBufferSize(0),
		// The shared write buffer is taken from a pool for each flush:
		// a fan-out to 10,000 agents takes 10,000 at once, garbage for
		// the collector after. 16 KiB (gRPC's default is 32 KiB) is what
		// one TLS record carries, and TLS writes each record on its own,
		// so a larger batch saved no write.
		grpc.WriteBufferSize(16<<10),
	)
	apiv1alpha1.RegisterAgentServiceServer(agents, s)

	// Clients without a certificate: message and flow-control windows sized
	// for an EnrollRequest (fixed windows also turn off gRPC's window
	// growth), few streams, short-lived connections, Enroll rate-limited
	// per source address.
	win := int32(max(lim.EnrollMessageBytes, 64<<10))
	enroll := grpc.NewServer(
		grpc.Creds(handshakenCreds{}),
		grpc.MaxRecvMsgSize(lim.EnrollMessageBytes),
		grpc.MaxSendMsgSize(1<<20),
		grpc.InitialWindowSize(win),
		grpc.InitialConnWindowSize(win),
		grpc.MaxConcurrentStreams(min(lim.MaxStreamsPerConn, 4)),
		grpc.MaxHeaderListSize(maxHeaderListBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time: 30 * time.Second, Timeout: 10 * time.Second,
			MaxConnectionIdle: lim.UnauthenticatedIdle, MaxConnectionAge: lim.UnauthenticatedMaxAge,
			MaxConnectionAgeGrace: lim.UnauthenticatedMaxAge / 10,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.UnaryInterceptor(newPeerLimiter(lim.EnrollRate, lim.EnrollBurst).unary),
	)
	apiv1alpha1.RegisterAgentServiceServer(enroll, enrollService{s})
	return &Endpoint{srv: s, tlsCfg: tlsCfg, agents: agents, enroll: enroll}
}

// Serve serves on lis until Stop or GracefulStop, or lis fails.
func (e *Endpoint) Serve(lis net.Listener) error {
	e.mu.Lock()
	e.lis = lis
	e.mu.Unlock()
	p := newPort(lis, e.tlsCfg, e.srv.opts.Limits, e.srv.log)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = e.agents.Serve(p.agents) }()
	go func() { defer wg.Done(); _ = e.enroll.Serve(p.enroll) }()
	err := p.run()
	wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (e *Endpoint) closeListener() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lis != nil {
		_ = e.lis.Close()
	}
}

// Stop closes the listener and every connection at once.
func (e *Endpoint) Stop() {
	e.closeListener()
	e.enroll.Stop()
	e.agents.Stop()
}

// GracefulStop closes the listener and waits for the calls in flight
// (agent streams end when the agent or the hub ends them).
func (e *Endpoint) GracefulStop() {
	e.closeListener()
	e.enroll.GracefulStop()
	e.agents.GracefulStop()
}

// enrollService serves clients without a client certificate: Enroll only.
type enrollService struct{ *Server }

// errNoClientCert refuses a stream without a client certificate.
var errNoClientCert = status.Error(codes.Unauthenticated, "a client certificate issued by this hub is required; enrol the agent first")

// Connect refuses: a stream needs the certificate Enroll issues.
func (e enrollService) Connect(stream apiv1alpha1.AgentService_ConnectServer) error {
	e.log.Warn("stream refused", "peer", peerAddr(stream.Context()), "error", errNoClientCert)
	return errNoClientCert
}

// maxCSRBytes bounds the certificate request Enroll reads (an ECDSA P-256
// request in PEM is about 500 bytes).
const maxCSRBytes = 16 << 10

// Enroll implements the one-time enrolment. The join token is checked
// before the request is looked at: a wrong token costs no parsing and no
// signing.
func (s *Server) Enroll(ctx context.Context, req *apiv1alpha1.EnrollRequest) (*apiv1alpha1.EnrollResponse, error) {
	log := s.log.With("cluster", req.GetCluster(), "peer", peerAddr(ctx))
	if req.GetCluster() == "" || req.GetToken() == "" {
		return nil, status.Error(codes.InvalidArgument, "cluster and token are required")
	}
	if len(req.GetCsrPem()) > maxCSRBytes {
		log.Warn("enrolment refused", "error", "certificate request too large", "bytes", len(req.GetCsrPem()))
		return nil, status.Errorf(codes.InvalidArgument, "certificate request of %d bytes; at most %d", len(req.GetCsrPem()), maxCSRBytes)
	}
	now := s.now()
	// The token is consumed, and the new identity recorded, in one
	// transaction; the request is parsed and signed inside it, only once
	// the token was found good. A request that cannot be signed rolls the
	// transaction back: the token stays unused.
	var is pki.Issued
	err := s.store.EnrollCluster(ctx, req.GetCluster(), req.GetToken(), now, func(c *store.Cluster) error {
		var err error
		is, err = s.ca.SignClient(req.GetCsrPem(), req.GetCluster(), s.opts.CertTTL, now)
		if err != nil {
			return err
		}
		c.CertSerial, c.CertNotBefore, c.CertNotAfter = is.Serial, is.NotBefore, is.NotAfter
		c.PendingSerial, c.PendingNotBefore, c.PendingNotAfter = "", time.Time{}, time.Time{}
		c.EnrolledAt, c.Revoked = now, false
		c.AgentVersion = req.GetAgentVersion()
		return nil
	})
	if err != nil {
		log.Warn("enrolment refused", "error", err)
		switch {
		case errors.Is(err, store.ErrTokenExpired):
			return nil, status.Error(codes.Unauthenticated, "join token expired; create a new one with `flotilla cluster token`")
		case errors.Is(err, store.ErrTokenUsed):
			return nil, status.Error(codes.Unauthenticated, "join token already used; create a new one with `flotilla cluster token`")
		case errors.Is(err, store.ErrTokenInvalid), errors.Is(err, store.ErrNotFound):
			return nil, status.Error(codes.Unauthenticated, "join token invalid for this cluster")
		case errors.Is(err, pki.ErrBadCSR):
			return nil, status.Errorf(codes.InvalidArgument, "sign: %v", err)
		}
		return nil, status.Errorf(codes.Internal, "record enrolment: %v", err)
	}
	// A re-enrolment supersedes the old identity at once.
	s.fleet.Close(req.GetCluster(), fleet.ErrSuperseded)
	log.Info("cluster enrolled", "serial", is.Serial, "not_after", is.NotAfter)
	return &apiv1alpha1.EnrollResponse{CertificatePem: is.CertPEM, CaPem: s.ca.CertPEM(), NotAfter: timestamppb.New(is.NotAfter)}, nil
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// Serve serves on lis until ctx ends, then stops gracefully (in-flight
// streams are closed; agents reconnect to the next hub).
func Serve(ctx context.Context, gs *Endpoint, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	select {
	case err := <-errc:
		if err == nil {
			return nil
		}
		return fmt.Errorf("grpc serve: %w", err)
	case <-ctx.Done():
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			gs.Stop()
		}
		return nil
	}
}
