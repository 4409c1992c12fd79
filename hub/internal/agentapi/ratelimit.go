package agentapi

import (
	"context"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// maxLimitedPeers bounds the source addresses peerLimiter remembers; past
// it, addresses whose bucket has refilled are forgotten first, and while
// none has, new addresses are refused.
const maxLimitedPeers = 16384

// peerLimiter limits calls per source address (a token bucket each).
type peerLimiter struct {
	every rate.Limit
	burst int
	now   func() time.Time

	mu    sync.Mutex
	peers map[string]*rate.Limiter
}

func newPeerLimiter(r rate.Limit, burst int) *peerLimiter {
	return &peerLimiter{every: r, burst: burst, now: time.Now, peers: map[string]*rate.Limiter{}}
}

// allow takes a token of ip's bucket.
func (l *peerLimiter) allow(ip string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.peers[ip]
	if lim == nil {
		if len(l.peers) >= maxLimitedPeers {
			l.forgetFullLocked(now)
		}
		if len(l.peers) >= maxLimitedPeers {
			return false
		}
		lim = rate.NewLimiter(l.every, l.burst)
		l.peers[ip] = lim
	}
	return lim.AllowN(now, 1)
}

// forgetFullLocked drops the buckets that are full again: forgetting one
// changes nothing for its address.
func (l *peerLimiter) forgetFullLocked(now time.Time) {
	for ip, lim := range l.peers {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.peers, ip)
		}
	}
}

// unary is a gRPC interceptor refusing calls over the rate with
// ResourceExhausted.
func (l *peerLimiter) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if !l.allow(peerIP(ctx)) {
		return nil, status.Error(codes.ResourceExhausted, "too many enrolment attempts from this address; retry later")
	}
	return h(ctx, req)
}

func peerIP(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if a, ok := p.Addr.(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return p.Addr.String()
	}
	return host
}
