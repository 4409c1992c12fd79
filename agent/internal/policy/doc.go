// Package policy is the agent's cluster-side policy: limits set by the
// cluster's owner — the namespaces objects may be in, the kinds that may
// or may not be applied, whether cluster-scoped objects may be created —
// that no bundle can exceed, whatever the hub sends. It owns parsing the
// policy from flags and from a ConfigMap in the agent's namespace, and
// watching that ConfigMap so that a change takes effect without restart.
package policy
