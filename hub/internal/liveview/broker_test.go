package liveview

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// testAgent plays an agent at the broker's boundary: what the broker would
// put on the agent's stream arrives on sent, and the test answers through
// the Agent's Deliver, as agentapi's stream reader does.
type testAgent struct {
	*Agent
	sent chan *apiv1alpha1.LiveRequest
}

func attach(t *testing.T, b *Broker, cluster string, capable bool) *testAgent {
	t.Helper()
	ta := &testAgent{sent: make(chan *apiv1alpha1.LiveRequest, 4096)}
	ta.Agent = b.Attach(cluster, capable, func(m *apiv1alpha1.HubMessage) {
		select {
		case ta.sent <- m.GetLive():
		default:
			t.Errorf("cluster %s: the test's stream is full; send must never block", cluster)
		}
	})
	t.Cleanup(ta.Close)
	return ta
}

// next returns the next request the broker sent to the agent.
func (ta *testAgent) next(t *testing.T) *apiv1alpha1.LiveRequest {
	t.Helper()
	select {
	case r := <-ta.sent:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the broker sent the agent nothing in 10s")
		return nil
	}
}

// nextOf skips CREDITs until a request of kind.
func (ta *testAgent) nextOf(t *testing.T, kind apiv1alpha1.LiveRequest_Kind) *apiv1alpha1.LiveRequest {
	t.Helper()
	for {
		r := ta.next(t)
		if r.GetKind() == kind {
			return r
		}
		if r.GetKind() != apiv1alpha1.LiveRequest_KIND_CREDIT {
			t.Fatalf("agent got %v, want %v", r, kind)
		}
	}
}

// result is what a Do or Logs returned.
type result struct {
	res *apiv1alpha1.LiveResponse
	err error
}

func doAsync(ctx context.Context, b *Broker, cluster string, req *apiv1alpha1.LiveRequest) chan result {
	ch := make(chan result, 1)
	go func() {
		r, err := b.Do(ctx, cluster, req)
		ch <- result{r, err}
	}()
	return ch
}

func logsAsync(ctx context.Context, b *Broker, cluster string, write func(*apiv1alpha1.LiveResponse) error) chan error {
	ch := make(chan error, 1)
	if write == nil {
		write = func(*apiv1alpha1.LiveResponse) error { return nil }
	}
	go func() {
		ch <- b.Logs(ctx, cluster, &apiv1alpha1.LiveRequest{App: "shop", Object: &apiv1alpha1.ObjectRef{Kind: "Pod", Name: "web-1"}, Logs: &apiv1alpha1.LogOptions{Follow: true}}, write)
	}()
	return ch
}

func wait[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("no result in 10s")
		var zero T
		return zero
	}
}

func tree() *apiv1alpha1.LiveRequest {
	return &apiv1alpha1.LiveRequest{Kind: apiv1alpha1.LiveRequest_KIND_TREE, App: "shop"}
}

