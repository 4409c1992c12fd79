// Package memtrim hands memory back to the operating system once a burst
// of work is over.
//
// After a large sync or render, the Go runtime keeps the freed heap pages
// mapped until later collections shrink its heap goal and its background
// scavenger returns them, which can take minutes on an idle process. An
// agent in every cluster spends most of its life idle after such a burst,
// so its resident memory should be its live heap.
//
// Run looks at the runtime's own figures every interval. When a collection
// and a release would give back more than half the live heap (and more than
// a floor) and the process has gone quiet (it allocated little since the
// last look, compared with what it could give back), it runs
// debug.FreeOSMemory: one collection and a release of the free pages. A
// busy process is left to the runtime's own pacing; an idle one is trimmed
// once after its burst and then left alone. The interval grows with the
// live heap beyond 64 MiB, as the cost of a collection does, so trimming
// stays a small fraction of a core however large the heap.
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
	DefaultInterval = 2 * time.Second
	DefaultMinFree  = 4 << 20
	// scaleLive is the live heap up to which the interval is not
	// stretched.
	scaleLive = 64 << 20
)

const (
	metricFree    = "/memory/classes/heap/free:bytes"
	metricObjects = "/memory/classes/heap/objects:bytes"
	metricLive    = "/gc/heap/live:bytes"
	metricAllocs  = "/gc/heap/allocs:bytes"
)

// Options tune Run; zero values take the defaults.
type Options struct {
	Interval time.Duration // how often to look
	MinFree  uint64        // reclaimable bytes below which nothing is done
}

// Stats are the runtime figures a decision is made from.
type Stats struct {
	Free    uint64 // heap memory free and not yet returned to the OS
	Objects uint64 // heap memory of objects, live or dead but not yet collected
	Live    uint64 // heap memory live after the last collection
	Allocs  uint64 // heap memory allocated since the process started
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
	s := []metrics.Sample{{Name: metricFree}, {Name: metricObjects}, {Name: metricLive}, {Name: metricAllocs}}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return s[i].Value.Uint64()
		}
		return 0
	}
	return Stats{Free: v(0), Objects: v(1), Live: v(2), Allocs: v(3)}
}

// Due reports whether a trim is worth it at now, given the figures of the
// previous look: more reclaimable memory than half the live heap and than
// minFree, and less allocated since prev than a quarter of that (the burst
// is over).
func Due(prev, now Stats, minFree uint64) bool {
	r := now.Reclaimable()
	if r <= minFree || r <= now.Live/2 {
		return false
	}
	return now.Allocs-prev.Allocs < r/4
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
	prev := Read()
	t := time.NewTimer(opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := Read()
		if Due(prev, now, opts.MinFree) {
			debug.FreeOSMemory()
			after := Read()
			log.Debug("returned heap memory to the OS", "reclaimable_before", now.Reclaimable(), "live_before", now.Live, "reclaimable_after", after.Reclaimable(), "live_after", after.Live)
			now = after
		}
		prev = now
		t.Reset(Interval(opts.Interval, now.Live))
	}
}
