package liveview

import (
	"errors"
	"time"

	"github.com/spf13/pflag"
)

// DefaultLimits returns the defaults, in one place.
func DefaultLimits() Limits {
	l := Limits{}
	l.setDefaults()
	return l
}

// BindFlags registers the limits on fs.
func (l *Limits) BindFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&l.Timeout, "live-timeout", l.Timeout, "deadline of a live-view request (resource tree, manifest, events, action, unfollowed log)")
	fs.DurationVar(&l.FollowTimeout, "live-follow-timeout", l.FollowTimeout, "longest a followed pod log streams")
	fs.IntVar(&l.MaxRequestsPerAgent, "live-max-requests-per-agent", l.MaxRequestsPerAgent, "live-view requests in flight per agent (log streams included)")
	fs.IntVar(&l.MaxRequests, "live-max-requests", l.MaxRequests, "live-view requests in flight on the hub (log streams included)")
	fs.IntVar(&l.MaxLogsPerAgent, "live-max-logs-per-agent", l.MaxLogsPerAgent, "pod log streams per agent")
	fs.IntVar(&l.MaxLogs, "live-max-logs", l.MaxLogs, "pod log streams on the hub")
	fs.IntVar(&l.LogBytesPerSecond, "live-log-bytes-per-second", l.LogBytesPerSecond, "pod log bytes the hub relays per second, all streams together")
	fs.IntVar(&l.Window, "live-log-window", l.Window, "credit of one log stream: bytes an agent may send before the hub took them")
}

// Validate checks the limits.
func (l *Limits) Validate() error {
	if l.Timeout < time.Second || l.FollowTimeout < time.Second {
		return errors.New("--live-timeout and --live-follow-timeout must be at least 1s")
	}
	if l.MaxRequestsPerAgent < 1 || l.MaxRequests < 1 || l.MaxLogsPerAgent < 1 || l.MaxLogs < 1 || l.LogBytesPerSecond < 1 {
		return errors.New("--live-max-* and --live-log-bytes-per-second must be at least 1")
	}
	if l.Window < 4*MinFrameCost {
		return errors.New("--live-log-window must be at least 1024")
	}
	return nil
}