// TestDoAnswersByID: answers correlate with requests by id whatever their
// order, the agent's refusal is an AgentError with its code, and a request
// to a cluster without a (capable) agent never reaches a stream.
func TestDoAnswersByID(t *testing.T) {
	b := New(Limits{})
	a := attach(t, b, "eu", true)
	old := attach(t, b, "legacy", false)
	ctx := t.Context()

	first := doAsync(ctx, b, "eu", &apiv1alpha1.LiveRequest{Kind: apiv1alpha1.LiveRequest_KIND_MANIFEST, App: "shop", Object: &apiv1alpha1.ObjectRef{Kind: "ConfigMap", Name: "one"}})
	r1 := a.next(t)
	second := doAsync(ctx, b, "eu", &apiv1alpha1.LiveRequest{Kind: apiv1alpha1.LiveRequest_KIND_MANIFEST, App: "shop", Object: &apiv1alpha1.ObjectRef{Kind: "ConfigMap", Name: "two"}})
	r2 := a.next(t)
	if r1.GetId() == r2.GetId() || r1.GetTimeoutMs() != DefaultLimits().Timeout.Milliseconds() {
		t.Fatalf("requests %v and %v: want distinct ids and the deadline sent along", r1, r2)
	}
	// The second is answered first.
	a.Deliver(&apiv1alpha1.LiveResponse{Id: r2.GetId(), Done: true, ManifestJson: []byte(`{"name":"` + r2.GetObject().GetName() + `"}`)})
	a.Deliver(&apiv1alpha1.LiveResponse{Id: r1.GetId(), Done: true, ManifestJson: []byte(`{"name":"` + r1.GetObject().GetName() + `"}`)})
	got := []string{string(wait(t, first).res.GetManifestJson()), string(wait(t, second).res.GetManifestJson())}
	if d := cmp.Diff([]string{`{"name":"one"}`, `{"name":"two"}`}, got); d != "" {
		t.Errorf("answers (-want +got):\n%s", d)
	}

	refused := doAsync(ctx, b, "eu", &apiv1alpha1.LiveRequest{Kind: apiv1alpha1.LiveRequest_KIND_ACTION, App: "shop", Action: "restart"})
	r3 := a.next(t)
	a.Deliver(&apiv1alpha1.LiveResponse{Id: r3.GetId(), Done: true, Code: apiv1alpha1.LiveResponse_CODE_NOT_OWNED, Message: "apps/Deployment ns/other is not part of app shop"})
	var ae *AgentError
	if err := wait(t, refused).err; !errors.As(err, &ae) || ae.Code != apiv1alpha1.LiveResponse_CODE_NOT_OWNED || ae.Message != "apps/Deployment ns/other is not part of app shop" {
		t.Errorf("refused action: %v, want the agent's NOT_OWNED", err)
	}

	for cluster, want := range map[string]error{"legacy": ErrUnsupported, "nowhere": ErrNotConnected} {
		if _, err := b.Do(ctx, cluster, tree()); !errors.Is(err, want) {
			t.Errorf("Do on %s = %v, want %v", cluster, err, want)
		}
	}
	select {
	case r := <-old.sent:
		t.Errorf("an agent without live view got %v", r)
	default:
	}
}

// TestCaps: the caps on requests and log streams per agent and per hub
// refuse at once with ErrBusy (HTTP 429), name the limit, and free their
// slot when a request ends, so the next one is served.
func TestCaps(t *testing.T) {
	cases := []struct {
		name string
		lim  Limits
		// hold: requests started (and left unanswered) before the one
		// that is refused, as cluster/kind.
		hold []string
		over string
		want string
	}{
		{name: "requests per agent", lim: Limits{MaxRequestsPerAgent: 2}, hold: []string{"eu/tree", "eu/logs"}, over: "eu/tree",
			want: "cluster eu: too many live requests: 2 in flight for this cluster already (the limit per agent)"},
		{name: "requests per hub", lim: Limits{MaxRequests: 3}, hold: []string{"eu/tree", "us/tree", "us/logs"}, over: "eu/tree",
			want: "cluster eu: too many live requests: the hub serves 3 already (its limit)"},
		{name: "logs per agent", lim: Limits{MaxLogsPerAgent: 2}, hold: []string{"eu/logs", "eu/logs"}, over: "eu/logs",
			want: "cluster eu: too many live requests: 2 logs streamed from this cluster already (the limit per agent)"},
		{name: "logs per hub", lim: Limits{MaxLogs: 2}, hold: []string{"eu/logs", "us/logs"}, over: "eu/logs",
			want: "cluster eu: too many live requests: the hub streams 2 logs already (its limit)"},
		{name: "logs per agent leave other requests", lim: Limits{MaxLogsPerAgent: 1}, hold: []string{"eu/logs"}, over: "eu/logs",
			want: "cluster eu: too many live requests: 1 logs streamed from this cluster already (the limit per agent)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := New(tc.lim)
			agents := map[string]*testAgent{"eu": attach(t, b, "eu", true), "us": attach(t, b, "us", true)}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			start := func(spec string) (chan error, *apiv1alpha1.LiveRequest) {
				cluster, kind, _ := strings.Cut(spec, "/")
				ch := make(chan error, 1)
				if kind == "logs" {
					ch = logsAsync(ctx, b, cluster, nil)
				} else {
					d := doAsync(ctx, b, cluster, tree())
					go func() { ch <- wait(t, d).err }()
				}
				return ch, agents[cluster].next(t)
			}
			var held []*apiv1alpha1.LiveRequest
			var heldDone []chan error
			for _, h := range tc.hold {
				ch, r := start(h)
				held, heldDone = append(held, r), append(heldDone, ch)
			}
			overCluster, overKind, _ := strings.Cut(tc.over, "/")
			var err error
			if overKind == "logs" {
				err = wait(t, logsAsync(ctx, b, overCluster, nil))
			} else {
				_, err = b.Do(ctx, overCluster, tree())
			}
			if !errors.Is(err, ErrBusy) || err.Error() != tc.want {
				t.Fatalf("over the limit: %v, want ErrBusy %q", err, tc.want)
			}
			select {
			case r := <-agents[overCluster].sent:
				t.Fatalf("a refused request reached the agent: %v", r)
			default:
			}
			if tc.name == "logs per agent leave other requests" {
				d := doAsync(ctx, b, "eu", tree())
				r := agents["eu"].next(t)
				agents["eu"].Deliver(&apiv1alpha1.LiveResponse{Id: r.GetId(), Done: true})
				if res := wait(t, d); res.err != nil {
					t.Fatalf("a tree beside a full log cap: %v", res.err)
				}
			}
			// The first held request ends: its slot is free again.
			first := held[0]
			cluster, _, _ := strings.Cut(tc.hold[0], "/")
			agents[cluster].Deliver(&apiv1alpha1.LiveResponse{Id: first.GetId(), Done: true})
			if err := wait(t, heldDone[0]); err != nil {
				t.Fatalf("held request %s: %v", tc.hold[0], err)
			}
			var again chan error
			if overKind == "logs" {
				again = logsAsync(ctx, b, overCluster, nil)
			} else {
				d := doAsync(ctx, b, overCluster, tree())
				again = make(chan error, 1)
				go func() { again <- wait(t, d).err }()
			}
			r := agents[overCluster].next(t)
			if r.GetKind() == apiv1alpha1.LiveRequest_KIND_CANCEL { // the agentless end of the first
				r = agents[overCluster].next(t)
			}
			agents[overCluster].Deliver(&apiv1alpha1.LiveResponse{Id: r.GetId(), Done: true})
			if err := wait(t, again); err != nil {
				t.Fatalf("after a slot was freed: %v", err)
			}
		})
	}
}

