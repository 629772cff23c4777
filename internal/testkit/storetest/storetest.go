// Package storetest is the contract every ports.ProductSource adapter must
// pass. Adapter tests call RunProductSourceContract with a constructor for
// their own source, so the in-memory store, MySQL on the embedded engine, a
// real MySQL and the HTTP client of the next hop are held to one definition
// of correct. Only tests import it, which keeps it and the testing package
// out of the binary.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

// NewSourceFunc returns a source whose catalogue is exactly products, in
// whatever order they were given, and cleans it up through tb. The context
// it returns is the one to call the source with (the HTTP client needs
// credentials in it); it may be context.Background().
type NewSourceFunc func(tb testing.TB, products []domain.Product) (ports.ProductSource, context.Context)

// RunProductSourceContract checks a ProductSource against the port's
// contract:
//
//   - ListProducts returns the products after the cursor, ordered by id, at
//     most the limit of them, and says whether more follow; an empty page is
//     an empty, non-nil slice.
//   - GetProduct returns one product, or domain.ErrNotFound.
//   - Ids, names (any UTF-8 up to domain.MaxNameLength characters) and
//     prices (to the cent, up to 9999999999.99) come back exactly.
//   - The returned slice belongs to the caller, and concurrent calls are safe.
//   - A ctx that is done fails the call, and the source still works for the
//     next call. A cancelled ctx gives an error that matches context.Canceled
//     and no domain error: the caller gave up, the source did not fail. A
//     passed deadline gives one that matches context.DeadlineExceeded and a
//     timeout (domain.ErrSourceTimeout or domain.ErrUpstreamTimeout).
func RunProductSourceContract(t *testing.T, newSource NewSourceFunc) {
	t.Helper()
	t.Run("lists the catalogue", func(t *testing.T) { listsTheCatalogue(t, newSource) })
	t.Run("pages", func(t *testing.T) { pages(t, newSource) })
	t.Run("one product", func(t *testing.T) { oneProduct(t, newSource) })
	t.Run("done context fails the call", func(t *testing.T) { doneContext(t, newSource) })
	t.Run("result belongs to the caller", func(t *testing.T) { belongsToCaller(t, newSource) })
	t.Run("concurrent calls", func(t *testing.T) { concurrent(t, newSource) })
}

