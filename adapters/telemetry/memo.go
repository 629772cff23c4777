package telemetry

import (
	"maps"
	"sync"
	"sync/atomic"
)

// memo remembers the children of a metric vector by their label values.
// A vector hashes and checks the label values on every lookup; the series
// below are touched on every request, at every hop, and their label sets
// are small and bounded, so each is resolved once. Reads take no lock: the
// map is replaced, never changed, when a new label set first appears.
type memo[K comparable, V any] struct {
	make func(K) V

	mu sync.Mutex // serialises additions
	m  atomic.Pointer[map[K]V]
}

func (c *memo[K, V]) get(k K) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	next := make(map[K]V)
	if old != nil {
		next = maps.Clone(*old)
	}
	v := c.make(k)
	next[k] = v
	c.m.Store(&next)
	return v
}
