package agentapi

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// A connected agent costs the hub the goroutines that wait for it. gRPC
// has three per connection (frame reader, writer, keepalive) and one per
// stream (the handler). The handler reads the agent's messages; what the
// hub sends (desired states, commands, renewal answers) goes out from a
// goroutine that the outbox starts when there is something to send and
// that ends when the outbox is empty, so an idle agent costs no goroutine
// of ours. What ends the stream from the hub's side (a superseded session,
// an agent that never says Hello) writes the stream's final status, which
// also ends the handler's blocked Recv.

// streamEnder is implemented by the transport stream gRPC puts in a
// handler's context (grpc.ServerTransportStreamFromContext): it writes the
// stream's final status, after which the stream's Recv and Send return.
type streamEnder interface {
	WriteStatus(*status.Status) error
}

// outbox sends the hub's messages on one agent stream: the desired-state
// delta of its session, queued commands and answers, in that order. At most
// one goroutine sends at a time, and none while there is nothing to send.
type outbox struct {
	srv     *Server
	cluster string
	stream  apiv1alpha1.AgentService_ConnectServer
	ts      streamEnder

	wg      sync.WaitGroup
	mu      sync.Mutex
	sess    *fleet.Session // nil until attached
	running bool           // a sending goroutine runs
	closed  bool           // nothing more is sent
	ended   bool           // the final status was written (or is left to gRPC)
	woken   bool           // the session may have a delta or commands
	replies []*apiv1alpha1.HubMessage
	err     error // the first failed send
}

// newOutbox returns the outbox of stream; nil if gRPC's transport stream
// cannot be ended from outside the handler.
func (s *Server) newOutbox(stream apiv1alpha1.AgentService_ConnectServer, cluster string) *outbox {
	ts, ok := grpc.ServerTransportStreamFromContext(stream.Context()).(streamEnder)
	if !ok {
		return nil
	}
	return &outbox{srv: s, cluster: cluster, stream: stream, ts: ts}
}

// end ends the stream with err's status (see grpcStatus) unless it ended
// already: the agent gets that status, and a blocked Recv or Send returns.
func (o *outbox) end(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return
	}
	o.ended = true
	_ = o.ts.WriteStatus(grpcStatus(err))
}

// grpcStatus is the status gRPC sends for a handler's error.
func grpcStatus(err error) *status.Status {
	if err == nil || errors.Is(err, io.EOF) {
		return status.New(codes.OK, "")
	}
	if st, ok := status.FromError(err); ok {
		return st
	}
	return status.FromContextError(err)
}

// attach starts sending for sess (opened with AttachNotify(..., o.wake)).
func (o *outbox) attach(sess *fleet.Session) {
	o.mu.Lock()
	o.sess = sess
	o.startLocked()
	o.mu.Unlock()
}

// wake notes that the session may have something to send. It does not
// block (the fleet calls it with its lock held).
func (o *outbox) wake() {
	o.mu.Lock()
	o.woken = true
	o.startLocked()
	o.mu.Unlock()
}

// reply queues m.
func (o *outbox) reply(m *apiv1alpha1.HubMessage) {
	o.mu.Lock()
	o.replies = append(o.replies, m)
	o.startLocked()
	o.mu.Unlock()
}

func (o *outbox) startLocked() {
	if o.running || o.closed || o.sess == nil {
		return
	}
	o.running = true
	o.wg.Add(1)
	go o.run()
}

// run sends until the outbox is empty or closed, or a send fails (gRPC
// then ends the stream, and the handler's Recv returns).
func (o *outbox) run() {
	defer o.wg.Done()
	for {
		msgs, ok := o.next()
		if !ok {
			return
		}
		for _, m := range msgs {
			if err := o.stream.Send(m); err != nil {
				o.mu.Lock()
				o.err, o.running, o.closed = err, false, true
				o.mu.Unlock()
				return
			}
			if ds := m.GetDesired(); ds != nil {
				o.srv.log.Debug("desired state sent", "cluster", o.cluster, "bundles", len(ds.GetBundles()), "removed", len(ds.GetRemovedApps()))
				if h := o.srv.opts.Hooks.Sent; h != nil {
					h(o.cluster, ds)
				}
			}
		}
	}
}

// next takes the messages to send now (possibly none: a wake-up whose
// delta is empty). It returns false, and clears running, when nothing is
// pending or the outbox is closed.
func (o *outbox) next() ([]*apiv1alpha1.HubMessage, bool) {
	o.mu.Lock()
	if o.closed || (!o.woken && len(o.replies) == 0) {
		o.running = false
		o.mu.Unlock()
		return nil, false
	}
	replies, woken, sess := o.replies, o.woken, o.sess
	o.replies, o.woken = nil, false
	o.mu.Unlock()
	if !woken {
		return replies, true
	}
	var out []*apiv1alpha1.HubMessage
	if ds := sess.Next(); ds != nil {
		out = append(out, &apiv1alpha1.HubMessage{Msg: &apiv1alpha1.HubMessage_Desired{Desired: ds}})
	}
	for _, cmd := range sess.TakeCommands() {
		out = append(out, &apiv1alpha1.HubMessage{Msg: &apiv1alpha1.HubMessage_Command{Command: cmd}})
	}
	return append(out, replies...), true
}

// close stops sending before the handler returns err. A send in progress
// may wait for an agent that does not read: the stream is ended with err
// first, so that it returns. close waits for the sender and returns the
// first failed send's error.
func (o *outbox) close(err error) error {
	o.mu.Lock()
	o.closed = true
	running := o.running
	o.mu.Unlock()
	if running {
		o.end(err)
	}
	o.wg.Wait()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended = true // the handler's return writes the status from here on
	return o.err
}

// sessionEnded is the error a stream ends with when the hub ended its
// session (cause: fleet.ErrSuperseded or another reason).
func sessionEnded(cause error) error {
	if errors.Is(cause, fleet.ErrSuperseded) {
		return status.Error(codes.PermissionDenied, "session superseded: the cluster was removed, re-enrolled or connected again")
	}
	return status.Error(codes.Unavailable, "session closed")
}

// endWith ends the stream with sessionEnded when ctx (the session's) ends.
// The returned function stops that.
func (o *outbox) endWith(ctx context.Context) func() bool {
	return context.AfterFunc(ctx, func() { o.end(sessionEnded(context.Cause(ctx))) })
}
