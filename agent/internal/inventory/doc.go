// Package inventory persists, in the agent's own namespace, what the agent
// must remember across restarts: per application the last accepted bundle
// and the inventory of objects it may have created. This is what lets an
// agent restarted while the hub is down keep enforcing its bundles, and
// prune or delete after a restart.
//
// Each app has one index Secret (metadata and the gzip-compressed
// inventory) and one or more chunk Secrets holding the serialised bundle,
// split into parts of at most ChunkBytes so that bundles of any size fit
// under the API server's object size limit. Chunks are named by the bundle
// digest and written before the index that points at them, so a crash
// never leaves an index pointing at a half-written bundle.
package inventory
