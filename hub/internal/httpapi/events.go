package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/flotilla-cd/flotilla/hub/api"
)

// Event pacing: at most one change event per eventGap, and a comment line
// every eventKeepalive so proxies keep the stream open.
const (
	eventGap       = 100 * time.Millisecond
	eventKeepalive = 15 * time.Second
)

// events streams server-sent events: a "change" event whenever the fleet's
// desired state, an agent's status or a connection changed (coalesced, at
// most one per eventGap), and one at once on connect. Each change event's
// data is {"seq":N}; clients re-read what they show. A "rollout" event
// (data: an api.RolloutEvent) is sent for every rollout event as it
// happens. Browsers read it with fetch and a bearer header (EventSource
// cannot send one).
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming not supported by this connection")
		return
	}
	longLived(w)
	changed, stop := a.d.Fleet.Watch()
	defer stop()
	rollouts, stopRollouts := a.d.Status.SubscribeRollouts()
	defer stopRollouts()
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
	pace:
		for {
			select {
			case <-ctx.Done():
				gap.Stop()
				return
			case e := <-rollouts:
				if !writeRolloutEvent(w, fl, e) {
					gap.Stop()
					return
				}
			case <-gap.C:
				break pace
			}
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-rollouts:
				if !writeRolloutEvent(w, fl, e) {
					return
				}
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

// writeRolloutEvent sends one "rollout" event; false when the client is
// gone.
func writeRolloutEvent(w http.ResponseWriter, fl http.Flusher, e api.RolloutEvent) bool {
	b, err := json.Marshal(e)
	if err != nil {
		return false
	}
	if _, err := fmt.Fprintf(w, "event: rollout\ndata: %s\n\n", b); err != nil {
		return false
	}
	fl.Flush()
	return true
}
