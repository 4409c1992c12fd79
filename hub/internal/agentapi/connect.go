package agentapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/version"
)

// helloTimeout bounds the wait for an agent's first message.
const helloTimeout = 30 * time.Second

// Compatible reports whether an agent speaking protocol minor version v can
// be served: within one minor version of the hub's.
func Compatible(v uint32) bool {
	h := version.ProtocolVersion
	return v+1 >= h && v <= h+1
}

// Connect implements the agent stream.
func (s *Server) Connect(stream apiv1alpha1.AgentService_ConnectServer) error {
	ctx := stream.Context()
	cluster, cert, err := s.authenticate(ctx)
	if err != nil {
		s.log.Warn("stream refused", "peer", peerAddr(ctx), "error", err)
		return err
	}
	log := s.log.With("cluster", cluster)

	first, err := recvWithTimeout(ctx, stream, helloTimeout)
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
		log.Warn("record agent seen", "error", err)
	}

	sess := s.fleet.Attach(cluster, hello.GetBundleDigests())
	defer sess.Close()
	// An enrolment or removal that committed after authenticate closed the
	// sessions it found before this one was attached; check again.
	if err := s.check(ctx, cluster, cert); err != nil {
		log.Warn("stream refused", "error", err)
		return err
	}
	log.Info("agent connected", "agent_version", hello.GetAgentVersion(), "held", len(hello.GetBundleDigests()))

	out := make(chan *apiv1alpha1.HubMessage, 8)
	recvErr := make(chan error, 1)
	go func() { recvErr <- s.receive(ctx, cluster, cert.Serial, stream, sess, out) }()

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sess.Done():
			cause := sess.Cause()
			log.Info("stream closed by hub", "cause", cause)
			if errors.Is(cause, fleet.ErrSuperseded) {
				return status.Error(codes.PermissionDenied, "session superseded: the cluster was removed, re-enrolled or connected again")
			}
			return status.Error(codes.Unavailable, "session closed")
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-sess.Woken():
			ds := sess.Next()
			if ds == nil {
				continue
			}
			if err := stream.Send(&apiv1alpha1.HubMessage{Msg: &apiv1alpha1.HubMessage_Desired{Desired: ds}}); err != nil {
				return err
			}
			log.Debug("desired state sent", "bundles", len(ds.GetBundles()), "removed", len(ds.GetRemovedApps()))
			if s.opts.Hooks.Sent != nil {
				s.opts.Hooks.Sent(cluster, ds)
			}
		case cmd := <-sess.Commands():
			if err := stream.Send(&apiv1alpha1.HubMessage{Msg: &apiv1alpha1.HubMessage_Command{Command: cmd}}); err != nil {
				return err
			}
		case m := <-out:
			if err := stream.Send(m); err != nil {
				return err
			}
		}
	}
}

// receive handles messages from the agent until the stream ends. Replies
// go to out, which the sending loop drains.
func (s *Server) receive(ctx context.Context, cluster, serial string, stream apiv1alpha1.AgentService_ConnectServer, sess *fleet.Session, out chan<- *apiv1alpha1.HubMessage) error {
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		switch msg := m.GetMsg().(type) {
		case *apiv1alpha1.AgentMessage_Hello:
			sess.Rehello(msg.Hello.GetBundleDigests())
		case *apiv1alpha1.AgentMessage_Status:
			st := msg.Status
			prev := s.fleet.Report(cluster, st)
			s.statuses.put(ctx, cluster, st)
			if s.opts.Hooks.Status != nil {
				s.opts.Hooks.Status(cluster, prev, st)
			}
		case *apiv1alpha1.AgentMessage_Renew:
			resp, err := s.renew(ctx, cluster, serial, msg.Renew)
			if err != nil {
				return err
			}
			select {
			case out <- &apiv1alpha1.HubMessage{Msg: &apiv1alpha1.HubMessage_Renew{Renew: resp}}:
			case <-ctx.Done():
				return ctx.Err()
			}
		case *apiv1alpha1.AgentMessage_CommandResult:
			if s.opts.Hooks.CommandResult != nil {
				s.opts.Hooks.CommandResult(cluster, msg.CommandResult)
			}
		}
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

func recvWithTimeout(ctx context.Context, stream apiv1alpha1.AgentService_ConnectServer, d time.Duration) (*apiv1alpha1.AgentMessage, error) {
	type res struct {
		m   *apiv1alpha1.AgentMessage
		err error
	}
	ch := make(chan res, 1)
	go func() {
		m, err := stream.Recv()
		ch <- res{m, err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-t.C:
		return nil, status.Error(codes.DeadlineExceeded, "no Hello from agent")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
