package sim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-cd/flotilla/shared/agentkeepalive"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/version"
)

// held is what a simulated agent holds for one app.
type held struct {
	digest   string
	revision string
	received time.Time // when the bundle arrived
	finished time.Time // when its operation finished (the first report)
	reported time.Time // when its Synced status was sent; zero until then
}

// agent is one simulated cluster: a real mTLS stream to the hub and an
// in-memory engine that accepts every bundle and reports it Synced and
// Healthy at once. There is no cluster behind it.
type agent struct {
	name string
	id   *identity
	addr string

	mu        sync.Mutex
	apps      map[string]held
	connected bool
	sessions  int
	lastErr   error
}

func (a *agent) hubAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addr
}

// run keeps the stream open until ctx ends, reconnecting with jittered
// exponential backoff like the real agent.
func (a *agent) run(ctx context.Context, hubAddr string) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime, bo.RandomizationFactor = 500*time.Millisecond, 30*time.Second, 0, 0.5
	bo.Reset()
	for ctx.Err() == nil {
		welcomed, err := a.session(ctx, hubAddr)
		a.mu.Lock()
		a.connected = false
		if ctx.Err() == nil {
			a.lastErr = err
		}
		a.mu.Unlock()
		if welcomed {
			bo.Reset()
		}
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

func (a *agent) dial(hubAddr string) (*grpc.ClientConn, error) {
	host, _, err := net.SplitHostPort(hubAddr)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: a.id.ca, ServerName: host, Certificates: []tls.Certificate{a.id.cert}}
	return grpc.NewClient(hubAddr,
		grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithKeepaliveParams(agentkeepalive.Client()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(512<<20)),
	)
}

// session runs one stream; welcomed tells whether the hub answered Hello.
func (a *agent) session(ctx context.Context, hubAddr string) (bool, error) {
	conn, err := a.dial(hubAddr)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := apiv1alpha1.NewAgentServiceClient(conn).Connect(ctx)
	if err != nil {
		return false, err
	}
	a.mu.Lock()
	digests := make(map[string]string, len(a.apps))
	for app, h := range a.apps {
		digests[app] = h.digest
	}
	a.mu.Unlock()
	err = stream.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Hello{Hello: &apiv1alpha1.Hello{
		ProtocolVersion: version.ProtocolVersion, AgentVersion: "agentsim", Capabilities: version.Capabilities, BundleDigests: digests,
		ClusterCapabilities: simulatedCapabilities,
	}}})
	if err != nil {
		return false, fmt.Errorf("send hello: %w", err)
	}
	first, err := stream.Recv()
	if err != nil {
		return false, err
	}
	if first.GetWelcome() == nil {
		return false, errors.New("hub did not answer with a Welcome")
	}
	a.mu.Lock()
	a.connected = true
	a.sessions++
	a.mu.Unlock()
	// The hub may have lost what was sent on an earlier stream: report
	// every held app again.
	a.mu.Lock()
	var pending []string
	for app := range a.apps {
		pending = append(pending, app)
	}
	a.mu.Unlock()
	if err := a.report(stream, pending); err != nil {
		return true, err
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			return true, err
		}
		switch msg := m.GetMsg().(type) {
		case *apiv1alpha1.HubMessage_Desired:
			if err := a.report(stream, a.accept(msg.Desired)); err != nil {
				return true, err
			}
		case *apiv1alpha1.HubMessage_Command:
			res := &apiv1alpha1.CommandResult{Id: msg.Command.GetId(), App: msg.Command.GetApp(), Ok: true, Message: "simulated"}
			if err := stream.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_CommandResult{CommandResult: res}}); err != nil {
				return true, err
			}
		}
	}
}

// accept records the desired state and returns the apps to report.
func (a *agent) accept(ds *apiv1alpha1.DesiredState) []string {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.apps == nil {
		a.apps = map[string]held{}
	}
	var changed []string
	for _, b := range ds.GetBundles() {
		a.apps[b.GetApp()] = held{digest: b.GetDigest(), revision: b.GetRevision(), received: now}
		changed = append(changed, b.GetApp())
	}
	for _, app := range ds.GetRemovedApps() {
		delete(a.apps, app)
	}
	return changed
}

// report sends Synced/Healthy for apps and records when.
func (a *agent) report(stream apiv1alpha1.AgentService_ConnectClient, apps []string) error {
	for _, app := range apps {
		a.mu.Lock()
		h, ok := a.apps[app]
		a.mu.Unlock()
		if !ok {
			continue
		}
		now := timestamppb.Now()
		// An operation finishes once: reports on later streams carry the
		// same finish time, as the real agent's do (the hub records one
		// history entry per finished operation).
		if h.finished.IsZero() {
			a.mu.Lock()
			if cur, ok := a.apps[app]; ok && cur.digest == h.digest && cur.finished.IsZero() {
				cur.finished = now.AsTime()
				a.apps[app] = cur
			}
			if cur, ok := a.apps[app]; ok && cur.digest == h.digest {
				h = cur
			}
			a.mu.Unlock()
		}
		if h.finished.IsZero() {
			h.finished = now.AsTime()
		}
		st := &apiv1alpha1.AppStatus{
			App: app, Digest: h.digest, Revision: h.revision,
			Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, Health: apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY,
			ObservedAt: now,
			LastOperation: &apiv1alpha1.Operation{
				Phase: apiv1alpha1.Operation_PHASE_SUCCEEDED, Revision: h.revision, Digest: h.digest,
				InitiatedBy: "automated", StartedAt: timestamppb.New(h.received), FinishedAt: timestamppb.New(h.finished),
			},
		}
		if err := stream.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Status{Status: st}}); err != nil {
			return err
		}
		a.mu.Lock()
		if cur, ok := a.apps[app]; ok && cur.digest == h.digest && cur.reported.IsZero() {
			cur.reported = time.Now()
			a.apps[app] = cur
		}
		a.mu.Unlock()
	}
	return nil
}

// simulatedCapabilities is what every simulated agent reports about its
// (absent) API server, so that the hub renders Helm charts for it: one
// capability set for the whole simulated fleet.
var simulatedCapabilities = &apiv1alpha1.ClusterCapabilities{
	KubeVersion: "v1.31.0",
	ApiVersions: []string{"apps/v1", "apps/v1/Deployment", "batch/v1", "batch/v1/Job", "policy/v1", "policy/v1/PodDisruptionBudget",
		"v1", "v1/ConfigMap", "v1/Namespace", "v1/Secret", "v1/Service"},
}