// TestAgentBusy: the agent's own BUSY refusal reaches the caller as an
// AgentError with that code (HTTP 429 in httpapi).
func TestAgentBusy(t *testing.T) {
	b := New(Limits{})
	a := attach(t, b, "eu", true)
	done := logsAsync(t.Context(), b, "eu", nil)
	r := a.next(t)
	a.Deliver(&apiv1alpha1.LiveResponse{Id: r.GetId(), Done: true, Code: apiv1alpha1.LiveResponse_CODE_BUSY, Message: "the agent streams 16 logs already (its limit)"})
	var ae *AgentError
	if err := wait(t, done); !errors.As(err, &ae) || ae.Code != apiv1alpha1.LiveResponse_CODE_BUSY {
		t.Fatalf("Logs = %v, want the agent's BUSY", err)
	}
}

// TestDeadline: a request the agent does not answer in time fails with
// ErrDeadline, the agent is told to stop it, its slot is free, and an
// answer arriving late is dropped.
func TestDeadline(t *testing.T) {
	b := New(Limits{Timeout: 200 * time.Millisecond, MaxRequestsPerAgent: 1})
	a := attach(t, b, "eu", true)
	d := doAsync(t.Context(), b, "eu", tree())
	r := a.next(t)
	if r.GetTimeoutMs() != 200 {
		t.Errorf("timeout sent to the agent: %d ms, want 200", r.GetTimeoutMs())
	}
	if err := wait(t, d).err; !errors.Is(err, ErrDeadline) {
		t.Fatalf("Do = %v, want ErrDeadline", err)
	}
	if c := a.next(t); c.GetKind() != apiv1alpha1.LiveRequest_KIND_CANCEL || c.GetId() != r.GetId() {
		t.Fatalf("after the deadline the agent got %v, want CANCEL of %s", c, r.GetId())
	}
	a.Deliver(&apiv1alpha1.LiveResponse{Id: r.GetId(), Done: true}) // late: dropped
	d = doAsync(t.Context(), b, "eu", tree())
	r2 := a.next(t)
	a.Deliver(&apiv1alpha1.LiveResponse{Id: r2.GetId(), Done: true, Nodes: []*apiv1alpha1.LiveNode{{Uid: "u1"}}})
	if res := wait(t, d); res.err != nil || len(res.res.GetNodes()) != 1 {
		t.Fatalf("the next request: %v %v, want its own answer", res.res, res.err)
	}
}

