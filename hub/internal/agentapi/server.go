package agentapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // lets agents compress status
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/pki"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Options configure the server.
type Options struct {
	// CertTTL is the lifetime of agent client certificates; default 24h.
	CertTTL time.Duration
	// HelloTimeout bounds the wait for a stream's first message (the
	// agent's Hello); default DefaultHelloTimeout.
	HelloTimeout time.Duration
	// Hooks observe the protocol (metrics, history); any may be nil.
	Hooks Hooks
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

	statuses *statusWriter
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
	return &Server{opts: opts, ca: ca, store: st, fleet: fl, log: log, now: opts.Now, statuses: newStatusWriter(st, log)}
}

// Run writes agents' status reports to the store in the background until
// ctx ends (and then writes what is left). Without Run, each report is
// written before the next message of its stream is read.
func (s *Server) Run(ctx context.Context) error {
	s.statuses.run(ctx)
	return nil
}

// MaxMessageBytes bounds one gRPC message either way. Bundles carry
// gzip-compressed objects, so this is far more than MaxBundleBytes needs.
const MaxMessageBytes = 512 << 20

// TLSConfig returns the server's TLS configuration: TLS 1.3 only, the given
// serving certificate, client certificates verified against the hub CA when
// offered (Enroll runs without one; Connect requires one).
func TLSConfig(ca *pki.CA, serving tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{serving},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    ca.Pool(),
	}
}

// GRPCServer builds the gRPC server with TLS, keepalives and message limits,
// and registers s on it.
func (s *Server) GRPCServer(tlsCfg *tls.Config) *grpc.Server {
	gs := grpc.NewServer(
		grpc.Creds(loggedCreds{TransportCredentials: credentials.NewTLS(tlsCfg), log: s.log}),
		grpc.MaxRecvMsgSize(64<<20),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// Agents are mostly idle: a write buffer per connection only while
		// writing keeps the memory per connected agent down. No read
		// buffer: the framer reads from the TLS connection, which already
		// holds a whole decrypted record, so a bufio.Reader on top only
		// copied it again and kept 8 KiB per connection.
		grpc.SharedWriteBuffer(true),
		grpc.ReadBufferSize(0),
		// The shared write buffer is taken from a pool for each flush:
		// a fan-out to 10,000 agents takes 10,000 at once, garbage for
		// the collector after. 16 KiB (gRPC's default is 32 KiB) is what
		// one TLS record carries, and TLS writes each record on its own,
		// so a larger batch saved no write.
		grpc.WriteBufferSize(16<<10),
	)
	apiv1alpha1.RegisterAgentServiceServer(gs, s)
	return gs
}

// Enroll implements the one-time enrolment.
func (s *Server) Enroll(ctx context.Context, req *apiv1alpha1.EnrollRequest) (*apiv1alpha1.EnrollResponse, error) {
	log := s.log.With("cluster", req.GetCluster(), "peer", peerAddr(ctx))
	if req.GetCluster() == "" || req.GetToken() == "" {
		return nil, status.Error(codes.InvalidArgument, "cluster and token are required")
	}
	now := s.now()
	// Sign first so that consuming the token and recording the new identity
	// happen in one transaction; a certificate signed for a refused token is
	// never returned.
	is, err := s.ca.SignClient(req.GetCsrPem(), req.GetCluster(), s.opts.CertTTL, now)
	if err != nil {
		log.Warn("enrolment refused", "error", err)
		return nil, status.Errorf(codes.InvalidArgument, "sign: %v", err)
	}
	err = s.store.EnrollCluster(ctx, req.GetCluster(), req.GetToken(), now, func(c *store.Cluster) error {
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
func Serve(ctx context.Context, gs *grpc.Server, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	select {
	case err := <-errc:
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
