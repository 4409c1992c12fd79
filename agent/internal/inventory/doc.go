// Package inventory persists, in the agent's own namespace, what the agent
// must remember across restarts: per application the last accepted bundle
// and the inventory of objects it may have created. This is what lets an
// agent restarted while the hub is down keep enforcing its bundles, and
// prune or delete after a restart.
//
// Each app has one index Secret (metadata and the gzip-compressed
// inventory). A small serialised bundle (at most InlineBytes) is kept in the
// index Secret too, so that a new app's bundle and inventory take one write.
// A larger one is held in chunk Secrets, split into parts of at most
// ChunkBytes so that bundles of any size fit under the API server's object
// size limit. Chunks are named by the bundle digest and written before the
// index that points at them, so a crash never leaves an index pointing at a
// half-written bundle. Indexes written before bundles went inline (always
// chunks) are read as they are.
package inventory