func listsTheCatalogue(t *testing.T, newSource NewSourceFunc) {
	maxName := strings.Repeat("😀", domain.MaxNameLength)
	tests := []struct {
		name   string
		stored []domain.Product
		want   string
	}{
		{name: "empty catalogue is an empty list", stored: nil, want: ``},
		{name: "sample catalogue", stored: domain.SampleCatalogue(),
			want: `1 "Laptop" 1000; 2 "Mechanical Keyboard" 89.99; 3 "USB-C Cable" 19.99`},
		{name: "ordered by id whatever the insert order",
			stored: []domain.Product{Product(t, 30, "c", 1), Product(t, 2, "a", 1), Product(t, 1_000_000_000_000, "d", 1), Product(t, 7, "b", 1)},
			want:   `2 "a" 0.01; 7 "b" 0.01; 30 "c" 0.01; 1000000000000 "d" 0.01`},
		{name: "prices are exact",
			stored: []domain.Product{
				Product(t, 1, "free", 0), Product(t, 2, "one cent", 1), Product(t, 3, "ten cents", 10),
				Product(t, 4, "half", 50), Product(t, 5, "cents", 1999), Product(t, 6, "whole", 100000),
				Product(t, 7, "largest", 999_999_999_999),
			},
			want: `1 "free" 0; 2 "one cent" 0.01; 3 "ten cents" 0.1; 4 "half" 0.5; 5 "cents" 19.99; 6 "whole" 1000; 7 "largest" 9999999999.99`},
		{name: "names are exact",
			stored: []domain.Product{
				Product(t, 1, "Café crème", 100), Product(t, 2, "日本語キーボード", 100), Product(t, 3, "🍣 sushi set", 100),
				Product(t, 4, `O'Reilly "Go" \ book; --`, 100), Product(t, 5, maxName, 100),
			},
			want: `1 "Café crème" 1; 2 "日本語キーボード" 1; 3 "🍣 sushi set" 1; 4 "O'Reilly \"Go\" \\ book; --" 1; 5 "` + maxName + `" 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			source, ctx := newSource(t, tt.stored)
			page := List(t, ctx, source, 0, domain.MaxPageLimit)
			if page.Products() == nil {
				t.Fatal("ListProducts returned a nil slice; want non-nil")
			}
			if got := Text(page.Products()); got != tt.want {
				t.Errorf("ListProducts:\n got %s\nwant %s", got, tt.want)
			}
			if _, more := page.Next(); more {
				t.Error("the whole catalogue fits in the page, yet more are said to follow")
			}
		})
	}
}

// pages covers the keyset edges over a catalogue with gaps in its ids.
func pages(t *testing.T, newSource NewSourceFunc) {
	stored := []domain.Product{Product(t, 2, "b", 100), Product(t, 3, "c", 100), Product(t, 5, "e", 100), Product(t, 8, "h", 100), Product(t, 9, "i", 100)}
	source, ctx := newSource(t, stored)
	tests := []struct {
		name     string
		after    int64
		limit    int
		want     string
		wantNext string // "after/limit" of the next page, or "" for the last
	}{
		{"first page", 0, 2, `2 "b" 1; 3 "c" 1`, "3/2"},
		{"a middle page starts after the cursor", 3, 2, `5 "e" 1; 8 "h" 1`, "8/2"},
		{"a cursor between ids", 4, 1, `5 "e" 1`, "5/1"},
		{"exactly the rest is the last page", 5, 2, `8 "h" 1; 9 "i" 1`, ""},
		{"N+1: one more than the rest", 5, 3, `8 "h" 1; 9 "i" 1`, ""},
		{"limit equal to the catalogue", 0, 5, `2 "b" 1; 3 "c" 1; 5 "e" 1; 8 "h" 1; 9 "i" 1`, ""},
		{"limit one short of the catalogue", 0, 4, `2 "b" 1; 3 "c" 1; 5 "e" 1; 8 "h" 1`, "8/4"},
		{"after the last id is an empty page", 9, 10, ``, ""},
		{"far beyond the last id is an empty page", 1 << 62, 10, ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := List(t, ctx, source, tt.after, tt.limit)
			if got := Text(page.Products()); got != tt.want {
				t.Errorf("page after %d, limit %d:\n got %s\nwant %s", tt.after, tt.limit, got, tt.want)
			}
			next, more := page.Next()
			gotNext := ""
			if more {
				gotNext = fmt.Sprintf("%d/%d", next.After(), next.Limit())
			}
			if gotNext != tt.wantNext {
				t.Errorf("next page = %q, want %q", gotNext, tt.wantNext)
			}
		})
	}
	t.Run("following the pages walks every product once, in order", func(t *testing.T) {
		var seen []domain.Product
		req, _ := domain.NewPageRequest(0, 2)
		for range 10 {
			page, err := source.ListProducts(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, page.Products()...)
			next, more := page.Next()
			if !more {
				break
			}
			req = next
		}
		if got, want := Text(seen), Text(stored); got != want {
			t.Errorf("walked %s, want %s", got, want)
		}
	})
}

func oneProduct(t *testing.T, newSource NewSourceFunc) {
	source, ctx := newSource(t, domain.SampleCatalogue())
	p, err := source.GetProduct(ctx, 3)
	if err != nil {
		t.Fatalf("GetProduct(3): %v", err)
	}
	if got := Text([]domain.Product{p}); got != `3 "USB-C Cable" 19.99` {
		t.Errorf("GetProduct(3) = %s", got)
	}
	for _, id := range []int64{4, 1 << 62} {
		if _, err := source.GetProduct(ctx, id); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("GetProduct(%d) error = %v, want ErrNotFound", id, err)
		}
	}
}

func doneContext(t *testing.T, newSource NewSourceFunc) {
	tests := []struct {
		name    string
		done    func(context.Context) (context.Context, context.CancelFunc)
		wantErr error
	}{
		{"cancelled", func(ctx context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return ctx, cancel
		}, context.Canceled},
		{"deadline passed", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithDeadline(ctx, time.Now().Add(-time.Second))
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A non-empty catalogue, so a source cannot pass by having
			// nothing to read.
			source, ctx := newSource(t, domain.SampleCatalogue())
			done, cancel := tt.done(ctx)
			defer cancel()
			req, _ := domain.NewPageRequest(0, 10)
			page, err := source.ListProducts(done, req)
			CheckDoneContext(t, err, tt.wantErr)
			if page.Products() != nil {
				t.Errorf("ListProducts returned %d products with an error; want none", len(page.Products()))
			}
			_, err = source.GetProduct(done, 1)
			CheckDoneContext(t, err, tt.wantErr)

			if after := List(t, ctx, source, 0, 10); len(after.Products()) != len(domain.SampleCatalogue()) {
				t.Errorf("ListProducts after a done context returned %d products, want %d", len(after.Products()), len(domain.SampleCatalogue()))
			}
		})
	}
}

func belongsToCaller(t *testing.T, newSource NewSourceFunc) {
	source, ctx := newSource(t, domain.SampleCatalogue())
	want := Text(domain.SampleCatalogue())
	first := List(t, ctx, source, 0, 10)
	first.Products()[0] = Product(t, 99, "changed by the caller", 1)
	if got := Text(List(t, ctx, source, 0, 10).Products()); got != want {
		t.Errorf("after the caller changed an earlier result, ListProducts = %s, want %s", got, want)
	}
}

func concurrent(t *testing.T, newSource NewSourceFunc) {
	const callers, calls = 8, 10
	source, ctx := newSource(t, domain.SampleCatalogue())
	want := Text(domain.SampleCatalogue())
	req, _ := domain.NewPageRequest(0, 10)
	var wg sync.WaitGroup
	errs := make(chan error, callers*calls)
	for range callers {
		wg.Go(func() {
			for range calls {
				// Not List: t.Fatal must not be called off the test's
				// goroutine.
				page, err := source.ListProducts(ctx, req)
				if err != nil {
					errs <- err
					return
				}
				if got := Text(page.Products()); got != want {
					errs <- errors.New("got " + got + ", want " + want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent ListProducts: %v", err)
	}
}

// List reads one page or fails the test.
func List(tb testing.TB, ctx context.Context, source ports.ProductSource, after int64, limit int) domain.Page {
	tb.Helper()
	req, err := domain.NewPageRequest(after, limit)
	if err != nil {
		tb.Fatal(err)
	}
	page, err := source.ListProducts(ctx, req)
	if err != nil {
		tb.Fatalf("ListProducts(after %d, limit %d): %v", after, limit, err)
	}
	return page
}

// Product builds a valid product or fails the test.
func Product(tb testing.TB, id int64, name string, cents int64) domain.Product {
	tb.Helper()
	price, err := domain.NewMoneyFromCents(cents)
	if err != nil {
		tb.Fatalf("price %d cents: %v", cents, err)
	}
	p, err := domain.NewProduct(id, name, price)
	if err != nil {
		tb.Fatalf("product %d: %v", id, err)
	}
	return p
}

// Text renders products exactly, one `id "name" price` per product, so
// comparing it checks ids, names and prices to the byte.
func Text(products []domain.Product) string {
	parts := make([]string, len(products))
	for i, p := range products {
		parts[i] = fmt.Sprintf("%d %q %s", p.ID(), p.Name(), p.Price())
	}
	return strings.Join(parts, "; ")
}

// CheckDoneContext asserts the port's rule for a call whose context ended
// (wantErr is context.Canceled or context.DeadlineExceeded): the error
// matches wantErr; a passed deadline is a timeout, while a cancellation
// matches no domain error, since the caller giving up is not the source
// failing.
func CheckDoneContext(tb testing.TB, err, wantErr error) {
	tb.Helper()
	if !errors.Is(err, wantErr) {
		tb.Fatalf("error = %v, want one matching %v", err, wantErr)
	}
	timeout := errors.Is(err, domain.ErrSourceTimeout) || errors.Is(err, domain.ErrUpstreamTimeout)
	if wantTimeout := errors.Is(wantErr, context.DeadlineExceeded); timeout != wantTimeout {
		tb.Errorf("error = %v; is a timeout = %t, want %t", err, timeout, wantTimeout)
	}
	if errors.Is(err, domain.ErrSourceUnavailable) || errors.Is(err, domain.ErrUpstreamUnavailable) {
		tb.Errorf("error = %v: a done context is not the source failing", err)
	}
}
