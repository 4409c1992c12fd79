// Package agentkeepalive holds the keepalive timings of an agent's
// connection to the hub, so that the agent, the hub and the simulated
// agents of the benchmark agree on them.
//
// Only the agent pings: after Interval without a frame from the hub it
// sends an HTTP/2 PING and drops the connection (and reconnects) when no
// answer comes within Timeout. The hub pings only after HubInterval without
// any frame from the agent, which is half an interval longer than
// Interval: a live agent's pings always come first, so on an idle connection there is
// one ping and one answer per Interval instead of one from each side. A
// dead or cut-off agent stops pinging; the hub then pings it and closes
// its connection HubTimeout later (at most HubInterval + HubTimeout after
// the agent's last frame), which ends its stream and marks it
// disconnected.
//
// The intervals are long enough that 10,000 idle agents cost the hub
// little (each ping is a TLS record read and one written) and short enough
// for the idle timeouts of NAT gateways and load balancers (minutes).
package agentkeepalive

import (
	"time"

	"google.golang.org/grpc/keepalive"
)

const (
	// Interval is how long an agent's connection may be quiet before the
	// agent pings the hub.
	Interval = 60 * time.Second
	// Timeout is how long the agent waits for the answer to its ping.
	Timeout = 20 * time.Second
	// HubInterval is how long an agent's connection may be quiet before
	// the hub pings the agent: a live agent has pinged by then, with
	// half an interval to spare for a late timer on a loaded machine.
	HubInterval = Interval + Interval/2
	// HubTimeout is how long the hub waits for an answer to its ping.
	HubTimeout = 20 * time.Second
	// MinInterval is the shortest interval between an agent's pings the
	// hub accepts (it closes the connection of a client pinging more
	// often). It is well below Interval, so that an agent one version
	// older, which pinged every 30 s, is still accepted.
	MinInterval = 10 * time.Second
)

// Client returns the agent's keepalive parameters.
func Client() keepalive.ClientParameters {
	return keepalive.ClientParameters{Time: Interval, Timeout: Timeout, PermitWithoutStream: true}
}

// Server returns the hub's keepalive parameters for agent connections,
// with maxIdle as the connection idle limit (0: none).
func Server(maxIdle time.Duration) keepalive.ServerParameters {
	return keepalive.ServerParameters{Time: HubInterval, Timeout: HubTimeout, MaxConnectionIdle: maxIdle}
}

// Enforcement returns the hub's rule for agents' pings.
func Enforcement() keepalive.EnforcementPolicy {
	return keepalive.EnforcementPolicy{MinTime: MinInterval, PermitWithoutStream: true}
}
