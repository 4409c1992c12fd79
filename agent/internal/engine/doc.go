// Package engine is the agent's GitOps loop: it holds the accepted bundle of
// every application, persists it (package inventory), applies it in waves
// with server-side apply (package apply), prunes what left the bundle,
// watches the managed objects (package live) to detect drift (package diff)
// and self-heal, computes health (package health), and reports a compact
// status per application.
//
// Each application has one worker goroutine; all cluster writes for an app
// happen on it, so syncs, self-heals and deletion of the same app never
// race. The engine needs no hub: after Load it enforces what was persisted.
//
// The package is an apply manager around a pure decision core, one file per
// verb: operation.go runs a sync operation (phases, waves, hooks, retry);
// applyset.go applies a wave's objects and prune.go deletes left-overs, both
// recording a typed ChangeSet (created, configured, replaced, unchanged,
// pruned) that the operation's result sums up; wait.go waits for health and
// CRDs; diff.go looks at live objects after watch events; heal.go writes
// self-heals. What each look, dry-run comparison, self-heal and failed sync
// means is decided in decide.go by pure functions of the object's memory,
// the observation and the time, read from an injected clock, and tested as
// tables without an API server.
//
// Decisions where Argo CD or Flux leave room:
//
//   - Ownership is the tracking annotation flotilla.dev/tracking-id. Every
//     applied object also gets the label flotilla.dev/managed=true, which
//     only narrows the watches; it never decides ownership. An object that
//     another app held by this agent owns is refused (ErrOwnedByOtherApp);
//     objects of apps the agent no longer holds may be adopted.
//   - An app removed by the hub: with prune on, every object it owns is
//     deleted (namespaced objects first, Namespaces last, except objects
//     with Prune=false); with prune off the objects stay exactly as they
//     are, tracking annotation included, as after Argo CD's non-cascading
//     delete. Its persisted record is deleted either way.
//   - Prune: a left-over object is deleted after the apply of its own sync
//     wave (the wave annotation of the live object), or after all waves with
//     PruneLast (app option or per object). With prune off, or Prune=false
//     on the object, it stays and the app is OutOfSync, as in Argo CD.
//   - A sync is atomic against refusals by the API server, as in Argo CD:
//     it first server-side dry-runs every object of the bundle (in
//     parallel) and writes nothing when one is refused, with an error
//     naming each refused object. Custom resources of a CRD in the same
//     bundle and objects in a namespace the sync creates cannot be dry-run
//     before then; they are dry-run with the rest of their step, before the
//     step writes, except one that does not exist yet (the step's probe):
//     it is applied first and alone once the others passed, so its apply is
//     its own dry-run and nothing else of the step is written when it is
//     refused. The dry-run is the one an update needs anyway (its
//     result is compared with the live object), so an unchanged bundle
//     costs at most one dry-run per object and no write, a new object one
//     dry-run and one apply (the probe: the apply only). Until a bundle has
//     passed its dry-run, drift is reported but not healed object by object.
//   - Drift is decided against the result of a server-side dry-run apply, so
//     server defaults never count. ignoreDifferences (JSON pointers and
//     field managers) is also respected when applying to an existing object
//     (Argo CD's RespectIgnoreDifferences=true is always on): an HPA's
//     replicas are neither reported nor overwritten.
//   - Self-heal re-applies at once. An object changed back more than five
//     times in a row within a second of each heal (another controller
//     fighting) is healed with a doubling delay from 250 ms up to 10 s.
//   - Failed syncs retry with the app's retry policy; without one they retry
//     forever from 5 s, doubling up to 3 min, so an agent converges on its
//     own after transient failures.
//   - A change to an immutable field fails with an error naming the object
//     and field; with Replace=true or Force=true (app or object option) the
//     object is deleted and re-created.
//   - CreateNamespace=true creates the destination namespace without a
//     tracking id, so the app never prunes it (as Argo CD).
//   - Hooks (argocd.argoproj.io/hook, and helm.sh/hook mapped as Argo CD
//     maps it) are not kept in sync: they carry no tracking annotation, are
//     not in the inventory, never drift, are never pruned as left-overs and
//     never make the app OutOfSync. A sync operation runs them (PreSync,
//     then the Sync phase's waves with Sync hooks, then PostSync once every
//     object is Healthy; SyncFail when it fails) when it is manual or its
//     bundle's hooks have not yet succeeded: the digest whose hooks
//     succeeded is persisted, so a retry of a failed operation runs them
//     again but a restart, a resync of the same bundle or a self-heal
//     never does. Hooks are found again by a label holding a hash of their
//     identity (app, kind, namespace, name or generateName), which is how
//     BeforeHookCreation deletes earlier instances and an app removed with
//     prune deletes the last ones.
//   - An agent limited to namespaces (Options.Namespaces, for RBAC that
//     covers only those) watches per namespace and refuses, before writing
//     anything, a bundle with a cluster-scoped object or an object in
//     another namespace, naming it (ErrNotPermitted); CreateNamespace=true
//     creates nothing there, the namespaces exist as their RBAC does.
package engine
