// Package gitsource keeps one local bare mirror per config repository and
// tells the hub when a ref moves.
//
// Polling lists the remote's refs (cheap) and fetches only when one moved; a
// webhook calls Refresh for an immediate check. Commits are materialized into
// read-only checkout folders for rendering, one per commit, kept while they
// are in use by the newest revisions. A checkout holds only what is inside
// the repository: symbolic links are written only when they lead, from where
// they sit, to a file or folder of the tree without passing through another
// link; the others are left out and listed in LeftOutFile. Files are written
// within size limits (CheckoutLimits), checked before a blob is read.
package gitsource
