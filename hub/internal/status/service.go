package status

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flotilla-cd/flotilla/hub/api"
	"github.com/flotilla-cd/flotilla/hub/internal/controller"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Deps are the parts of the hub the service reads and drives.
type Deps struct {
	Store      store.Store
	Fleet      *fleet.Fleet
	Controller *controller.Controller
	// CommandTimeout bounds the wait for an agent's answer (diff) and for a
	// rollback's pinned bundle to reach its agents; default 30s.
	CommandTimeout time.Duration
	Log            hclog.Logger
}

// Service answers for the status of apps and carries out operations on
// them. It is safe for concurrent use.
type Service struct {
	d Deps

	mu      sync.Mutex
	waiting map[resultKey]chan *apiv1alpha1.CommandResult

	history sync.WaitGroup // history writes in flight
	feed    feed           // rollout events to subscribers
}

// New returns a Service.
func New(d Deps) *Service {
	if d.CommandTimeout <= 0 {
		d.CommandTimeout = 30 * time.Second
	}
	if d.Log == nil {
		d.Log = hclog.NewNullLogger()
	}
	return &Service{d: d, waiting: map[resultKey]chan *apiv1alpha1.CommandResult{}}
}

// Views are every app's views (see the function Views).
func (s *Service) Views(withObjects bool) []api.AppView {
	return Views(s.d.Controller.Snapshot(), s.d.Fleet, withObjects)
}

// ViewsPage is one page of Views (see the function ViewsPage).
func (s *Service) ViewsPage(after string, limit int, withObjects bool) ([]api.AppView, string) {
	return ViewsPage(s.d.Controller.Snapshot(), s.d.Fleet, after, limit, withObjects)
}

// View is one app's view with its spec and objects; ok is false when no
// app has that name.
func (s *Service) View(name string) (api.AppView, bool) {
	return View(s.d.Controller.Snapshot(), s.d.Fleet, name, true)
}

// Known reports whether an app of that name is defined now.
func (s *Service) Known(name string) bool {
	for _, as := range s.d.Controller.Snapshot().Apps {
		if as.Name == name {
			return true
		}
	}
	return false
}

// Targets returns the app's targets, limited to cluster when it is not "".
// The error is a NotFound *Error when the app does not exist or does not
// target the cluster.
func (s *Service) Targets(name, cluster string) ([]controller.TargetState, error) {
	for _, as := range s.d.Controller.Snapshot().Apps {
		if as.Name != name {
			continue
		}
		var out []controller.TargetState
		for _, t := range as.Targets {
			if cluster == "" || cluster == t.Cluster {
				out = append(out, t)
			}
		}
		if len(out) == 0 {
			if cluster == "" {
				return nil, errorf(NotFound, "application %q targets no cluster", name)
			}
			return nil, errorf(NotFound, "application %q does not target cluster %q", name, cluster)
		}
		return out, nil
	}
	return nil, errorf(NotFound, "application %q not found", name)
}

// Kind is the sort of mistake an *Error reports.
type Kind int

// The kinds of *Error.
const (
	Invalid       Kind = iota // the request itself is wrong
	NotFound                  // it names an app, cluster or entry that does not exist
	Conflict                  // the app is not in a state the request applies to
	Unprocessable             // it could not be carried out; nothing changed
)

// Error is a failure the caller caused or must act on; its text is for the
// caller.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}