// TestFollowedLogDeadline: a followed log gets FollowTimeout, not Timeout.
func TestFollowedLogDeadline(t *testing.T) {
	b := New(Limits{Timeout: time.Second, FollowTimeout: 3 * time.Hour})
	a := attach(t, b, "eu", true)
	ctx, cancel := context.WithCancel(t.Context())
	done := logsAsync(ctx, b, "eu", nil)
	r := a.next(t)
	if r.GetTimeoutMs() != (3*time.Hour).Milliseconds() || r.GetKind() != apiv1alpha1.LiveRequest_KIND_LOGS {
		t.Errorf("followed log request %v: want LOGS with a 3h deadline", r)
	}
	cancel()
	if err := wait(t, done); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("followed log ended by its caller: %v", err)
	}
}

// TestCancelWhenTheClientGoes: when the person's request ends (the HTTP
// client disconnects: its context is cancelled) a log stops, the agent gets
// CANCEL for it, and the log's slot is free at once.
func TestCancelWhenTheClientGoes(t *testing.T) {
	b := New(Limits{MaxLogsPerAgent: 1})
	a := attach(t, b, "eu", true)
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan string, 16)
	done := logsAsync(ctx, b, "eu", func(f *apiv1alpha1.LiveResponse) error {
		got <- string(f.GetLogData())
		return nil
	})
	r := a.next(t)
	a.Deliver(&apiv1alpha1.LiveResponse{Id: r.GetId(), Pod: "web-1", Container: "web", LogData: []byte("line 1\n")})
	if l := wait(t, got); l != "line 1\n" {
		t.Fatalf("first frame %q", l)
	}
	cancel()
	if err := wait(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Logs after the client went = %v, want context.Canceled", err)
	}
	if c := a.next(t); c.GetKind() != apiv1alpha1.LiveRequest_KIND_CANCEL || c.GetId() != r.GetId() {
		t.Fatalf("the agent got %v, want CANCEL of %s", c, r.GetId())
	}
	a.Deliver(&apiv1alpha1.LiveResponse{Id: r.GetId(), LogData: []byte("line 2\n")}) // in flight: dropped
	next := logsAsync(t.Context(), b, "eu", nil)
	r2 := a.next(t)
	a.Deliver(&apiv1alpha1.LiveResponse{Id: r2.GetId(), Done: true})
	if err := wait(t, next); err != nil {
		t.Fatalf("a log after the first was cancelled: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("a frame reached the person after they left: %q", <-got)
	}
}

// TestAgentGone: calls of a stream that ends fail with ErrNotConnected; a
// new stream of the same cluster supersedes the old one.
func TestAgentGone(t *testing.T) {
	b := New(Limits{})
	a := attach(t, b, "eu", true)
	d := doAsync(t.Context(), b, "eu", tree())
	a.next(t)
	a.Close()
	if err := wait(t, d).err; !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Do after the stream ended = %v, want ErrNotConnected", err)
	}
	old := attach(t, b, "us", true)
	d = doAsync(t.Context(), b, "us", tree())
	old.next(t)
	fresh := attach(t, b, "us", true)
	if err := wait(t, d).err; !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Do on a superseded stream = %v, want ErrNotConnected", err)
	}
	d = doAsync(t.Context(), b, "us", tree())
	r := fresh.next(t)
	fresh.Deliver(&apiv1alpha1.LiveResponse{Id: r.GetId(), Done: true})
	if err := wait(t, d).err; err != nil {
		t.Fatalf("Do on the new stream: %v", err)
	}
}

