package agentapi_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flotilla-cd/flotilla/hub/internal/agentapi"
	"github.com/flotilla-cd/flotilla/hub/internal/liveview"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/version"
)

// liveRequest returns the next LiveRequest the hub sends, skipping other
// messages.
func (s *stream) liveRequest(t *testing.T) *apiv1alpha1.LiveRequest {
	t.Helper()
	for {
		if lr := s.next(t).GetLive(); lr != nil {
			return lr
		}
	}
}

func (s *stream) answer(t *testing.T, r *apiv1alpha1.LiveResponse) {
	t.Helper()
	if err := s.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Live{Live: r}}); err != nil {
		t.Fatal(err)
	}
}

// TestLiveViewVersionSkew: an agent whose Hello does not list live-view
// (an older one) gets no LiveRequest, and the person asking is told at
// once that it does not support live view; an agent listing it gets the
// request over its stream and its answer, correlated by id, comes back.
func TestLiveViewVersionSkew(t *testing.T) {
	broker := liveview.New(liveview.Limits{})
	h := startHubWith(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock(), agentapi.Options{Live: broker})
	ctx := t.Context()

	old := hello(nil)
	old.Capabilities = slices.DeleteFunc(slices.Clone(version.Capabilities), func(c string) bool { return c == version.CapLiveView })
	so, err := h.enroll("old").connect(ctx, h.addr, old)
	if err != nil {
		t.Fatal(err)
	}
	defer so.close()
	if _, err := broker.Do(ctx, "old", &apiv1alpha1.LiveRequest{Kind: apiv1alpha1.LiveRequest_KIND_TREE, App: "x"}); !errors.Is(err, liveview.ErrUnsupported) || err.Error() != "cluster old: agent does not support live view (it is older than the hub; upgrade it)" {
		t.Fatalf("Do on an old agent = %v, want ErrUnsupported", err)
	}

	sn, err := h.enroll("new").connect(ctx, h.addr, hello(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer sn.close()
	type result struct {
		r   *apiv1alpha1.LiveResponse
		err error
	}
	got := make(chan result, 1)
	go func() {
		r, err := broker.Do(ctx, "new", &apiv1alpha1.LiveRequest{Kind: apiv1alpha1.LiveRequest_KIND_TREE, App: "shop"})
		got <- result{r, err}
	}()
	req := sn.liveRequest(t)
	if req.GetKind() != apiv1alpha1.LiveRequest_KIND_TREE || req.GetApp() != "shop" || req.GetId() == "" || req.GetTimeoutMs() <= 0 {
		t.Fatalf("request %v: want a TREE of shop with an id and a deadline", req)
	}
	// A frame of another id is not this request's answer.
	sn.answer(t, &apiv1alpha1.LiveResponse{Id: req.GetId() + "x", Done: true, Code: apiv1alpha1.LiveResponse_CODE_FAILED})
	sn.answer(t, &apiv1alpha1.LiveResponse{Id: req.GetId(), Done: true, Nodes: []*apiv1alpha1.LiveNode{{Ref: &apiv1alpha1.ObjectRef{Kind: "ConfigMap", Name: "a"}, InApp: true}}})
	res := <-got
	if res.err != nil || len(res.r.GetNodes()) != 1 || res.r.GetNodes()[0].GetRef().GetName() != "a" {
		t.Fatalf("Do = %v, %v; want the agent's one node", res.r, res.err)
	}

	// An agent's refusal keeps its code.
	go func() {
		_, err := broker.Do(ctx, "new", &apiv1alpha1.LiveRequest{Kind: apiv1alpha1.LiveRequest_KIND_ACTION, App: "shop", Action: "restart"})
		got <- result{nil, err}
	}()
	req = sn.liveRequest(t)
	sn.answer(t, &apiv1alpha1.LiveResponse{Id: req.GetId(), Done: true, Code: apiv1alpha1.LiveResponse_CODE_NOT_OWNED, Message: "not the app's"})
	var ae *liveview.AgentError
	if res := <-got; !errors.As(res.err, &ae) || ae.Code != apiv1alpha1.LiveResponse_CODE_NOT_OWNED {
		t.Fatalf("Do = %v, want the agent's NOT_OWNED", res.err)
	}
}

// TestLiveLogCredit: a log stream starts with the hub's window of credit,
// the hub grants more as it hands frames on, and an agent that sends more
// than its credit loses the stream (the hub cancels it) instead of making
// the hub buffer without bound.
func TestLiveLogCredit(t *testing.T) {
	const window = 4096
	broker := liveview.New(liveview.Limits{Window: window})
	h := startHubWith(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock(), agentapi.Options{Live: broker})
	ctx := t.Context()
	s, err := h.enroll("a").connect(ctx, h.addr, hello(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()

	var got bytes.Buffer
	done := make(chan error, 1)
	// After the first two frames the person stops reading (the writer
	// blocks) until release is closed.
	release := make(chan struct{})
	frames := 0
	go func() {
		done <- broker.Logs(ctx, "a", &apiv1alpha1.LiveRequest{App: "shop", Object: &apiv1alpha1.ObjectRef{Kind: "Pod", Name: "p"}, Logs: &apiv1alpha1.LogOptions{Follow: true}}, func(f *apiv1alpha1.LiveResponse) error {
			got.Write(f.GetLogData())
			if frames++; frames > 2 {
				<-release
			}
			return nil
		})
	}()
	req := s.liveRequest(t)
	if req.GetKind() != apiv1alpha1.LiveRequest_KIND_LOGS || req.GetCreditBytes() != window {
		t.Fatalf("request %v: want LOGS with a window of %d", req, window)
	}
	// Within the credit: half a window handed on earns a CREDIT.
	half := bytes.Repeat([]byte("x"), window/2)
	s.answer(t, &apiv1alpha1.LiveResponse{Id: req.GetId(), LogData: half, Pod: "p", Container: "c"})
	s.answer(t, &apiv1alpha1.LiveResponse{Id: req.GetId(), LogData: half})
	credit := s.liveRequest(t)
	if credit.GetKind() != apiv1alpha1.LiveRequest_KIND_CREDIT || credit.GetId() != req.GetId() || credit.GetCreditBytes() < window/2 {
		t.Fatalf("after half a window: %v, want a CREDIT of at least %d", credit, window/2)
	}
	// Beyond it, while the person does not read: frames of the minimum
	// cost, more than a window allows. The hub cancels the stream on the
	// agent; the stream's reader never waited.
	for range window/liveview.MinFrameCost + 3 {
		s.answer(t, &apiv1alpha1.LiveResponse{Id: req.GetId(), LogData: []byte("y\n")})
	}
	c := s.liveRequest(t)
	for c.GetKind() == apiv1alpha1.LiveRequest_KIND_CREDIT { // for frames taken before the person stopped
		c = s.liveRequest(t)
	}
	if c.GetKind() != apiv1alpha1.LiveRequest_KIND_CANCEL || c.GetId() != req.GetId() {
		t.Fatalf("after an overrun: %v, want CANCEL of %s", c, req.GetId())
	}
	close(release)
	if err := <-done; !errors.Is(err, liveview.ErrOverrun) {
		t.Fatalf("Logs = %v, want ErrOverrun", err)
	}
	if !bytes.HasPrefix(got.Bytes(), append(half, half...)) {
		t.Fatalf("log %q: want the two half-window frames first", got.String())
	}
}
