package liveview

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/flotilla-cd/flotilla/agent/internal/inventory"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// MinFrameCost is the least credit a log frame costs, however short: it
// bounds the number of frames a window allows.
const MinFrameCost = 256

// Inventory tells which objects an app owns; engine.Engine implements it.
type Inventory interface {
	Owned(app string) ([]inventory.Entry, bool)
}

// Mapper maps kinds to resources; apply.Mapper implements it.
type Mapper interface {
	Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error)
}

// Options are the agent's live-view limits.
type Options struct {
	// MaxRequests bounds the requests served at once (log streams
	// included); default 32.
	MaxRequests int
	// MaxLogs bounds the log streams served at once; default 16.
	MaxLogs int
	// LogBytesPerSecond bounds the log bytes the agent sends per second,
	// all streams together; default 1 MiB.
	LogBytesPerSecond int
	// FrameBytes is the most log bytes in one frame; default 32 KiB.
	FrameBytes int
	// MaxTimeout caps a request's deadline; default 1 hour.
	MaxTimeout time.Duration
	// FieldManager names the agent in the writes of actions.
	FieldManager string
}

func (o *Options) setDefaults() {
	if o.MaxRequests <= 0 {
		o.MaxRequests = 32
	}
	if o.MaxLogs <= 0 {
		o.MaxLogs = 16
	}
	if o.LogBytesPerSecond <= 0 {
		o.LogBytesPerSecond = 1 << 20
	}
	if o.FrameBytes <= 0 {
		o.FrameBytes = 32 << 10
	}
	if o.MaxTimeout <= 0 {
		o.MaxTimeout = time.Hour
	}
	if o.FieldManager == "" {
		o.FieldManager = "flotilla-agent"
	}
}

// Send queues an answer frame on the stream; it blocks while the stream's
// low-priority queue is full and fails when ctx ends.
type Send func(ctx context.Context, r *apiv1alpha1.LiveResponse) error

// Server serves live-view requests of one agent.
type Server struct {
	opts    Options
	dyn     dynamic.Interface
	podLogs PodLogs
	mapper  Mapper
	inv     Inventory
	log     hclog.Logger
	bps     *rate.Limiter

	mu       sync.Mutex
	running  map[string]*request
	requests int
	logs     int
}

// request is one request being served.
type request struct {
	cancel context.CancelFunc
	credit chan int64 // credit granted by the hub (LOGS)
}

// New returns a Server.
func New(dyn dynamic.Interface, logs PodLogs, mapper Mapper, inv Inventory, opts Options, log hclog.Logger) *Server {
	opts.setDefaults()
	return &Server{
		opts: opts, dyn: dyn, podLogs: logs, mapper: mapper, inv: inv, log: log,
		bps:     rate.NewLimiter(rate.Limit(opts.LogBytesPerSecond), max(opts.LogBytesPerSecond, opts.FrameBytes)),
		running: map[string]*request{},
	}
}

// Handle takes one request of the hub. It does not block: CANCEL and
// CREDIT act at once, other requests run on goroutines of their own until
// ctx (the stream's) ends, answering through send.
func (s *Server) Handle(ctx context.Context, req *apiv1alpha1.LiveRequest, send func(context.Context, *apiv1alpha1.LiveResponse) error) {
	id := req.GetId()
	switch req.GetKind() {
	case apiv1alpha1.LiveRequest_KIND_CANCEL:
		s.mu.Lock()
		if r := s.running[id]; r != nil {
			r.cancel()
		}
		s.mu.Unlock()
		return
	case apiv1alpha1.LiveRequest_KIND_CREDIT:
		s.mu.Lock()
		if r := s.running[id]; r != nil && r.credit != nil {
			select {
			case r.credit <- req.GetCreditBytes():
			default: // the hub grants at most a few at a time; more is a broken hub
			}
		}
		s.mu.Unlock()
		return
	}
	isLog := req.GetKind() == apiv1alpha1.LiveRequest_KIND_LOGS
	s.mu.Lock()
	switch {
	case s.running[id] != nil:
		s.mu.Unlock()
		go s.fail(ctx, send, id, apiv1alpha1.LiveResponse_CODE_INVALID, fmt.Sprintf("request %s is already running", id))
		return
	case s.requests >= s.opts.MaxRequests:
		s.mu.Unlock()
		go s.fail(ctx, send, id, apiv1alpha1.LiveResponse_CODE_BUSY, fmt.Sprintf("the agent serves %d live requests already (its limit)", s.opts.MaxRequests))
		return
	case isLog && s.logs >= s.opts.MaxLogs:
		s.mu.Unlock()
		go s.fail(ctx, send, id, apiv1alpha1.LiveResponse_CODE_BUSY, fmt.Sprintf("the agent streams %d logs already (its limit)", s.opts.MaxLogs))
		return
	}
	timeout := time.Duration(req.GetTimeoutMs()) * time.Millisecond
	if timeout <= 0 || timeout > s.opts.MaxTimeout {
		timeout = s.opts.MaxTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	r := &request{cancel: cancel}
	if isLog {
		r.credit = make(chan int64, 16)
		s.logs++
	}
	s.requests++
	s.running[id] = r
	s.mu.Unlock()

	go func() {
		defer func() {
			cancel()
			s.mu.Lock()
			delete(s.running, id)
			s.requests--
			if isLog {
				s.logs--
			}
			s.mu.Unlock()
		}()
		res := s.serve(rctx, req, r, send)
		if res == nil { // canceled by the hub: it waits for nothing more
			return
		}
		res.Id, res.Done = id, true
		if errors.Is(rctx.Err(), context.DeadlineExceeded) && res.Code != apiv1alpha1.LiveResponse_CODE_OK {
			res.Code, res.Message = apiv1alpha1.LiveResponse_CODE_DEADLINE, fmt.Sprintf("live request %s: deadline of %s exceeded", req.GetKind(), timeout)
		}
		_ = send(ctx, res)
	}()
}

func (s *Server) fail(ctx context.Context, send Send, id string, code apiv1alpha1.LiveResponse_Code, msg string) {
	_ = send(ctx, &apiv1alpha1.LiveResponse{Id: id, Done: true, Code: code, Message: msg})
}

// serve runs req and returns its last frame (nil when canceled).
func (s *Server) serve(ctx context.Context, req *apiv1alpha1.LiveRequest, r *request, send Send) *apiv1alpha1.LiveResponse {
	var (
		res *apiv1alpha1.LiveResponse
		err error
	)
	switch req.GetKind() {
	case apiv1alpha1.LiveRequest_KIND_TREE:
		res, err = s.tree(ctx, req.GetApp())
	case apiv1alpha1.LiveRequest_KIND_MANIFEST:
		res, err = s.manifest(ctx, req.GetApp(), req.GetObject())
	case apiv1alpha1.LiveRequest_KIND_EVENTS:
		res, err = s.events(ctx, req.GetApp(), req.GetObject())
	case apiv1alpha1.LiveRequest_KIND_ACTION:
		res, err = s.action(ctx, req)
	case apiv1alpha1.LiveRequest_KIND_LOGS:
		res, err = s.streamLogs(ctx, req, r, send)
	default:
		err = invalid("unknown live request kind %d", req.GetKind())
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil
		}
		return errorResponse(err)
	}
	return res
}
