// Package goruntime fits the Go runtime to its container: it sets the soft
// memory limit from the container's memory limit, and reports the limits
// the process runs under, so that admission can be sized from them.
package goruntime

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// MemoryRatio is the share of the container's memory the Go heap may
// target: the rest is for the runtime's own overhead and what the garbage
// collector has not yet returned.
const MemoryRatio = 0.9

// Where a memory limit came from.
const (
	SourceGOMEMLIMIT = "GOMEMLIMIT" // set by the operator; left as it is
	SourceCgroup     = "cgroup"     // the container's limit (cgroup v2 or v1)
	SourceSystem     = "system"     // no container limit: the machine's memory
	SourceNone       = "none"       // no limit could be found
)

// Limits are what the process runs under.
type Limits struct {
	// MemoryBytes is Go's soft memory limit; math.MaxInt64 when none.
	MemoryBytes int64
	// MemorySource says where it came from.
	MemorySource string
	// GOMAXPROCS is the number of threads running Go code at once; Go
	// 1.25 and later derive it from the container's CPU limit.
	GOMAXPROCS int
}

// Attrs are the limits as one structured log line's attributes.
func (l Limits) Attrs() []any {
	return []any{slog.Int64("memory_limit_bytes", l.MemoryBytes), slog.String("memory_limit_source", l.MemorySource),
		slog.Int("gomaxprocs", l.GOMAXPROCS)}
}

// Fit sets Go's soft memory limit to MemoryRatio of the container's memory
// limit (cgroup v2 or v1), or of the machine's memory when the container
// has none, unless GOMEMLIMIT is set (or AUTOMEMLIMIT=off), and returns the
// limits in effect. It changes process-wide state: the binary calls it
// once, at startup.
func Fit() (Limits, error) {
	source := SourceGOMEMLIMIT // unless the provider below is asked
	provider := func() (uint64, error) {
		limit, err := memlimit.FromCgroup()
		if err == nil {
			source = SourceCgroup
			return limit, nil
		}
		source = SourceSystem
		return memlimit.FromSystem()
	}
	_, err := memlimit.Set(memlimit.WithRatio(MemoryRatio), memlimit.WithProvider(provider))
	limits := current(source)
	if err != nil && !errors.Is(err, memlimit.ErrNoLimit) {
		return limits, fmt.Errorf("set the memory limit: %w", err)
	}
	return limits, nil
}

// Current reports the limits in effect without changing them.
func Current() Limits {
	return current(SourceGOMEMLIMIT)
}

func current(source string) Limits {
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 {
		source = SourceNone
	}
	return Limits{MemoryBytes: limit, MemorySource: source, GOMAXPROCS: runtime.GOMAXPROCS(0)}
}
