// Package memtrim hands memory back to the operating system after a burst
// of work.
//
// After a large sync or render, the Go runtime keeps the freed heap pages
// mapped until the next garbage collections shrink its heap goal and its
// background scavenger returns them, which can take minutes on an idle
// process. An agent in every cluster spends most of its life idle after
// such a burst, so its resident memory should be its live heap. Trimmer
// looks at the runtime's own figures every interval and, when a collection
// and a release would give back more than half the live heap (and more than
// a floor), runs debug.FreeOSMemory: one collection and a release of the
// free pages. An idle process allocates little, so after the trim that
// follows a burst it is left alone; a busy one gets at most one extra
// collection per interval. The interval grows with the live heap beyond
// 64 MiB, as the cost of a collection does, so that trimming stays around
// one percent of a core however large the heap (a hub with thousands of
// agents).
package memtrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Defaults of Options.
const (
	DefaultInterval = 5 * time.Second
	DefaultMinFree  = 8 << 20
	// scaleLive is the live heap up to which the interval is not
	// stretched.
	scaleLive = 64 << 20
)

const (
	metricFree    = "/memory/classes/heap/free:bytes"
	metricObjects = "/memory/classes/heap/objects:bytes"
	metricLive    = "/gc/heap/live:bytes"
)

// Options tune a Trimmer; zero values take the defaults.
type Options struct {
	Interval time.Duration // how often to look
	MinFree  uint64        // reclaimable bytes below which nothing is done
}

// Stats are the runtime figures a decision is made from.
type Stats struct {
	Free    uint64 // heap memory free and not yet returned to the OS
	Objects uint64 // heap memory of objects, live or dead but not yet collected
	Live    uint64 // heap memory live after the last collection
}

// Reclaimable estimates what a collection and a release would return: the
// free heap plus the objects allocated since the last collection (counted
// as dead, which they mostly are in a process that has gone idle).
func (s Stats) Reclaimable() uint64 {
	r := s.Free
	if s.Objects > s.Live {
		r += s.Objects - s.Live
	}
	return r
}

// Read reads the current Stats from the runtime.
func Read() Stats {
	s := []metrics.Sample{{Name: metricFree}, {Name: metricObjects}, {Name: metricLive}}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return s[i].Value.Uint64()
		}
		return 0
	}
	return Stats{Free: v(0), Objects: v(1), Live: v(2)}
}

// Due reports whether st warrants a trim: more reclaimable memory than
// half the live heap, and than minFree.
func Due(st Stats, minFree uint64) bool {
	r := st.Reclaimable()
	return r > minFree && r > st.Live/2
}

// Interval returns how long to wait before the next look: base, stretched
// in proportion to a live heap larger than 64 MiB.
func Interval(base time.Duration, live uint64) time.Duration {
	if live <= scaleLive {
		return base
	}
	return time.Duration(float64(base) * float64(live) / scaleLive)
}

// Run trims until ctx ends.
func Run(ctx context.Context, opts Options, log hclog.Logger) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.MinFree == 0 {
		opts.MinFree = DefaultMinFree
	}
	t := time.NewTimer(opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		before := Read()
		t.Reset(Interval(opts.Interval, before.Live))
		if !Due(before, opts.MinFree) {
			continue
		}
		debug.FreeOSMemory()
		after := Read()
		log.Debug("returned heap memory to the OS", "reclaimable_before", before.Reclaimable(), "live_before", before.Live, "reclaimable_after", after.Reclaimable(), "live_after", after.Live)
	}
}
