package server

import (
	"context"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/trustchain/trustchain/adapters/httpapi/wire"
	"github.com/trustchain/trustchain/domain"
)

// Admission bounds the work a hop holds at once by the memory it may take.
// Each request weighs the most bytes it can hold (RequestBytes of the page
// it asks for); while the weights in flight would pass the capacity, a
// request waits at most MaxAdmissionWait and is then refused with 503
// overloaded and Retry-After. Nothing queues without bound, and the admin
// port never passes through here.
type Admission struct {
	sem      *semaphore.Weighted
	capacity int64
	maxLimit int
	inflight atomic.Int64 // requests admitted and not yet answered
	weight   atomic.Int64 // their summed weight
	onShed   func(reason string)
}

// MaxAdmissionWait is how long a request may wait for room before it is
// refused: long enough to ride out a burst, short enough that a refused
// client learns at once.
const MaxAdmissionWait = 25 * time.Millisecond

// requestOverhead is what any request holds besides its page: its
// goroutine's stack, the connection's read and write buffers, headers and
// the token.
const requestOverhead = 64 << 10

// RequestBytes is the most a request for a page of limit products holds
// at one hop: the page as read (from the next hop or the store) and as
// written, each at most wire.PageBodyLimit(limit) bytes, and its overhead.
// A single product weighs a page of one.
func RequestBytes(limit int) int64 {
	return 2*wire.PageBodyLimit(limit) + requestOverhead
}

// Reasons a request is shed, the reason label of the shed counter.
const ShedCapacity = "capacity"

// ShedReasons lists every reason label of the shed counter.
func ShedReasons() []string { return []string{ShedCapacity} }

// AdmissionConfig sizes an Admission.
type AdmissionConfig struct {
	// MemoryLimit is the process's soft memory limit in bytes
	// (math.MaxInt64 when it has none).
	MemoryLimit int64
	// MaxInflight, when positive, is the bound in requests for the largest
	// page, overriding the one derived from MemoryLimit.
	MaxInflight int
	// MaxLimit is the largest page a request may ask for.
	MaxLimit int
	// OnShed, when set, learns each refused request's reason.
	OnShed func(reason string)
}

// memoryShare is the part of the memory limit admitted requests may hold;
// the rest is the runtime's, the garbage collector's headroom and the
// caches'.
const memoryShare = 0.5

// maxDerivedInflight caps the derived bound for a process with no memory
// limit at all.
const maxDerivedInflight = 1024

// DerivedInflight is the bound a memory limit allows, in requests for the
// largest page: floor(memoryShare × limit / RequestBytes(maxLimit)), at
// least 1 and at most maxDerivedInflight.
func DerivedInflight(memoryLimit int64, maxLimit int) int {
	n := memoryShare * float64(memoryLimit) / float64(RequestBytes(maxLimit))
	return int(min(max(n, 1), maxDerivedInflight))
}

// NewAdmission returns the admission for cfg.
func NewAdmission(cfg AdmissionConfig) *Admission {
	n := cfg.MaxInflight
	if n <= 0 {
		n = DerivedInflight(cfg.MemoryLimit, cfg.MaxLimit)
	}
	capacity := int64(n) * RequestBytes(cfg.MaxLimit)
	if capacity <= 0 || capacity > math.MaxInt64/2 {
		capacity = math.MaxInt64 / 2
	}
	return &Admission{sem: semaphore.NewWeighted(capacity), capacity: capacity, maxLimit: cfg.MaxLimit, onShed: cfg.OnShed}
}

// Bound is the admission's capacity in requests for the largest page, and
// in bytes.
func (a *Admission) Bound() (requests int, bytes int64) {
	return int(a.capacity / RequestBytes(a.maxLimit)), a.capacity
}

// Inflight reports the requests admitted now and their summed weight.
func (a *Admission) Inflight() (requests int, bytes int64) {
	return int(a.inflight.Load()), a.weight.Load()
}

// admit runs next if weight fits, else refuses r with 503 overloaded.
func (a *Admission) admit(weight int64, w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request)) {
	if !a.sem.TryAcquire(weight) && !a.wait(r.Context(), weight) {
		if a.onShed != nil {
			a.onShed(ShedCapacity)
		}
		writeError(w, r, domain.ErrOverloaded)
		return
	}
	a.inflight.Add(1)
	a.weight.Add(weight)
	defer func() {
		a.weight.Add(-weight)
		a.inflight.Add(-1)
		a.sem.Release(weight)
	}()
	next(w, r)
}

// wait is the slow path: room within MaxAdmissionWait, or false.
func (a *Admission) wait(ctx context.Context, weight int64) bool {
	ctx, cancel := context.WithTimeout(ctx, MaxAdmissionWait)
	defer cancel()
	return a.sem.Acquire(ctx, weight) == nil
}

// listWeight weighs GET /products by the page it asks for. It reads only
// ?limit=, without allocating; a query it cannot read plainly (escapes, a
// repeated or malformed limit) weighs the largest page, and the handler
// then refuses or serves it as usual.
func listWeight(rawQuery string, defaultLimit, maxLimit int) int64 {
	limit, seen := defaultLimit, false
	if strings.ContainsAny(rawQuery, "%+;") {
		return RequestBytes(maxLimit)
	}
	for rawQuery != "" {
		var param string
		param, rawQuery, _ = strings.Cut(rawQuery, "&")
		value, ok := strings.CutPrefix(param, "limit=")
		if !ok {
			continue
		}
		n, ok := smallDecimal(value)
		if seen || !ok || n < 1 || n > maxLimit {
			return RequestBytes(maxLimit)
		}
		limit, seen = n, true
	}
	return RequestBytes(limit)
}

// smallDecimal parses up to 9 decimal digits.
func smallDecimal(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}
