// Package gitsource keeps one local bare mirror per config repository and
// tells the hub when a ref moves.
//
// Polling lists the remote's refs (cheap) and fetches only when one moved; a
// webhook calls Refresh for an immediate check. Commits are materialized into
// read-only checkout folders for rendering, one per commit, kept while they
// are in use by the newest revisions.
package gitsource
