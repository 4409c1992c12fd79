package diff

import "reflect"

// lastApplied is kubectl's copy of the object it applied, values included.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// maskSecrets replaces the values of a Secret's data and stringData (and
// kubectl's last-applied copy of it) in live and desired, so that no value
// of a Secret ever leaves the cluster in a diff, as Argo CD masks them.
// Keys stay visible. A value equal on both sides gets the same mask; a
// value that differs gets a mask of another length on each side, so a diff
// still shows that the key changed, never to or from what. Objects other
// than core v1 Secrets are left as they are. Both maps are modified.
func maskSecrets(live, desired map[string]any) {
	if !isSecret(live) && !isSecret(desired) {
		return
	}
	const same, other = "++++++++", "+++++++++"
	for _, field := range []string{"data", "stringData"} {
		lm, _ := nested(live, field)
		dm, _ := nested(desired, field)
		for k, lv := range lm {
			lm[k] = same
			if dv, ok := dm[k]; ok {
				if reflect.DeepEqual(lv, dv) {
					dm[k] = same
				} else {
					dm[k] = other
				}
			}
		}
		for k := range dm {
			if _, ok := lm[k]; !ok {
				dm[k] = same
			}
		}
	}
	for _, m := range []map[string]any{live, desired} {
		if ann, ok := nested(m, "metadata", "annotations"); ok {
			if _, has := ann[lastApplied]; has {
				ann[lastApplied] = same + " (masked: it holds the Secret's values)"
			}
		}
	}
}

func isSecret(m map[string]any) bool {
	return m != nil && m["kind"] == "Secret" && m["apiVersion"] == "v1"
}

func nested(m map[string]any, path ...string) (map[string]any, bool) {
	cur := m
	for _, p := range path {
		if cur == nil {
			return nil, false
		}
		next, ok := cur[p].(map[string]any)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}
