package hubclient_test

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-cd/flotilla/agent/internal/hubclient"
	"github.com/flotilla-cd/flotilla/agent/internal/identity"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// memEngine is the agent's engine without a cluster: it verifies and
// decodes what the hub sends, holds it, and reports every app Synced and
// Healthy at the digest it holds. It stands in for agent/internal/engine so
// that hundreds of agents fit in one test process; the protocol, TLS and
// hub are real.
type memEngine struct {
	mu       sync.Mutex
	held     map[string]*apiv1alpha1.Bundle
	accepted map[string]time.Time // digest → when first accepted
	updates  chan struct{}
}

var _ hubclient.Engine = (*memEngine)(nil)

func newMemEngine() *memEngine {
	return &memEngine{held: map[string]*apiv1alpha1.Bundle{}, accepted: map[string]time.Time{}, updates: make(chan struct{}, 1)}
}

func (e *memEngine) Held() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]string, len(e.held))
	for app, b := range e.held {
		out[app] = b.GetDigest()
	}
	return out
}

func (e *memEngine) Accept(_ context.Context, bundles []*apiv1alpha1.Bundle, removed []string) error {
	for _, b := range bundles {
		if err := manifest.VerifyDigest(b); err != nil {
			return err
		}
		if _, err := manifest.DecodeObjects(b); err != nil {
			return err
		}
	}
	now := time.Now()
	e.mu.Lock()
	for _, b := range bundles {
		e.held[b.GetApp()] = b
		if _, ok := e.accepted[b.GetDigest()]; !ok {
			e.accepted[b.GetDigest()] = now
		}
	}
	for _, app := range removed {
		delete(e.held, app)
	}
	e.mu.Unlock()
	select {
	case e.updates <- struct{}{}:
	default:
	}
	return nil
}

// acceptedAt returns when digest was first accepted.
func (e *memEngine) acceptedAt(digest string) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.accepted[digest]
	return t, ok
}

func (e *memEngine) Updates() <-chan struct{} { return e.updates }

// ChangedStatuses returns every status: the client skips the unchanged.
func (e *memEngine) ChangedStatuses(map[string]uint64) []*apiv1alpha1.AppStatus { return e.Statuses() }

func (e *memEngine) Statuses() []*apiv1alpha1.AppStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*apiv1alpha1.AppStatus, 0, len(e.held))
	for _, app := range sortedKeys(e.held) {
		b := e.held[app]
		out = append(out, &apiv1alpha1.AppStatus{
			App: app, Digest: b.GetDigest(), Revision: b.GetRevision(),
			Sync: apiv1alpha1.SyncStatus_SYNC_STATUS_SYNCED, Health: apiv1alpha1.HealthStatus_HEALTH_STATUS_HEALTHY,
			ObservedAt: timestamppb.Now(),
		})
	}
	return out
}

func (e *memEngine) Do(_ context.Context, cmd *apiv1alpha1.Command) *apiv1alpha1.CommandResult {
	return &apiv1alpha1.CommandResult{Id: cmd.GetId(), App: cmd.GetApp(), Ok: true}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// memIdentities keeps an agent's identity in memory.
type memIdentities struct {
	mu    sync.Mutex
	id    *identity.Identity
	saves int
}

var _ identity.Store = (*memIdentities)(nil)

func (s *memIdentities) Load(context.Context) (*identity.Identity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.id == nil {
		return nil, identity.ErrNotFound
	}
	return s.id, nil
}

func (s *memIdentities) Save(_ context.Context, id *identity.Identity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.id = id
	s.saves++
	return nil
}

func (s *memIdentities) current() (*identity.Identity, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id, s.saves
}
