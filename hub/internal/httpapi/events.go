package httpapi

import (
	"fmt"
	"net/http"
	"time"
)

// Event pacing: at most one change event per eventGap, and a comment line
// every eventKeepalive so proxies keep the stream open.
const (
	eventGap       = 100 * time.Millisecond
	eventKeepalive = 15 * time.Second
)

// events streams server-sent events: a "change" event whenever the fleet's
// desired state, an agent's status or a connection changed (coalesced, at
// most one per eventGap), and one at once on connect. Each event's data is
// {"seq":N}; clients re-read what they show. Browsers read it with fetch
// and a bearer header (EventSource cannot send one).
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming not supported by this connection")
		return
	}
	longLived(w)
	changed, stop := a.d.Fleet.Watch()
	defer stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ctx := r.Context()
	keep := time.NewTicker(eventKeepalive)
	defer keep.Stop()
	for seq := 1; ; seq++ {
		if _, err := fmt.Fprintf(w, "event: change\ndata: {\"seq\":%d}\n\n", seq); err != nil {
			return
		}
		fl.Flush()
		gap := time.NewTimer(eventGap)
		select {
		case <-ctx.Done():
			gap.Stop()
			return
		case <-gap.C:
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				break wait
			case <-keep.C:
				if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
					return
				}
				fl.Flush()
			}
		}
	}
}
