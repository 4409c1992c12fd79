package logbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/grpclog"
	"k8s.io/klog/v2"
)

// TestInstall: client-go's and gRPC's lines come out of the hclog logger,
// as JSON when it writes JSON, at the mapped levels; detail below the
// logger's level is dropped.
func TestInstall(t *testing.T) {
	var buf bytes.Buffer
	Install(hclog.New(&hclog.LoggerOptions{Name: "agent", Level: hclog.Info, JSONFormat: true, Output: &buf}))
	klog.InfoS("watch started", "resource", "configmaps")
	klog.ErrorS(errors.New("connection refused"), "list failed", "resource", "pods")
	klog.V(4).InfoS("detail that info level drops")
	grpclog.Warningf("transport: %s", "closing")
	grpclog.Info("connectivity change") // debug: dropped at info
	klog.Flush()

	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		got = append(got, m)
	}
	want := []struct{ module, level, msg string }{
		{"agent.client-go", "info", "watch started"},
		{"agent.client-go", "error", "list failed"},
		{"agent.grpc", "warn", "transport: closing"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), buf.String())
	}
	for i, w := range want {
		if got[i]["@module"] != w.module || got[i]["@level"] != w.level || got[i]["@message"] != w.msg {
			t.Errorf("line %d = %v, want module %s level %s message %q", i, got[i], w.module, w.level, w.msg)
		}
	}
	if got[0]["resource"] != "configmaps" || got[1]["error"] != "connection refused" {
		t.Errorf("key/values lost: %v / %v", got[0], got[1])
	}
}
