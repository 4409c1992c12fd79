// Package simstats is the wire type of agentsim's control endpoint
// (GET /stats), shared by agentsim, which answers it, and the bench, which
// reads and sums it.
package simstats

// Stats is the answer of agentsim's control endpoint.
type Stats struct {
	Agents   int   `json:"agents"`
	Enrolled int64 `json:"enrolled"`
	Failed   int64 `json:"failed"`
	// EnrolRetries counts enrolment attempts that failed and were tried
	// again (a hub out of reach or overloaded).
	EnrolRetries int64  `json:"enrolRetries"`
	Connected    int    `json:"connected"`
	Sessions     int    `json:"sessions"`
	FirstErr     string `json:"firstError,omitempty"`
	// For ?app=&revision=: agents holding that app at that revision, and
	// of those, how many reported it Synced; first/last receipt and last
	// report in Unix nanoseconds. For ?prefix=&revision= the same over
	// every (agent, app) pair whose app name starts with prefix, for
	// fleets with many apps per agent.
	Holding   int   `json:"holding"`
	Reported  int   `json:"reported"`
	FirstRecv int64 `json:"firstRecv"`
	LastRecv  int64 `json:"lastRecv"`
	LastSent  int64 `json:"lastSent"`
}
