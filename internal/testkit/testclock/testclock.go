// Package testclock is a clock for tests that must age tokens, sessions or
// codes without sleeping: real time plus an offset the test moves forward.
// Real time underneath, because go-oidc and HTTP clients check expiry
// against the real clock. Only tests import it.
package testclock

import (
	"sync/atomic"
	"time"
)

// Offset is the real time plus an offset; the zero value is the real time.
// It is safe for concurrent use.
type Offset struct{ offset atomic.Int64 }

// Now is the real time moved forward by every Advance so far.
func (c *Offset) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Advance moves the clock forward by d.
func (c *Offset) Advance(d time.Duration) { c.offset.Add(int64(d)) }
