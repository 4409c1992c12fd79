package agentapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/liveview"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/version"
)

// DefaultHelloTimeout bounds the wait for an agent's first message.
const DefaultHelloTimeout = 30 * time.Second

// Compatible reports whether an agent speaking protocol minor version v can
// be served: within one minor version of the hub's.
func Compatible(v uint32) bool {
	h := version.ProtocolVersion
	return v+1 >= h && v <= h+1
}

// errNoHello ends a stream whose agent sent nothing within the hello
// timeout.
var errNoHello = status.Error(codes.DeadlineExceeded, "no Hello from agent")

// errCertExpired ends a stream whose client certificate reached its
// NotAfter.
var errCertExpired = status.Error(codes.Unavailable, "the stream's client certificate expired; reconnect with the renewed certificate")

// Connect implements the agent stream. It reads the agent's messages in
// the handler's goroutine; the outbox sends (see outbox.go).
func (s *Server) Connect(stream apiv1alpha1.AgentService_ConnectServer) error {
	ctx := stream.Context()
	var (
		cluster string
		cert    certInfo
		err     error
	)
	onFreshStack(func() { cluster, cert, err = s.authenticate(ctx) })
	if err != nil {
		s.log.Warn("stream refused", "peer", peerAddr(ctx), "error", err)
		return err
	}
	out := s.newOutbox(stream, cluster)
	if out == nil {
		return status.Error(codes.Internal, "agent stream not served by a gRPC server stream")
	}

	noHello := time.AfterFunc(s.opts.HelloTimeout, func() { out.end(errNoHello) })
	first, err := stream.Recv()
	if !noHello.Stop() {
		return errNoHello
	}
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return status.Error(codes.InvalidArgument, "the first message must be a Hello")
	}
	if !Compatible(hello.GetProtocolVersion()) {
		return status.Errorf(codes.FailedPrecondition, "agent protocol version %d is not within one of the hub's %d; upgrade the agent", hello.GetProtocolVersion(), version.ProtocolVersion)
	}
	// Live-view requests can be asked for once the agent is welcomed; they
	// go out with the outbox's answers (after the desired state it has to
	// send) once the session is attached.
	var live *liveview.Agent
	if s.opts.Live != nil {
		live = s.opts.Live.Attach(cluster, slices.Contains(hello.GetCapabilities(), version.CapLiveView), out.reply)
		defer live.Close()
	}
	if err := stream.Send(&apiv1alpha1.HubMessage{Msg: &apiv1alpha1.HubMessage_Welcome{Welcome: &apiv1alpha1.Welcome{
		ProtocolVersion: version.ProtocolVersion,
		HubVersion:      version.Version,
		Capabilities:    version.Capabilities,
		Cluster:         cluster,
	}}}); err != nil {
		return err
	}
	// Batched with the other agents connecting now: after a hub restart
	// they all do at once, and one fsync each would queue them for seconds.
	if err := s.store.TouchCluster(ctx, cluster, s.now(), hello.GetAgentVersion()); err != nil {
		s.log.Warn("record agent seen", "cluster", cluster, "error", err)
	}

	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			return status.Errorf(codes.Unavailable, "hub not ready: %v", err)
		}
	}
	sess := s.fleet.AttachNotify(cluster, hello.GetBundleDigests(), out.wake)
	defer sess.Close()
	s.attachSerial(cluster, cert.Serial)
	defer s.detachSerial(cluster, cert.Serial)
	// An enrolment or removal that committed after authenticate closed the
	// sessions it found before this one was attached; check again.
	onFreshStack(func() { err = s.check(ctx, cluster, cert) })
	if err != nil {
		s.log.Warn("stream refused", "cluster", cluster, "error", err)
		return err
	}
	s.log.Info("agent connected", "cluster", cluster, "agent_version", hello.GetAgentVersion(), "held", len(hello.GetBundleDigests()))
	s.reportCapabilities(ctx, cluster, hello.GetClusterCapabilities())

	stopEnd := out.endWith(sess.Context())
	// The stream lives no longer than the certificate it was opened with:
	// the agent renews before then over this stream and reconnects with
	// the new certificate.
	expire := time.AfterFunc(cert.NotAfter.Sub(s.now()), func() { out.end(errCertExpired) })
	out.attach(sess)
	err = s.receive(ctx, cluster, cert.Serial, stream, sess, out, live, masksSecrets(hello))
	expire.Stop()
	stopEnd()
	cause := context.Cause(sess.Context())
	switch {
	case cause != nil:
		s.log.Info("stream closed by hub", "cluster", cluster, "cause", cause)
		err = sessionEnded(cause)
	case errors.Is(err, io.EOF):
		err = nil
	}
	if sendErr := out.close(err); sendErr != nil && cause == nil {
		return sendErr
	}
	return err
}

