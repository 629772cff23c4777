package server_test

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/httpapi/server"
	"github.com/trustchain/trustchain/adapters/httpapi/wire"
	"github.com/trustchain/trustchain/domain"
)

// blockingSource holds every list request for a page of hold products
// until release is closed, and says when one has arrived; other pages are
// served at once.
type blockingSource struct {
	sourceFuncs
	arrived chan struct{}
	release chan struct{}
}

func newBlockingSource(hold int) *blockingSource {
	b := &blockingSource{arrived: make(chan struct{}, 100), release: make(chan struct{})}
	b.list = func(ctx context.Context, req domain.PageRequest) (domain.Page, error) {
		if req.Limit() == hold {
			b.arrived <- struct{}{}
			<-b.release
		}
		return seedStore.ListProducts(ctx, req)
	}
	return b
}

func withAdmission(a *server.Admission) apiOption {
	return func(c *server.APIConfig) { c.Admission = a }
}

// TestOverTheBoundIsRefusedAtOnce: with the bound taken by requests in
// flight, the next one is answered 503 overloaded with Retry-After within
// the bounded wait, and never reaches the source; once room frees, a
// request is served again.
func TestOverTheBoundIsRefusedAtOnce(t *testing.T) {
	var shed []string
	src := newBlockingSource(1000)
	a := server.NewAdmission(server.AdmissionConfig{MaxInflight: 1, MaxLimit: 1000, OnShed: func(r string) { shed = append(shed, r) }})
	h := newAPI(t, io.Discard, withSource(src), withAdmission(a))

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if w := do(h, http.MethodGet, "/products?limit=1000", "Bearer "+goodToken); w.Code != 200 {
			t.Errorf("the admitted request = %d %s", w.Code, w.Body)
		}
	}()
	<-src.arrived
	if n, _ := a.Inflight(); n != 1 {
		t.Fatalf("in flight = %d, want 1", n)
	}

	start := time.Now()
	w := do(h, http.MethodGet, "/products?limit=1000", "Bearer "+goodToken)
	took := time.Since(start)
	e := errorBody(t, w.Body.String())
	if w.Code != http.StatusServiceUnavailable || e.Error != "overloaded" || e.Message == "" || e.RequestID == "" || e.RequestID != w.Header().Get(wire.HeaderRequestID) {
		t.Fatalf("over the bound = %d %s", w.Code, w.Body)
	}
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	if took > server.MaxAdmissionWait+100*time.Millisecond {
		t.Errorf("the refusal took %v; the wait is bounded at %v", took, server.MaxAdmissionWait)
	}
	if len(shed) != 1 || shed[0] != server.ShedCapacity {
		t.Errorf("shed reasons = %v", shed)
	}

	close(src.release)
	wg.Wait()
	if n, b := a.Inflight(); n != 0 || b != 0 {
		t.Fatalf("after the answer: %d requests, %d bytes in flight", n, b)
	}
	if w := do(h, http.MethodGet, "/products?limit=1000", "Bearer "+goodToken); w.Code != 200 {
		t.Fatalf("with room again = %d %s", w.Code, w.Body)
	}
}

// TestRequestsWeighWhatTheyAsk: a bound of one largest page holds many
// small pages at once, and a request that asks for more than the room
// left is refused while small ones still fit.
func TestRequestsWeighWhatTheyAsk(t *testing.T) {
	src := newBlockingSource(10)
	a := server.NewAdmission(server.AdmissionConfig{MaxInflight: 1, MaxLimit: 1000})
	h := newAPI(t, io.Discard, withSource(src), withAdmission(a))

	// Fill all but two pages of the default size (100): the room left
	// would take a default page, not a largest one.
	small := int((server.RequestBytes(1000) - 2*server.RequestBytes(100)) / server.RequestBytes(10))
	var wg sync.WaitGroup
	for range small {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w := do(h, http.MethodGet, "/products?limit=10", "Bearer "+goodToken); w.Code != 200 {
				t.Errorf("small page = %d", w.Code)
			}
		}()
		<-src.arrived
	}
	if small < 10 {
		t.Fatalf("only %d small pages fit one large one", small)
	}
	// Repeating or escaping limit cannot make a large page weigh little.
	for _, q := range []string{"limit=1000", "limit=5&limit=1000", "lim%69t=1000", "limit=1000%00", "limit=999", "limit=abc"} {
		if w := do(h, http.MethodGet, "/products?"+q, "Bearer "+goodToken); w.Code != http.StatusServiceUnavailable {
			t.Errorf("%s with the room nearly full = %d, want 503", q, w.Code)
		}
	}
	if w := do(h, http.MethodGet, "/products/1", "Bearer "+goodToken); w.Code != 200 {
		t.Errorf("one product with room left = %d", w.Code)
	}
	close(src.release)
	wg.Wait()
}

// TestDerivedBound: the bound follows the memory limit by the README's
// formula, floor(0.5 × limit / RequestBytes(max page)), and --max-inflight
// overrides it.
func TestDerivedBound(t *testing.T) {
	per := server.RequestBytes(1000)
	for _, tt := range []struct {
		limit    int64
		override int
		want     int
	}{
		{128 << 20, 0, int(64 << 20 / per)},
		{1 << 20, 0, 1},
		{1 << 62, 0, 1024},
		{128 << 20, 3, 3},
	} {
		a := server.NewAdmission(server.AdmissionConfig{MemoryLimit: tt.limit, MaxInflight: tt.override, MaxLimit: 1000})
		if got, bytes := a.Bound(); got != tt.want || bytes != int64(tt.want)*per {
			t.Errorf("limit %d, override %d: bound %d (%d bytes), want %d", tt.limit, tt.override, got, bytes, tt.want)
		}
	}
	if got := server.DerivedInflight(128<<20, 1000); got < 8 || got > 12 {
		t.Errorf("128 MiB admits %d largest pages; the README says 10", got)
	}
}
