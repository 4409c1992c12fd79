package engine

import (
	"fmt"
	"strings"
	"sync"

	"github.com/flotilla-cd/flotilla/shared/manifest"
)

// Action is what a sync operation did to one object.
type Action string

// The actions, in the order a summary lists them.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Replaced   Action = "replaced"
	Unchanged  Action = "unchanged"
	Pruned     Action = "pruned"
)

var actionOrder = []Action{Created, Configured, Replaced, Unchanged, Pruned}

// Change is one object's entry in a ChangeSet.
type Change struct {
	Key    manifest.Key
	Action Action
}

// ChangeSet is what one sync operation did, object by object, in the order
// the writes finished: the apply set's and the prune's typed result. Steps
// apply in parallel, so Add is safe for concurrent use.
type ChangeSet struct {
	mu      sync.Mutex
	entries []Change
	index   map[manifest.Key]Action
}

func newChangeSet() *ChangeSet {
	return &ChangeSet{index: map[manifest.Key]Action{}}
}

// Add records what was done to k.
func (c *ChangeSet) Add(k manifest.Key, act Action) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = append(c.entries, Change{Key: k, Action: act})
	c.index[k] = act
}

// Has reports whether the operation has handled k already (applied or
// pruned). A nil set has nothing.
func (c *ChangeSet) Has(k manifest.Key) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.index[k]
	return ok
}

// Count is how many objects had act.
func (c *ChangeSet) Count(act Action) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.entries {
		if e.Action == act {
			n++
		}
	}
	return n
}

// Entries returns a copy of the changes, in order.
func (c *ChangeSet) Entries() []Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Change(nil), c.entries...)
}

// Summary counts the changes by action ("2 created, 1 configured, 4
// unchanged, 1 pruned"); actions that did not happen are left out.
func (c *ChangeSet) Summary() string {
	var parts []string
	for _, act := range actionOrder {
		if n := c.Count(act); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, act))
		}
	}
	return strings.Join(parts, ", ")
}