// TestCreditAccounting: a log stream starts with a window of credit; every
// frame costs its bytes but at least MinFrameCost; once half a window was
// handed on, the hub grants exactly what was used; a frame beyond the
// credit while the person does not read fails the log (never blocking
// Deliver) and cancels it on the agent.
func TestCreditAccounting(t *testing.T) {
	const window = 4096
	b := New(Limits{Window: window})
	a := attach(t, b, "eu", true)
	written := make(chan int, 1024)
	release := make(chan struct{})
	stall := make(chan struct{}, 1)
	done := logsAsync(t.Context(), b, "eu", func(f *apiv1alpha1.LiveResponse) error {
		if string(f.GetLogData()) == "stall\n" {
			stall <- struct{}{}
			<-release
		}
		written <- len(f.GetLogData())
		return nil
	})
	r := a.nextOf(t, apiv1alpha1.LiveRequest_KIND_LOGS)
	if r.GetCreditBytes() != window {
		t.Fatalf("credit of a new log: %d, want the window %d", r.GetCreditBytes(), window)
	}
	send := func(data string) {
		a.Deliver(&apiv1alpha1.LiveResponse{Id: r.GetId(), LogData: []byte(data)})
	}
	// 7 short frames cost 7*256 = 1792 < 2048: no grant yet; the 8th
	// reaches half the window and earns a grant of 8*256.
	for i := range 8 {
		send(fmt.Sprintf("l%d\n", i))
	}
	for range 8 {
		wait(t, written)
	}
	if c := a.next(t); c.GetKind() != apiv1alpha1.LiveRequest_KIND_CREDIT || c.GetCreditBytes() != 8*MinFrameCost || c.GetId() != r.GetId() {
		t.Fatalf("after 8 short frames: %v, want a CREDIT of %d", c, 8*MinFrameCost)
	}
	// Frames longer than MinFrameCost cost their length: 3 of 700 bytes
	// are 2100 ≥ 2048.
	long := string(make([]byte, 700))
	for range 3 {
		send(long)
	}
	for range 3 {
		wait(t, written)
	}
	if c := a.next(t); c.GetKind() != apiv1alpha1.LiveRequest_KIND_CREDIT || c.GetCreditBytes() != 2100 {
		t.Fatalf("after 3 frames of 700 bytes: %v, want a CREDIT of 2100", c)
	}
	// The person stops reading; the agent keeps sending beyond its credit.
	send("stall\n")
	wait(t, stall)
	for range window/MinFrameCost + 2 { // the buffer holds window/MinFrameCost+1
		send("x\n")
	}
	if c := a.nextOf(t, apiv1alpha1.LiveRequest_KIND_CANCEL); c.GetId() != r.GetId() {
		t.Fatalf("after an overrun the agent got CANCEL of %s, want %s", c.GetId(), r.GetId())
	}
	close(release)
	if err := wait(t, done); !errors.Is(err, ErrOverrun) {
		t.Fatalf("Logs = %v, want ErrOverrun", err)
	}
}

// TestLogEnds: a log's last frame may carry data; a failed last frame is
// the log's error; a write error ends the log and cancels it on the agent.
func TestLogEnds(t *testing.T) {
	b := New(Limits{})
	a := attach(t, b, "eu", true)
	var got []string
	done := logsAsync(t.Context(), b, "eu", func(f *apiv1alpha1.LiveResponse) error {
		got = append(got, f.GetPod()+"|"+string(f.GetLogData()))
		return nil
	})
	r := a.next(t)
	a.Deliver(&apiv1alpha1.LiveResponse{Id: r.GetId(), Pod: "web-1", Container: "web", LogData: []byte("a\n")})
	a.Deliver(&apiv1alpha1.LiveResponse{Id: r.GetId(), Done: true, LogData: []byte("b\n")})
	if err := wait(t, done); err != nil {
		t.Fatalf("Logs = %v", err)
	}
	if d := cmp.Diff([]string{"web-1|a\n", "|b\n"}, got); d != "" {
		t.Errorf("frames written (-want +got):\n%s", d)
	}

	done = logsAsync(t.Context(), b, "eu", nil)
	r = a.next(t)
	a.Deliver(&apiv1alpha1.LiveResponse{Id: r.GetId(), Done: true, Code: apiv1alpha1.LiveResponse_CODE_NOT_FOUND, Message: "pod web-9 not found"})
	if err := wait(t, done); err == nil || err.Error() != "cluster eu: pod web-9 not found" {
		t.Fatalf("Logs of a missing pod = %v", err)
	}

	gone := errors.New("client went away")
	done = logsAsync(t.Context(), b, "eu", func(*apiv1alpha1.LiveResponse) error { return gone })
	r = a.next(t)
	a.Deliver(&apiv1alpha1.LiveResponse{Id: r.GetId(), LogData: []byte("a\n")})
	if err := wait(t, done); !errors.Is(err, gone) {
		t.Fatalf("Logs with a failing writer = %v", err)
	}
	if c := a.next(t); c.GetKind() != apiv1alpha1.LiveRequest_KIND_CANCEL || c.GetId() != r.GetId() {
		t.Fatalf("after the writer failed the agent got %v, want CANCEL", c)
	}
}
