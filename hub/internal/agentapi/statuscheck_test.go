package agentapi

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

func TestCheckStatus(t *testing.T) {
	objects := func(n int, o *apiv1alpha1.ObjectStatus) []*apiv1alpha1.ObjectStatus {
		out := make([]*apiv1alpha1.ObjectStatus, n)
		for i := range out {
			out[i] = proto.Clone(o).(*apiv1alpha1.ObjectStatus)
		}
		return out
	}
	tests := []struct {
		name    string
		st      *apiv1alpha1.AppStatus
		refused bool
	}{
		{name: "ordinary", st: &apiv1alpha1.AppStatus{App: "web", Objects: objects(3, &apiv1alpha1.ObjectStatus{Kind: "ConfigMap", Name: "cm"})}},
		{name: "no app", st: &apiv1alpha1.AppStatus{}, refused: true},
		{name: "app name too long", st: &apiv1alpha1.AppStatus{App: strings.Repeat("a", 254)}, refused: true},
		{name: "too many objects", st: &apiv1alpha1.AppStatus{App: "web", Objects: objects(MaxStatusObjects+1, &apiv1alpha1.ObjectStatus{Kind: "ConfigMap"})}, refused: true},
		{name: "object name too long", st: &apiv1alpha1.AppStatus{App: "web", Objects: objects(1, &apiv1alpha1.ObjectStatus{Name: strings.Repeat("n", 300)})}, refused: true},
		{name: "long texts are cut", st: &apiv1alpha1.AppStatus{App: "web", Message: strings.Repeat("é", maxMessageBytes),
			LastOperation: &apiv1alpha1.Operation{Message: strings.Repeat("m", 1<<20)},
			Objects:       objects(2, &apiv1alpha1.ObjectStatus{Message: strings.Repeat("m", 1<<20), Diff: strings.Repeat("d", 1<<20)})}},
		{name: "hook message is cut", st: &apiv1alpha1.AppStatus{App: "web",
			LastOperation: &apiv1alpha1.Operation{Hooks: []*apiv1alpha1.HookResult{{Phase: "PreSync", Kind: "Job", Hook: "m-", Message: strings.Repeat("m", 1<<20)}}}}},
		{name: "hook name too long", st: &apiv1alpha1.AppStatus{App: "web",
			LastOperation: &apiv1alpha1.Operation{Hooks: []*apiv1alpha1.HookResult{{Phase: "PreSync", Kind: "Job", Name: strings.Repeat("n", 300)}}}}, refused: true},
		{name: "too large after cutting", st: &apiv1alpha1.AppStatus{App: "web", Objects: objects(100, &apiv1alpha1.ObjectStatus{Diff: strings.Repeat("d", 1<<20)})}, refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkStatus(tt.st)
			if tt.refused {
				if !errors.Is(err, errStatusRefused) {
					t.Fatalf("checkStatus = %v; want refused", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			texts := []string{tt.st.GetMessage(), tt.st.GetLastOperation().GetMessage()}
			for _, h := range tt.st.GetLastOperation().GetHooks() {
				texts = append(texts, h.GetMessage())
			}
			for _, o := range tt.st.GetObjects() {
				texts = append(texts, o.GetMessage())
				if len(o.GetDiff()) > maxDiffBytes {
					t.Errorf("diff of %d bytes kept", len(o.GetDiff()))
				}
			}
			for _, s := range texts {
				if len(s) > maxMessageBytes || !utf8.ValidString(s) {
					t.Errorf("message of %d bytes kept (valid UTF-8: %t)", len(s), utf8.ValidString(s))
				}
			}
		})
	}
}
