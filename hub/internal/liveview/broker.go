package liveview

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// MinFrameCost is the least credit one log frame costs (the agent's
// liveview.MinFrameCost): a window of W bytes allows at most
// W/MinFrameCost frames in flight.
const MinFrameCost = 256

// Errors of Do and Logs, before or instead of an agent's answer.
var (
	ErrNotConnected = errors.New("the cluster's agent is not connected")
	ErrUnsupported  = errors.New("agent does not support live view (it is older than the hub; upgrade it)")
	ErrBusy         = errors.New("too many live requests")
	ErrDeadline     = errors.New("the agent did not answer in time")
	ErrOverrun      = errors.New("the agent sent more than the credit it was granted")
)

// AgentError is an agent's refusal or failure.
type AgentError struct {
	Code    apiv1alpha1.LiveResponse_Code
	Message string
}

func (e *AgentError) Error() string { return e.Message }

// Limits bound live view on the hub.
type Limits struct {
	// Timeout is the deadline of a request that is not a followed log;
	// default 30s.
	Timeout time.Duration
	// FollowTimeout is the longest a followed log streams; default 1h.
	FollowTimeout time.Duration
	// MaxRequestsPerAgent and MaxRequests bound the requests in flight
	// (log streams included) per agent and for the hub; defaults 32, 512.
	MaxRequestsPerAgent, MaxRequests int
	// MaxLogsPerAgent and MaxLogs bound the log streams; defaults 16, 256.
	MaxLogsPerAgent, MaxLogs int
	// LogBytesPerSecond bounds the log bytes the hub relays per second,
	// all streams together; default 16 MiB.
	LogBytesPerSecond int
	// Window is each log stream's credit; default 128 KiB.
	Window int
}

func (l *Limits) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.Timeout <= 0 {
		l.Timeout = 30 * time.Second
	}
	if l.FollowTimeout <= 0 {
		l.FollowTimeout = time.Hour
	}
	def(&l.MaxRequestsPerAgent, 32)
	def(&l.MaxRequests, 512)
	def(&l.MaxLogsPerAgent, 16)
	def(&l.MaxLogs, 256)
	def(&l.LogBytesPerSecond, 16<<20)
	def(&l.Window, 128<<10)
	l.Window = max(l.Window, 4*MinFrameCost)
}

// Broker routes live requests to agents.
type Broker struct {
	lim Limits
	bps *rate.Limiter
	seq atomic.Uint64

	mu       sync.Mutex
	agents   map[string]*Agent
	requests int
	logs     int
}

// New returns a Broker.
func New(lim Limits) *Broker {
	lim.setDefaults()
	return &Broker{lim: lim, bps: rate.NewLimiter(rate.Limit(lim.LogBytesPerSecond), max(lim.LogBytesPerSecond, lim.Window)), agents: map[string]*Agent{}}
}

// Agent is one agent stream as the broker sees it.
type Agent struct {
	b        *Broker
	cluster  string
	capable  bool
	send     func(*apiv1alpha1.HubMessage)
	calls    map[string]*call // guarded by b.mu
	requests int
	logs     int
	closed   bool
}

// call is one request waiting for frames.
type call struct {
	frames chan *apiv1alpha1.LiveResponse
	failed chan struct{} // closed with err set when the call cannot go on
	err    error
}

// Attach registers cluster's stream; capable says whether the agent listed
// the live-view capability; send queues a message on the stream without
// blocking. It supersedes an earlier stream of the cluster, whose calls
// fail. Close the Agent when the stream ends.
func (b *Broker) Attach(cluster string, capable bool, send func(*apiv1alpha1.HubMessage)) *Agent {
	a := &Agent{b: b, cluster: cluster, capable: capable, send: send, calls: map[string]*call{}}
	b.mu.Lock()
	old := b.agents[cluster]
	b.agents[cluster] = a
	b.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return a
}