// onFreshStack runs f on a goroutine of its own and waits for it. A stream
// handler's goroutine lives as long as its agent stays connected, waiting
// in Recv about 4 KiB deep; the runtime shrinks a goroutine's stack only
// while less than a quarter of it is in use. Work that needs a deep stack
// now and then (a store transaction, signing a certificate) would grow the
// handler's stack from 8 to 16 KiB for good: 8 KiB per connected agent.
func onFreshStack(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

// receive handles messages from the agent until the stream ends. Replies
// go out through out.
//
// masks says whether the agent masks Secret values in its diffs; when it
// does not, the hub withholds the diffs of Secrets it relays.
func (s *Server) receive(ctx context.Context, cluster, serial string, stream apiv1alpha1.AgentService_ConnectServer, sess *fleet.Session, out *outbox, live *liveview.Agent, masks bool) error {
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		switch msg := m.GetMsg().(type) {
		case *apiv1alpha1.AgentMessage_Hello:
			sess.Rehello(msg.Hello.GetBundleDigests())
			masks = masksSecrets(msg.Hello)
			s.reportCapabilities(ctx, cluster, msg.Hello.GetClusterCapabilities())
		case *apiv1alpha1.AgentMessage_ClusterCapabilities:
			s.reportCapabilities(ctx, cluster, msg.ClusterCapabilities)
		case *apiv1alpha1.AgentMessage_Status:
			st := msg.Status
			if err := s.acceptStatus(cluster, st); err != nil {
				s.refusedStatus(cluster, err)
				continue
			}
			if !masks {
				withholdSecretDiffs(st)
			}
			prev := s.fleet.Report(cluster, st)
			s.statuses.put(ctx, cluster, st, sess.Done())
			if s.opts.Hooks.Status != nil {
				s.opts.Hooks.Status(cluster, prev, st)
			}
		case *apiv1alpha1.AgentMessage_Renew:
			var resp *apiv1alpha1.RenewResponse
			onFreshStack(func() { resp, err = s.renew(ctx, cluster, serial, msg.Renew) })
			if err != nil {
				return err
			}
			out.reply(&apiv1alpha1.HubMessage{Msg: &apiv1alpha1.HubMessage_Renew{Renew: resp}})
		case *apiv1alpha1.AgentMessage_Live:
			if live != nil {
				live.Deliver(msg.Live) // never blocks: within the credit granted
			}
		case *apiv1alpha1.AgentMessage_CommandResult:
			if !masks {
				msg.CommandResult.Diff = withholdSecretSections(msg.CommandResult.GetDiff())
			}
			if s.opts.Hooks.CommandResult != nil {
				s.opts.Hooks.CommandResult(cluster, msg.CommandResult)
			}
		}
	}
}

// acceptStatus refuses a status of an app that cluster was never given, or
// over the caps (see checkStatus).
func (s *Server) acceptStatus(cluster string, st *apiv1alpha1.AppStatus) error {
	if err := checkStatus(st); err != nil {
		return err
	}
	if !s.fleet.Accepts(cluster, st.GetApp()) {
		return fmt.Errorf("%w: app %q is not in the desired state of cluster %s", errStatusRefused, st.GetApp(), cluster)
	}
	return nil
}

// refusedStatus logs a dropped status, at most one line per ten seconds
// for the whole hub with the count dropped since the last line.
func (s *Server) refusedStatus(cluster string, err error) {
	n := s.dropped.Add(1)
	if s.dropLog.Allow() {
		s.dropped.Add(-n)
		s.log.Warn("agent status dropped", "cluster", cluster, "error", err, "dropped", n)
	}
}

// renew signs a new certificate for the stream's own cluster and records it
// as pending: the current one stays valid until the agent connects with the
// new one (see admit), so an answer lost with the stream costs nothing. The
// stream's certificate (serial) must still be the current one.
func (s *Server) renew(ctx context.Context, cluster, serial string, req *apiv1alpha1.RenewRequest) (*apiv1alpha1.RenewResponse, error) {
	is, err := s.ca.SignClient(req.GetCsrPem(), cluster, s.opts.CertTTL, s.now())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "renew: %v", err)
	}
	err = s.store.UpdateCluster(ctx, cluster, func(c *store.Cluster) error {
		if c.Revoked || c.CertSerial != serial {
			return fmt.Errorf("%w: certificate %s of cluster %q is no longer current", errRefused, serial, cluster)
		}
		c.PendingSerial, c.PendingNotBefore, c.PendingNotAfter = is.Serial, is.NotBefore, is.NotAfter
		return nil
	})
	if err != nil {
		return nil, storeErr(cluster, err)
	}
	s.log.Info("certificate renewal issued", "cluster", cluster, "serial", is.Serial, "not_after", is.NotAfter)
	return &apiv1alpha1.RenewResponse{CertificatePem: is.CertPEM, NotAfter: timestamppb.New(is.NotAfter)}, nil
}

// reportCapabilities hands what an agent reported about its API server to
// the Capabilities hook; nil (an agent that does not report them) is
// ignored.
func (s *Server) reportCapabilities(ctx context.Context, cluster string, c *apiv1alpha1.ClusterCapabilities) {
	if c == nil || s.opts.Hooks.Capabilities == nil {
		return
	}
	onFreshStack(func() { s.opts.Hooks.Capabilities(ctx, cluster, c) })
}
