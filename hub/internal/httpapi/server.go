package httpapi

import (
	"net/http"
	"time"
)

// Timeouts of the hub's HTTP server. A client gets 10 s to send its
// headers and 30 s for its whole request, an answer has 2 min to be
// written (a diff waits at most CommandTimeout for its agent), and an idle
// keep-alive connection is closed after 2 min. The long-lived answers
// (server-sent events, backups) lift their own deadlines.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 2 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// NewServer returns the HTTP server for h with the hub's timeouts and
// header limit, so that a slow or idle client cannot hold a connection.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// longLived lifts the server's read and write deadlines for an answer
// that streams for as long as the client stays (its context still ends
// when the client goes or the hub stops).
func longLived(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
}
