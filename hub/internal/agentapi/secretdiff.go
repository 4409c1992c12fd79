package agentapi

import (
	"slices"
	"strings"

	apiv1alpha1 "github.com/flotilla-cd/flotilla/shared/api/v1alpha1"
	"github.com/flotilla-cd/flotilla/shared/version"
)

// masksSecrets reports whether the agent said it masks Secret values.
func masksSecrets(h *apiv1alpha1.Hello) bool {
	return slices.Contains(h.GetCapabilities(), version.CapSecretMask)
}

// withheldDiff replaces the diff of a Secret from an agent that does not
// mask Secret values (version.CapSecretMask): the hub relays no diff that
// may hold them, whatever the agent's version.
const withheldDiff = "(diff of a Secret withheld by the hub: this agent does not mask Secret values; upgrade it)\n"

// withholdSecretDiffs drops the diffs of core Secrets from st.
func withholdSecretDiffs(st *apiv1alpha1.AppStatus) {
	for _, o := range st.GetObjects() {
		if o.GetGroup() == "" && o.GetKind() == "Secret" && o.GetDiff() != "" {
			o.Diff = withheldDiff
		}
	}
}

// withholdSecretSections drops, from a DIFF result (one unified diff per
// object, each opened by "--- live <group>/<Kind> <namespace>/<name>"), the
// sections of core Secrets.
func withholdSecretSections(d string) string {
	if !strings.Contains(d, "/Secret ") {
		return d
	}
	var b strings.Builder
	skip := false
	for line := range strings.SplitAfterSeq(d, "\n") {
		if strings.HasPrefix(line, "--- live ") {
			name := strings.TrimSpace(strings.TrimPrefix(line, "--- live "))
			skip = strings.HasPrefix(name, "/Secret ")
			if skip {
				b.WriteString("--- live " + name + "\n" + withheldDiff)
				continue
			}
		}
		if !skip {
			b.WriteString(line)
		}
	}
	return b.String()
}
