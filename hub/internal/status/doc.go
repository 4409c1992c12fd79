// Package status is the hub's one model of where applications stand and
// what is done to them: the Synced rule and the aggregation of an app's
// clusters (health ranked by shared/health, the order the agent ranks an
// app's objects by), the sync history recorded from agents' finished
// operations, commands sent to agents and the correlation of their results,
// and rollback (pin, wait for the pinned bundle, sync once) and unpin.
//
// The HTTP API, the metrics and the CLI's tests read views from here and
// decide nothing about status themselves. Its answers are hub/api's wire
// types; errors a caller caused are *Error, whose Kind the HTTP layer maps
// to a status code.
//
// Rollback pins an (app, cluster) to a revision through controller.Pin. The
// controller renders the pinned revision into a bundle whose sync policy has
// automated=false, so the agent neither applies it on receipt nor
// self-heals it; once an agent reports holding that bundle, one SYNC
// command makes it apply it. Unpin restores the app's own policy and with
// it auto-sync. Pins are kept in the hub's store, so a restarted hub keeps
// them.
package status
