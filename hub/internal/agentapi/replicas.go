package agentapi

import (
	"github.com/flotilla-cd/flotilla/hub/internal/fleet"
	"github.com/flotilla-cd/flotilla/hub/internal/store"
)

// Hubs sharing one store: a removal or re-enrolment made through another
// hub reaches this one as a changed (or deleted) cluster record, and the
// stream this hub holds for that cluster is closed here.

// streamSerials records the certificate serial of each attached stream.
func (s *Server) attachSerial(cluster, serial string) {
	s.serialsMu.Lock()
	s.serials[cluster] = serial
	s.serialsMu.Unlock()
}

func (s *Server) detachSerial(cluster, serial string) {
	s.serialsMu.Lock()
	if s.serials[cluster] == serial {
		delete(s.serials, cluster)
	}
	s.serialsMu.Unlock()
}

// Revalidate closes the stream this hub holds for c's cluster when its
// certificate is no longer one c accepts (revoked, or superseded by a
// re-enrolment); a renewal (the stream's serial still current or pending)
// keeps it.
func (s *Server) Revalidate(c store.Cluster) {
	s.serialsMu.Lock()
	serial, ok := s.serials[c.Name]
	s.serialsMu.Unlock()
	if !ok || (!c.Revoked && (serial == c.CertSerial || serial == c.PendingSerial)) {
		return
	}
	s.log.Info("stream closed: its certificate was revoked or superseded through another hub", "cluster", c.Name, "serial", serial)
	s.fleet.Close(c.Name, fleet.ErrSuperseded)
}
