package agentapi

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
)

// Caps on one status report. Texts over their cap are cut (the report stays
// useful); a report with too many objects or too large after cutting is
// refused.
const (
	// MaxStatusObjects bounds the objects of one app's status.
	MaxStatusObjects = 10000
	// MaxStatusBytes bounds one status, encoded, after texts are cut.
	MaxStatusBytes = 16 << 20
	// maxMessageBytes bounds the message of an app, object or operation.
	maxMessageBytes = 8 << 10
	// maxDiffBytes bounds an object's diff.
	maxDiffBytes = 256 << 10
	// maxNameBytes bounds names: an app (a Kubernetes object name) and an
	// object's group, version, kind, namespace and name.
	maxNameBytes = 253
)

var errStatusRefused = errors.New("status refused")

// checkStatus cuts st's texts to their caps and refuses a status over the
// other caps.
func checkStatus(st *apiv1alpha1.AppStatus) error {
	if n := len(st.GetApp()); n == 0 || n > maxNameBytes {
		return fmt.Errorf("%w: app name of %d bytes", errStatusRefused, n)
	}
	if n := len(st.GetObjects()); n > MaxStatusObjects {
		return fmt.Errorf("%w: app %s: %d objects, at most %d", errStatusRefused, st.GetApp(), n, MaxStatusObjects)
	}
	st.Message = cut(st.GetMessage(), maxMessageBytes)
	if op := st.GetLastOperation(); op != nil {
		op.Message = cut(op.GetMessage(), maxMessageBytes)
		op.InitiatedBy = cut(op.GetInitiatedBy(), maxNameBytes)
		if n := len(op.GetHooks()); n > MaxStatusObjects {
			return fmt.Errorf("%w: app %s: %d hook results, at most %d", errStatusRefused, st.GetApp(), n, MaxStatusObjects)
		}
		for _, h := range op.GetHooks() {
			if len(h.GetPhase()) > maxNameBytes || len(h.GetGroup()) > maxNameBytes || len(h.GetKind()) > maxNameBytes ||
				len(h.GetNamespace()) > maxNameBytes || len(h.GetName()) > maxNameBytes || len(h.GetHook()) > maxNameBytes {
				return fmt.Errorf("%w: app %s: a hook name over %d bytes", errStatusRefused, st.GetApp(), maxNameBytes)
			}
			h.Message = cut(h.GetMessage(), maxMessageBytes)
		}
	}
	for _, o := range st.GetObjects() {
		if len(o.GetGroup()) > maxNameBytes || len(o.GetVersion()) > maxNameBytes || len(o.GetKind()) > maxNameBytes ||
			len(o.GetNamespace()) > maxNameBytes || len(o.GetName()) > maxNameBytes {
			return fmt.Errorf("%w: app %s: an object name over %d bytes", errStatusRefused, st.GetApp(), maxNameBytes)
		}
		o.Message = cut(o.GetMessage(), maxMessageBytes)
		o.Diff = cut(o.GetDiff(), maxDiffBytes)
	}
	if n := proto.Size(st); n > MaxStatusBytes {
		return fmt.Errorf("%w: app %s: %d bytes, at most %d", errStatusRefused, st.GetApp(), n, MaxStatusBytes)
	}
	return nil
}

const cutMark = "\n… (cut by the hub)"

// cut returns s cut to at most max bytes, on a rune boundary, marked.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max - len(cutMark)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + cutMark
}
