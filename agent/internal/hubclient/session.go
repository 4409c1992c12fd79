package hubclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/flotilla-cd/flotilla/agent/internal/identity"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/version"
)

// session runs one stream from dial to its end.
func (c *Client) session(ctx context.Context) sessionResult {
	id, err := c.identity(ctx)
	if err != nil {
		return sessionResult{err: err}
	}
	conn, err := c.dial(id)
	if err != nil {
		return sessionResult{err: err}
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := apiv1alpha1.NewAgentServiceClient(conn).Connect(ctx)
	if err != nil {
		return sessionResult{err: err}
	}
	var capsChanged <-chan struct{}
	var capsSent *apiv1alpha1.ClusterCapabilities
	if c.opts.Capabilities != nil {
		capsChanged = c.opts.Capabilities.Changed()
		capsSent = c.opts.Capabilities.Current()
	}
	err = stream.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Hello{Hello: &apiv1alpha1.Hello{
		ProtocolVersion:     version.ProtocolVersion,
		AgentVersion:        version.Version,
		Capabilities:        c.capabilities(),
		BundleDigests:       c.engine.Held(),
		ClusterCapabilities: capsSent,
	}}})
	if err != nil {
		return sessionResult{err: fmt.Errorf("send hello: %w", err)}
	}
	first, err := stream.Recv()
	if err != nil {
		return sessionResult{err: err}
	}
	w := first.GetWelcome()
	if w == nil {
		return sessionResult{err: errors.New("hub did not answer with a Welcome")}
	}
	if !slices.Contains(w.GetCapabilities(), version.CapClusterCapabilities) {
		capsChanged = nil // an older hub: it reads them from the next Hello only
	}
	welcomedAt := time.Now()
	c.log.Info("connected to hub", "hub", c.opts.HubAddr, "hub_version", w.GetHubVersion(), "cluster", w.GetCluster())
	if c.opts.OnConnected != nil {
		c.opts.OnConnected(true)
	}

	out := make(chan *apiv1alpha1.AgentMessage, 16)
	liveOut := make(chan *apiv1alpha1.LiveResponse, liveQueue)
	renewed := make(chan *identity.Identity, 1)
	recvErr := make(chan error, 1)
	go func() { recvErr <- c.receive(ctx, stream, out, liveOut, renewed) }()

	// The hub may have lost what was sent before: each session starts
	// from nothing seen and sends every status once.
	sent := map[string]*apiv1alpha1.AppStatus{}
	seen := map[string]uint64{}
	renewAt := c.renewTime(id)
	renewTimer := time.NewTimer(time.Until(renewAt))
	defer renewTimer.Stop()
	flush := func() error {
		for _, st := range c.engine.ChangedStatuses(seen) {
			if prev, ok := sent[st.GetApp()]; ok && sameStatus(prev, st) {
				continue
			}
			if err := stream.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Status{Status: st}}); err != nil {
				return err
			}
			sent[st.GetApp()] = st
		}
		return nil
	}
	if err := flush(); err != nil {
		return sessionResult{welcomed: true, since: welcomedAt, err: err}
	}
	for {
		select {
		case <-ctx.Done():
			return sessionResult{welcomed: true, since: welcomedAt, err: ctx.Err()}
		case err := <-recvErr:
			return sessionResult{welcomed: true, since: welcomedAt, err: err}
		case <-c.engine.Updates():
			if err := flush(); err != nil {
				return sessionResult{welcomed: true, since: welcomedAt, err: err}
			}
		case <-capsChanged:
			cur := c.opts.Capabilities.Current()
			if cur == nil || proto.Equal(cur, capsSent) {
				continue
			}
			if err := stream.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_ClusterCapabilities{ClusterCapabilities: cur}}); err != nil {
				return sessionResult{welcomed: true, since: welcomedAt, err: err}
			}
			capsSent = cur
		case m := <-out:
			if err := stream.Send(m); err != nil {
				return sessionResult{welcomed: true, since: welcomedAt, err: err}
			}
		case lr := <-liveOut:
			// Live frames are the low-priority queue: statuses and command
			// results that wait meanwhile go first.
			select {
			case <-c.engine.Updates():
				if err := flush(); err != nil {
					return sessionResult{welcomed: true, since: welcomedAt, err: err}
				}
			default:
			}
			for pending := true; pending; {
				select {
				case m := <-out:
					if err := stream.Send(m); err != nil {
						return sessionResult{welcomed: true, since: welcomedAt, err: err}
					}
				default:
					pending = false
				}
			}
			if err := stream.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Live{Live: lr}}); err != nil {
				return sessionResult{welcomed: true, since: welcomedAt, err: err}
			}
		case <-renewTimer.C:
			if err := c.startRenew(ctx, stream); err != nil {
				return sessionResult{welcomed: true, since: welcomedAt, err: err}
			}
			renewTimer.Reset(renewRetry) // retried until the hub answers
		case id := <-renewed:
			// The new certificate is used from the next connection on.
			renewTimer.Reset(max(time.Until(c.renewTime(id)), renewRetry))
		}
	}
}

