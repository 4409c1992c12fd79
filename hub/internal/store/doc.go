// Package store is the hub's durable state: clusters and their enrolled
// identities, hashed join tokens, hashed API tokens, the hub CA, the latest
// status of every (app, cluster), sync history and the audit log.
//
// Store is the interface the hub programs against. Bolt is the embedded
// default: one go.etcd.io/bbolt file in the hub's state dir, held by one hub
// process at a time (Open fails after Options.LockTimeout when another
// process holds it). Kube is the Store on the Kubernetes API (custom
// resources of hub.flotilla.dev and Secrets in one namespace), which
// several hubs share; its objects, concurrency and size rules are in
// docs/decisions.md. Migrate copies one store into another.
//
// # Durability
//
// Every method that returns nil has committed its change and bbolt has
// fsynced it: nothing acknowledged is lost when the hub is killed (kill -9)
// or the machine stops. TestDurabilityKill9 kills a writer process in the
// middle of its stream and finds every acknowledged write after reopening.
// PutStatus, DeleteStatus and AppendHistory use bbolt's Batch: concurrent
// callers share one transaction and one fsync, at the price of waiting up to
// Options.MaxBatchDelay (10 ms by default) for company.
//
// # Secrets
//
// Join and API tokens are 32 random bytes; only their SHA-256 is stored, and
// a presented token is checked by hashing it and comparing hashes with
// crypto/subtle. API tokens read "flt_<id>_<secret>" so the record is found
// by its ID, never by the secret. A join token is single use, expires, is
// bound to its cluster, and a new one supersedes the cluster's earlier one.
// The CA key is stored as given (PEM); protect the state dir (0700) and the
// backups accordingly.
//
// # Layout
//
// Buckets: clusters (name → JSON), join_tokens (cluster → JSON), api_tokens
// (id → JSON), ca, status ("cluster\x00app" → deterministic protobuf
// AppStatus, so one cluster is one key range), history (big-endian id →
// JSON) with key-only indexes by app, by cluster and by (app, cluster), and
// audit (big-endian id → JSON). Names may not be empty or contain NUL. The
// meta bucket records the layout version; a hub refuses a newer one.
//
// History keeps Options.HistoryLimit entries per (app, cluster) (default
// DefaultHistoryLimit); the audit log is never trimmed. Lists page with
// opaque cursors (Page.After): clusters and API tokens in name/ID order,
// history and audit newest first.
//
// # Backup and restore
//
// Backup writes a consistent snapshot of the whole file while the hub keeps
// serving (one read transaction, tx.WriteTo). The snapshot is a store file
// itself. To restore, stop the hub, copy the snapshot to the store path in
// the state dir (replacing hub.db), and start the hub: it opens the snapshot
// as its state, with the CA, clusters and tokens of the backup, so enrolled
// agents keep working. Statuses in the snapshot are stale until agents
// report again, which they do on reconnect.
//
// # Cost
//
// An AppStatus of ten objects encodes to 660 bytes. BenchmarkPutStatus on
// the 2-core development machine (ext4 on virtio disk, 10,000 clusters, a
// changed status per write, other builds running, load average ~9):
//
//	writers   writes/s      ns/op   allocs/op
//	      2        122    8.2 ms         94   (one writer waits for the batch delay)
//	     16        890    1.1 ms         72
//	    256      9,600    104 µs         64
//	   1024  12,800–25,000  40–78 µs     63
//
// so 10,000 agents reporting at once are written in about half a second to a
// second. The time goes to page writes and fdatasync, not CPU. Loading every
// status of 10,000 clusters (BenchmarkListStatus) takes 63–140 ms.
package store
