package hubclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/flotilla-cd/flotilla/agent/internal/identity"
	"github.com/flotilla-cd/flotilla/shared/agentkeepalive"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Engine is what the client drives; agent/internal/engine implements it.
type Engine interface {
	Held() map[string]string
	Accept(ctx context.Context, bundles []*apiv1alpha1.Bundle, removed []string) error
	Updates() <-chan struct{}
	// ChangedStatuses returns the apps' statuses (sorted by app) except
	// those seen says the caller already got, and records the returned
	// ones in seen (see engine.Engine.ChangedStatuses). An engine may
	// return statuses that did not change; the client skips them.
	ChangedStatuses(seen map[string]uint64) []*apiv1alpha1.AppStatus
	Do(ctx context.Context, cmd *apiv1alpha1.Command) *apiv1alpha1.CommandResult
}

// Options configure a Client.
type Options struct {
	// HubAddr is host:port of the hub's agent endpoint.
	HubAddr string
	// ServerName overrides the name checked in the hub's certificate.
	ServerName string
	// RenewBefore renews the certificate when less than this fraction of its
	// lifetime is left; default 1/3.
	RenewBefore float64
	// InitialBackoff and MaxBackoff bound reconnect waits; defaults 500ms, 30s.
	InitialBackoff, MaxBackoff time.Duration
	// OnConnected, when set, is called after every Welcome (metrics).
	OnConnected func(connected bool)
	// Capabilities, when set, are reported to the hub: in every Hello,
	// and when they change to a hub that accepts updates.
	Capabilities CapabilitiesSource
	// Live, when set, answers the hub's live-view requests and the agent
	// lists the "live-view" capability; without it the hub tells people
	// that this agent does not support live view.
	Live LiveHandler
}

// LiveHandler answers live-view requests; agent/internal/liveview
// implements it. Handle must not block: it runs the request on its own
// goroutine and answers through send, which queues the frame behind every
// status, command result and renewal waiting to go out.
type LiveHandler interface {
	Handle(ctx context.Context, req *apiv1alpha1.LiveRequest, send func(context.Context, *apiv1alpha1.LiveResponse) error)
}

// CapabilitiesSource is what the client reports about the cluster's API
// server; agent/internal/capabilities implements it.
type CapabilitiesSource interface {
	// Current returns the capabilities, nil while unknown.
	Current() *apiv1alpha1.ClusterCapabilities
	// Changed receives a value when Current changed.
	Changed() <-chan struct{}
}

// Client is the agent side of the Connect stream.
type Client struct {
	opts   Options
	ids    identity.Store
	engine Engine
	log    hclog.Logger

	mu       sync.Mutex
	id       *identity.Identity
	renewKey []byte // key of an in-flight renewal, kept until the hub answers
}

// New returns a Client for the identity in ids.
func New(opts Options, ids identity.Store, engine Engine, log hclog.Logger) *Client {
	if opts.RenewBefore <= 0 || opts.RenewBefore >= 1 {
		opts.RenewBefore = 1.0 / 3
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	return &Client{opts: opts, ids: ids, engine: engine, log: log}
}

// stableSession is how long a welcomed session must last for the reconnect
// backoff to reset.
const stableSession = 5 * time.Second

// sessionResult tells Run how far a session got: backoff resets only after
// the hub's Welcome (real progress).
type sessionResult struct {
	welcomed bool
	since    time.Time // when the hub welcomed the session
	err      error
}

// Run connects and reconnects until ctx ends.
func (c *Client) Run(ctx context.Context) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = c.opts.InitialBackoff
	bo.MaxInterval = c.opts.MaxBackoff
	bo.MaxElapsedTime = 0 // never give up
	bo.RandomizationFactor = 0.5
	bo.Reset()
	for {
		res := c.session(ctx)
		if c.opts.OnConnected != nil {
			c.opts.OnConnected(false)
		}
		if ctx.Err() != nil {
			return nil
		}
		// Real progress is a session that stayed up: two agents sharing one
		// identity, or a hub that drops every stream at once, back off.
		if res.welcomed && time.Since(res.since) >= stableSession {
			bo.Reset()
		}
		wait := bo.NextBackOff()
		lvl := hclog.Warn
		if code := status.Code(res.err); code == codes.PermissionDenied || code == codes.Unauthenticated {
			lvl = hclog.Error
		}
		c.log.Log(lvl, "disconnected from hub", "hub", c.opts.HubAddr, "error", res.err, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (c *Client) identity(ctx context.Context) (*identity.Identity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id != nil {
		return c.id, nil
	}
	id, err := c.ids.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	c.id = id
	return id, nil
}

func (c *Client) setIdentity(ctx context.Context, id *identity.Identity) error {
	if err := c.ids.Save(ctx, id); err != nil {
		return err
	}
	c.mu.Lock()
	c.id = id
	c.mu.Unlock()
	return nil
}

func (c *Client) dial(id *identity.Identity) (*grpc.ClientConn, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(id.CAPEM) {
		return nil, errors.New("identity holds no hub CA certificate")
	}
	serverName := c.opts.ServerName
	if serverName == "" {
		host, _, err := net.SplitHostPort(c.opts.HubAddr)
		if err != nil {
			return nil, fmt.Errorf("hub address %q: %w", c.opts.HubAddr, err)
		}
		serverName = host
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool,
		ServerName: serverName,
		// Read the certificate at each handshake so a renewed one is used
		// without a restart.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c.mu.Lock()
			cur := c.id
			c.mu.Unlock()
			cert, err := cur.TLSCertificate()
			if err != nil {
				return nil, err
			}
			return &cert, nil
		},
	}
	return grpc.NewClient(c.opts.HubAddr,
		grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithKeepaliveParams(agentkeepalive.Client()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(512<<20), grpc.MaxCallSendMsgSize(64<<20)),
	)
}