// liveQueue is how many live-view frames wait to be sent; a request's
// goroutine blocks while it is full.
const liveQueue = 8

// capabilities are the protocol capabilities this agent lists in Hello:
// live-view only with a LiveHandler.
func (c *Client) capabilities() []string {
	if c.opts.Live != nil {
		return version.Capabilities
	}
	return slices.DeleteFunc(slices.Clone(version.Capabilities), func(s string) bool { return s == version.CapLiveView })
}

// renewRetry is how long a renewal waits for the hub's answer before it
// asks again, and the shortest time between two renewals.
const renewRetry = time.Minute

// renewTime is when the current certificate should be renewed.
func (c *Client) renewTime(id *identity.Identity) time.Time {
	nb, na, err := id.NotAfter()
	if err != nil {
		return time.Now()
	}
	life := na.Sub(nb)
	return na.Add(-time.Duration(float64(life) * c.opts.RenewBefore))
}

func (c *Client) startRenew(ctx context.Context, stream apiv1alpha1.AgentService_ConnectClient) error {
	id, err := c.identity(ctx)
	if err != nil {
		return err
	}
	keyPEM, csrPEM, err := identity.NewKey(id.Cluster)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.renewKey = keyPEM
	c.mu.Unlock()
	c.log.Info("renewing certificate")
	return stream.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Renew{Renew: &apiv1alpha1.RenewRequest{CsrPem: csrPEM}}})
}

// receive handles hub messages until the stream ends.
func (c *Client) receive(ctx context.Context, stream apiv1alpha1.AgentService_ConnectClient, out chan<- *apiv1alpha1.AgentMessage, liveOut chan<- *apiv1alpha1.LiveResponse, renewed chan<- *identity.Identity) error {
	sendLive := func(ctx context.Context, r *apiv1alpha1.LiveResponse) error {
		select {
		case liveOut <- r:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		switch msg := m.GetMsg().(type) {
		case *apiv1alpha1.HubMessage_Desired:
			ds := msg.Desired
			if err := c.engine.Accept(ctx, ds.GetBundles(), ds.GetRemovedApps()); err != nil {
				// Not accepted: reconnect, so the next Hello asks again.
				return fmt.Errorf("accept desired state: %w", err)
			}
			c.log.Debug("desired state accepted", "bundles", len(ds.GetBundles()), "removed", len(ds.GetRemovedApps()))
		case *apiv1alpha1.HubMessage_Command:
			cmd := msg.Command
			go func() {
				res := c.engine.Do(ctx, cmd)
				select {
				case out <- &apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_CommandResult{CommandResult: res}}:
				case <-ctx.Done():
				}
			}()
		case *apiv1alpha1.HubMessage_Live:
			if c.opts.Live != nil {
				c.opts.Live.Handle(ctx, msg.Live, sendLive)
			}
		case *apiv1alpha1.HubMessage_Renew:
			id, err := c.finishRenew(ctx, msg.Renew)
			if err != nil {
				c.log.Error("certificate renewal failed", "error", err)
				continue
			}
			select {
			case renewed <- id:
			default:
			}
		}
	}
}

func (c *Client) finishRenew(ctx context.Context, r *apiv1alpha1.RenewResponse) (*identity.Identity, error) {
	c.mu.Lock()
	key := c.renewKey
	old := c.id
	c.renewKey = nil
	c.mu.Unlock()
	if key == nil || old == nil {
		return nil, errors.New("renewal answer without a pending request")
	}
	id := &identity.Identity{Cluster: old.Cluster, KeyPEM: key, CertPEM: r.GetCertificatePem(), CAPEM: old.CAPEM}
	if _, err := id.TLSCertificate(); err != nil {
		return nil, err
	}
	if err := c.setIdentity(ctx, id); err != nil {
		return nil, err
	}
	c.log.Info("certificate renewed", "not_after", r.GetNotAfter().AsTime())
	return id, nil
}

// sameStatus compares a and b but for observed_at, which changes on
// every observation and is not a change. Both are the client's own copies:
// it sets their observed_at aside for the comparison and puts it back.
func sameStatus(a, b *apiv1alpha1.AppStatus) bool {
	at, bt := a.ObservedAt, b.ObservedAt
	a.ObservedAt, b.ObservedAt = nil, nil
	same := proto.Equal(a, b)
	a.ObservedAt, b.ObservedAt = at, bt
	return same
}
