// Package controller computes the desired state of every cluster: it loads
// the Application definitions, resolves their git revisions, selects the
// clusters each app targets, renders each unique input once and builds one
// bundle per (app, cluster), which it hands to the fleet.
//
// A failure (unreachable repo, render error, conflicting apps) becomes a
// condition on the affected (app, cluster) and that cluster keeps its last
// good bundle: nothing is removed because something broke.
package controller