// Close fails the stream's calls and detaches it.
func (a *Agent) Close() {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if a.closed {
		return
	}
	a.closed = true
	if b.agents[a.cluster] == a {
		delete(b.agents, a.cluster)
	}
	for id, c := range a.calls {
		c.fail(ErrNotConnected)
		delete(a.calls, id)
	}
}

// fail ends c with err; b.mu is held.
func (c *call) fail(err error) {
	if c.err == nil {
		c.err = err
		close(c.failed)
	}
}

// Deliver hands a frame from the agent to its call. It never blocks: a
// frame the call has no room for (beyond the credit the hub granted) fails
// the call.
func (a *Agent) Deliver(r *apiv1alpha1.LiveResponse) {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	c := a.calls[r.GetId()]
	if c == nil || c.err != nil {
		return // canceled or ended already
	}
	select {
	case c.frames <- r:
	default:
		c.fail(ErrOverrun)
		delete(a.calls, r.GetId())
		a.send(&apiv1alpha1.HubMessage{Msg: &apiv1alpha1.HubMessage_Live{Live: &apiv1alpha1.LiveRequest{Id: r.GetId(), Kind: apiv1alpha1.LiveRequest_KIND_CANCEL}}})
		return
	}
	if r.GetDone() {
		delete(a.calls, r.GetId())
	}
}

// start registers a new call of req on cluster's agent within the limits
// and sends req.
func (b *Broker) start(cluster string, req *apiv1alpha1.LiveRequest, frames int) (*Agent, *call, func(), error) {
	isLog := req.GetKind() == apiv1alpha1.LiveRequest_KIND_LOGS
	b.mu.Lock()
	a := b.agents[cluster]
	switch {
	case a == nil:
		b.mu.Unlock()
		return nil, nil, nil, ErrNotConnected
	case !a.capable:
		b.mu.Unlock()
		return nil, nil, nil, ErrUnsupported
	case b.requests >= b.lim.MaxRequests:
		b.mu.Unlock()
		return nil, nil, nil, fmt.Errorf("%w: the hub serves %d already (its limit)", ErrBusy, b.lim.MaxRequests)
	case a.requests >= b.lim.MaxRequestsPerAgent:
		b.mu.Unlock()
		return nil, nil, nil, fmt.Errorf("%w: %d in flight for this cluster already (the limit per agent)", ErrBusy, b.lim.MaxRequestsPerAgent)
	case isLog && b.logs >= b.lim.MaxLogs:
		b.mu.Unlock()
		return nil, nil, nil, fmt.Errorf("%w: the hub streams %d logs already (its limit)", ErrBusy, b.lim.MaxLogs)
	case isLog && a.logs >= b.lim.MaxLogsPerAgent:
		b.mu.Unlock()
		return nil, nil, nil, fmt.Errorf("%w: %d logs streamed from this cluster already (the limit per agent)", ErrBusy, b.lim.MaxLogsPerAgent)
	}
	req.Id = strconv.FormatUint(b.seq.Add(1), 36)
	c := &call{frames: make(chan *apiv1alpha1.LiveResponse, frames), failed: make(chan struct{})}
	a.calls[req.Id] = c
	b.requests++
	a.requests++
	if isLog {
		b.logs++
		a.logs++
	}
	b.mu.Unlock()
	a.send(&apiv1alpha1.HubMessage{Msg: &apiv1alpha1.HubMessage_Live{Live: req}})
	done := func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.requests--
		a.requests--
		if isLog {
			b.logs--
			a.logs--
		}
		if a.calls[req.Id] == c {
			delete(a.calls, req.Id)
			if !a.closed {
				// The agent may still be working on it: stop it.
				a.send(&apiv1alpha1.HubMessage{Msg: &apiv1alpha1.HubMessage_Live{Live: &apiv1alpha1.LiveRequest{Id: req.Id, Kind: apiv1alpha1.LiveRequest_KIND_CANCEL}}})
			}
		}
	}
	return a, c, done, nil
}

