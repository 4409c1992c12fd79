package memtrim

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	quiet := Stats{Allocs: 100 << 20}
	tests := []struct {
		name string
		now  Stats
		want bool
	}{
		{name: "free pages after a burst", now: Stats{Free: 20 << 20, Objects: 15 << 20, Live: 15 << 20, Allocs: 101 << 20}, want: true},
		{name: "garbage not yet collected", now: Stats{Free: 4 << 20, Objects: 25 << 20, Live: 15 << 20, Allocs: 101 << 20}, want: true},
		{name: "still busy", now: Stats{Free: 20 << 20, Objects: 25 << 20, Live: 15 << 20, Allocs: 130 << 20}, want: false},
		{name: "just collected", now: Stats{Free: 2 << 20, Objects: 15 << 20, Live: 15 << 20, Allocs: 100 << 20}, want: false},
		{name: "below half the live heap", now: Stats{Free: 4 << 20, Objects: 50 << 20, Live: 40 << 20, Allocs: 100 << 20}, want: false},
		{name: "below the floor", now: Stats{Free: 2 << 20, Objects: 2 << 20, Live: 1 << 20, Allocs: 100 << 20}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Due(quiet, tt.now, DefaultMinFree); got != tt.want {
				t.Errorf("Due(%+v) = %v, want %v", tt.now, got, tt.want)
			}
		})
	}
}

func TestInterval(t *testing.T) {
	for _, tt := range []struct {
		live uint64
		want time.Duration
	}{
		{live: 0, want: 5 * time.Second},
		{live: 64 << 20, want: 5 * time.Second},
		{live: 128 << 20, want: 10 * time.Second},
		{live: 640 << 20, want: 50 * time.Second},
	} { // with a base of 5 s
		if got := Interval(5*time.Second, tt.live); got != tt.want {
			t.Errorf("Interval(5s, %d MiB) = %s, want %s", tt.live>>20, got, tt.want)
		}
	}
}

var sink [][]byte

// TestReadSeesABurst checks the runtime figures the decision rests on: after
// a burst of garbage and a collection the heap holds free memory, and
// FreeOSMemory returns it.
func TestReadSeesABurst(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no collection during the burst
	start := Read()
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	runtime.GC()
	st := Read()
	if st.Reclaimable() < 32<<20 {
		t.Fatalf("after freeing 64 MiB: %+v, want at least 32 MiB reclaimable", st)
	}
	if Due(start, st, DefaultMinFree) {
		t.Fatalf("Due(%+v) = true right after allocating 64 MiB (still busy)", st)
	}
	if !Due(st, st, DefaultMinFree) {
		t.Fatalf("Due(%+v) = false once quiet after a burst", st)
	}
	debug.FreeOSMemory()
	if after := Read(); after.Reclaimable() >= st.Reclaimable() {
		t.Errorf("reclaimable after FreeOSMemory %d, before %d", after.Reclaimable(), st.Reclaimable())
	}
}
