package agentapi_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/flotilla-cd/flotilla/hub/internal/agentapi"
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/manifest"
)

func TestCommandsReachTheAgentInOrder(t *testing.T) {
	results := make(chan *apiv1alpha1.CommandResult, 1)
	h := startHubWith(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock(), agentapi.Options{Hooks: agentapi.Hooks{
		CommandResult: func(cluster string, r *apiv1alpha1.CommandResult) {
			if cluster == "a" {
				results <- r
			}
		},
	}})
	a := h.enroll("a")
	if err := h.fleet.SendCommand("a", &apiv1alpha1.Command{Id: "early"}); err != fleet.ErrNotConnected {
		t.Fatalf("command before the agent connected: %v; want %v", err, fleet.ErrNotConnected)
	}
	s, err := a.connect(t.Context(), h.addr, hello(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	// The session is attached just after the Welcome.
	waitFor(t, "the session", func() bool { ok, _ := h.fleet.Connected("a"); return ok })

	want := []*apiv1alpha1.Command{
		{Id: "1", Type: apiv1alpha1.Command_TYPE_SYNC, App: "web"},
		{Id: "2", Type: apiv1alpha1.Command_TYPE_REFRESH, App: "web"},
		{Id: "3", Type: apiv1alpha1.Command_TYPE_SYNC, App: "db", Prune: true},
	}
	for _, c := range want {
		if err := h.fleet.SendCommand("a", c); err != nil {
			t.Fatalf("send command %s: %v", c.GetId(), err)
		}
	}
	var got []*apiv1alpha1.Command
	for len(got) < len(want) {
		if c := s.next(t).GetCommand(); c != nil {
			got = append(got, c)
		}
	}
	if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
		t.Fatalf("commands (-sent +received):\n%s", d)
	}

	res := &apiv1alpha1.CommandResult{Id: "1", App: "web", Message: "synced"}
	if err := s.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_CommandResult{CommandResult: res}}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-results:
		if d := cmp.Diff(res, r, protocmp.Transform()); d != "" {
			t.Fatalf("command result (-sent +received):\n%s", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no command result within 20s")
	}
}

func TestStreamWithoutHelloIsEnded(t *testing.T) {
	h := startHubWith(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock(), agentapi.Options{HelloTimeout: 200 * time.Millisecond})
	a := h.enroll("a")
	cs := rawConnect(t, a, h.addr)
	start := time.Now()
	_, err := cs.Recv()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("stream without a Hello ended with %v; want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("ended after %s", d)
	}
	waitHandlers(t, 0)
}

// TestSilentAgentDoesNotHoldTheHub: an agent that stops reading while the
// hub sends it bundles leaves a send waiting for flow control; when the
// stream ends (the hub ends the session, or the agent hangs up its side),
// the stream's handler and sender still return, and the agent, once it
// reads again, gets the stream's status.
func TestSilentAgentDoesNotHoldTheHub(t *testing.T) {
	for _, tt := range []struct {
		name string
		end  func(h *hub, cs apiv1alpha1.AgentService_ConnectClient) error
		want codes.Code
	}{
		{name: "session ended by the hub", want: codes.PermissionDenied, end: func(h *hub, _ apiv1alpha1.AgentService_ConnectClient) error {
			h.fleet.Close("a", fleet.ErrSuperseded)
			return nil
		}},
		{name: "agent hangs up", want: codes.OK, end: func(_ *hub, cs apiv1alpha1.AgentService_ConnectClient) error {
			return cs.CloseSend()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testSilentAgent(t, tt.end, tt.want)
		})
	}
}

func testSilentAgent(t *testing.T, end func(*hub, apiv1alpha1.AgentService_ConnectClient) error, want codes.Code) {
	sent := make(chan struct{}, 2)
	h := startHubWith(t, filepath.Join(t.TempDir(), "hub.db"), "127.0.0.1:0", newClock(), agentapi.Options{Hooks: agentapi.Hooks{
		Sent: func(string, *apiv1alpha1.DesiredState) { sent <- struct{}{} },
	}})
	a := h.enroll("a")
	cs := rawConnect(t, a, h.addr, grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err := cs.Send(&apiv1alpha1.AgentMessage{Msg: &apiv1alpha1.AgentMessage_Hello{Hello: hello(nil)}}); err != nil {
		t.Fatal(err)
	}
	if m, err := cs.Recv(); err != nil || m.GetWelcome() == nil {
		t.Fatalf("first message %v, %v; want a Welcome", m, err)
	}
	waitFor(t, "the session", func() bool { ok, _ := h.fleet.Connected("a"); return ok })

	// A send returns once gRPC has queued the message within the
	// stream's 64 KiB write quota: the first bundle (over 1 MiB that gzip
	// cannot shrink) is queued, and the send of the next one waits until
	// the agent reads.
	bundle := func(rev string) *apiv1alpha1.Bundle {
		objs := configMaps("big", 2, func(int) string {
			b := make([]byte, 768<<10)
			rand.Read(b)
			return base64.StdEncoding.EncodeToString(b)
		})
		b, err := manifest.NewBundle("big", "ns", rev, "apps/big", objs, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	h.fleet.SetAll(map[string]fleet.Desired{"a": {"big": bundle("r1")}})
	select {
	case <-sent:
	case <-time.After(20 * time.Second):
		t.Fatal("first bundle not sent within 20s")
	}
	h.fleet.SetAll(map[string]fleet.Desired{"a": {"big": bundle("r2")}})
	waitFor(t, "the hub's second send to wait for the agent", func() bool {
		return goroutines("agentapi.(*outbox).run(", "writeQuota).get(") == 1
	})

	if err := end(h, cs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the handler and the sender to return", func() bool {
		return goroutines("agentapi.(*Server).Connect(") == 0 && goroutines("agentapi.(*outbox).run(") == 0
	})
	for {
		_, err := cs.Recv()
		if err != nil {
			if got := status.Code(err); got != want && !(want == codes.OK && err == io.EOF) {
				t.Fatalf("stream ended with %v; want %v", err, want)
			}
			break
		}
	}
	if len(sent) != 0 {
		t.Fatal("the second bundle was reported sent")
	}
}

// rawConnect opens a Connect stream as a's agent and sends nothing.
func rawConnect(t *testing.T, a *agent, addr string, opts ...grpc.DialOption) apiv1alpha1.AgentService_ConnectClient {
	t.Helper()
	cfg, err := a.tlsConfig()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(agentapi.MaxMessageBytes)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs, err := apiv1alpha1.NewAgentServiceClient(conn).Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// goroutines counts the goroutines of this process (the hub runs in it)
// whose stack holds every one of fns.
func goroutines(fns ...string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		all := true
		for _, fn := range fns {
			all = all && bytes.Contains(g, []byte(fn))
		}
		if all {
			count++
		}
	}
	return count
}

// waitHandlers waits until n Connect handlers run.
func waitHandlers(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d Connect handlers", n), func() bool { return goroutines("agentapi.(*Server).Connect(") == n })
}

// waitFor polls cond until it holds, failing the test after 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