// next waits for c's next frame.
func (c *call) next(ctx context.Context) (*apiv1alpha1.LiveResponse, error) {
	select {
	case r := <-c.frames:
		return r, nil
	default:
	}
	select {
	case r := <-c.frames:
		return r, nil
	case <-c.failed:
		return nil, c.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, ErrDeadline
		}
		return nil, ctx.Err()
	}
}

// frameError is the error of a last frame that is not OK.
func frameError(r *apiv1alpha1.LiveResponse) error {
	if r.GetCode() == apiv1alpha1.LiveResponse_CODE_OK {
		return nil
	}
	return &AgentError{Code: r.GetCode(), Message: r.GetMessage()}
}

// Do sends req (TREE, MANIFEST, EVENTS or ACTION) to cluster's agent and
// returns its answer, within Limits.Timeout. Its errors name the cluster.
func (b *Broker) Do(ctx context.Context, cluster string, req *apiv1alpha1.LiveRequest) (*apiv1alpha1.LiveResponse, error) {
	r, err := b.do(ctx, cluster, req)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	return r, nil
}

func (b *Broker) do(ctx context.Context, cluster string, req *apiv1alpha1.LiveRequest) (*apiv1alpha1.LiveResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, b.lim.Timeout)
	defer cancel()
	req.TimeoutMs = b.lim.Timeout.Milliseconds()
	_, c, done, err := b.start(cluster, req, 1)
	if err != nil {
		return nil, err
	}
	defer done()
	r, err := c.next(ctx)
	if err != nil {
		return nil, err
	}
	if !r.GetDone() {
		return nil, fmt.Errorf("the agent answered %s in parts", req.GetKind())
	}
	if err := frameError(r); err != nil {
		return nil, err
	}
	return r, nil
}

// Logs streams the log req asks for from cluster's agent, calling write
// with every frame (the first names the pod and container), until the log
// ends (nil), ctx ends, the deadline passes, or write fails. It grants the
// agent more credit as write returns, within the hub's log rate. Its
// errors name the cluster.
func (b *Broker) Logs(ctx context.Context, cluster string, req *apiv1alpha1.LiveRequest, write func(*apiv1alpha1.LiveResponse) error) error {
	if err := b.streamLogs(ctx, cluster, req, write); err != nil {
		return fmt.Errorf("cluster %s: %w", cluster, err)
	}
	return nil
}

func (b *Broker) streamLogs(ctx context.Context, cluster string, req *apiv1alpha1.LiveRequest, write func(*apiv1alpha1.LiveResponse) error) error {
	timeout := b.lim.Timeout
	if req.GetLogs().GetFollow() {
		timeout = b.lim.FollowTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req.Kind = apiv1alpha1.LiveRequest_KIND_LOGS
	req.TimeoutMs = timeout.Milliseconds()
	req.CreditBytes = int64(b.lim.Window)
	a, c, done, err := b.start(cluster, req, b.lim.Window/MinFrameCost+1)
	if err != nil {
		return err
	}
	defer done()
	used := 0
	for {
		r, err := c.next(ctx)
		if err != nil {
			return err
		}
		if r.GetDone() {
			if len(r.GetLogData()) > 0 || r.GetPod() != "" {
				if err := write(r); err != nil {
					return err
				}
			}
			return frameError(r)
		}
		if err := write(r); err != nil {
			return err
		}
		used += max(len(r.GetLogData()), MinFrameCost)
		if used >= b.lim.Window/2 {
			if err := b.bps.WaitN(ctx, min(used, b.bps.Burst())); err != nil {
				return err
			}
			a.send(&apiv1alpha1.HubMessage{Msg: &apiv1alpha1.HubMessage_Live{Live: &apiv1alpha1.LiveRequest{
				Id: req.GetId(), Kind: apiv1alpha1.LiveRequest_KIND_CREDIT, CreditBytes: int64(used),
			}}})
			used = 0
		}
	}
}
