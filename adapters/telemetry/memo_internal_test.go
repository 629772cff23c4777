package telemetry

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestMemoMakesEachSeriesOnce: concurrent first lookups of the same labels
// resolve the child once and agree on it; other labels get their own.
func TestMemoMakesEachSeriesOnce(t *testing.T) {
	var made atomic.Int32
	m := memo[string, *int]{make: func(string) *int { made.Add(1); return new(int) }}
	var wg sync.WaitGroup
	got := make([]*int, 16)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = m.get("2xx") }()
	}
	wg.Wait()
	for _, p := range got {
		if p != got[0] {
			t.Fatal("two lookups of one label set returned different series")
		}
	}
	if other := m.get("5xx"); other == got[0] {
		t.Fatal("two label sets share a series")
	}
	if m.get("2xx") != got[0] || made.Load() != 2 {
		t.Fatalf("made %d series for two label sets", made.Load())
	}
}
