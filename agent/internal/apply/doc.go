// Package apply owns the write path to the cluster: the apply plan (waves and
// the Namespace → CRD → cluster-scoped → namespaced order within a wave),
// sync options, and the Applier that server-side applies, replaces and
// deletes objects through the dynamic client and a discovery-backed
// RESTMapper that refreshes itself when new kinds appear.
//
// Plan and the option parsers are pure; the Applier does the I/O.
package apply
