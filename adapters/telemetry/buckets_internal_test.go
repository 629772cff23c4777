package telemetry

import (
	"slices"
	"testing"
	"time"

	"github.com/trustchain/trustchain/domain"
)

// TestDurationBucketsFollowTheBudgets: a new budget brings its own bound,
// and one past the ladder's top gets a bound above it too.
func TestDurationBucketsFollowTheBudgets(t *testing.T) {
	for _, tt := range []struct {
		budgets []time.Duration
		want    []float64
	}{
		{nil, bucketLadder},
		{[]time.Duration{3 * time.Second, 2 * time.Second}, []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 10}},
		{[]time.Duration{1500 * time.Millisecond}, []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 4, 10}},
		{[]time.Duration{12 * time.Second}, []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 10, 12, 15}},
	} {
		var hops []domain.Hop
		for _, b := range tt.budgets {
			hops = append(hops, domain.Hop{Budget: b})
		}
		if got := durationBuckets(hops); !slices.Equal(got, tt.want) {
			t.Errorf("budgets %v: buckets %v, want %v", tt.budgets, got, tt.want)
		}
	}
}
