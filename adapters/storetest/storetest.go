// Package storetest is the contract every ports.ProductSource adapter must
// pass. Adapter tests call RunProductSourceContract with a constructor for
// their own store, so the in-memory store, MySQL on the embedded engine and a
// real MySQL are held to one definition of correct. Only tests import it,
// which keeps it and the testing package out of the binary.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

// NewSourceFunc returns a source whose catalogue is exactly products, in
// whatever order they were given, and cleans it up through tb.
type NewSourceFunc func(tb testing.TB, products []domain.Product) ports.ProductSource

// RunProductSourceContract checks a ProductSource against the port's
// contract:
//
//   - ListProducts returns every product ordered by id, and an empty
//     catalogue as an empty, non-nil slice.
//   - Ids, names (any UTF-8 up to domain.MaxNameLength characters) and
//     prices (to the cent, up to 9999999999.99) come back exactly.
//   - The returned slice belongs to the caller, and concurrent calls are safe.
//   - A ctx that is done fails the call, and the source still works for the
//     next call. A cancelled ctx gives an error that matches context.Canceled
//     and not domain.ErrSourceUnavailable: the caller gave up, the store did
//     not fail. A passed deadline gives an error that matches both
//     context.DeadlineExceeded and domain.ErrSourceUnavailable: the store did
//     not answer within the budget, which callers treat as unavailable.
func RunProductSourceContract(t *testing.T, newSource NewSourceFunc) {
	t.Helper()

	t.Run("lists the catalogue", func(t *testing.T) {
		maxName := strings.Repeat("😀", domain.MaxNameLength)
		tests := []struct {
			name     string
			stored   []domain.Product
			wantJSON string
		}{
			{
				name:     "empty catalogue is an empty list",
				stored:   nil,
				wantJSON: `[]`,
			},
			{
				name:     "sample catalogue",
				stored:   domain.SampleCatalogue(),
				wantJSON: `[{"id":1,"name":"Laptop","price":1000},{"id":2,"name":"Mechanical Keyboard","price":89.99},{"id":3,"name":"USB-C Cable","price":19.99}]`,
			},
			{
				name: "ordered by id whatever the insert order",
				stored: []domain.Product{
					Product(t, 30, "c", 1), Product(t, 2, "a", 1), Product(t, 1_000_000_000_000, "d", 1), Product(t, 7, "b", 1),
				},
				wantJSON: `[{"id":2,"name":"a","price":0.01},{"id":7,"name":"b","price":0.01},{"id":30,"name":"c","price":0.01},{"id":1000000000000,"name":"d","price":0.01}]`,
			},
			{
				name: "prices are exact",
				stored: []domain.Product{
					Product(t, 1, "free", 0),
					Product(t, 2, "one cent", 1),
					Product(t, 3, "ten cents", 10),
					Product(t, 4, "half", 50),
					Product(t, 5, "cents", 1999),
					Product(t, 6, "whole", 100000),
					Product(t, 7, "largest", 999_999_999_999),
				},
				wantJSON: `[{"id":1,"name":"free","price":0},{"id":2,"name":"one cent","price":0.01},{"id":3,"name":"ten cents","price":0.1},{"id":4,"name":"half","price":0.5},{"id":5,"name":"cents","price":19.99},{"id":6,"name":"whole","price":1000},{"id":7,"name":"largest","price":9999999999.99}]`,
			},
			{
				name: "names are exact",
				stored: []domain.Product{
					Product(t, 1, "Café crème", 100),
					Product(t, 2, "日本語キーボード", 100),
					Product(t, 3, "🍣 sushi set", 100),
					Product(t, 4, `O'Reilly "Go" \ book; --`, 100),
					Product(t, 5, maxName, 100),
				},
				wantJSON: `[{"id":1,"name":"Café crème","price":1},{"id":2,"name":"日本語キーボード","price":1},{"id":3,"name":"🍣 sushi set","price":1},{"id":4,"name":"O'Reilly \"Go\" \\ book; --","price":1},{"id":5,"name":"` + maxName + `","price":1}]`,
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				source := newSource(t, tt.stored)

				got, err := source.ListProducts(context.Background())
				if err != nil {
					t.Fatalf("ListProducts: %v", err)
				}
				if got == nil {
					t.Fatal("ListProducts returned a nil slice; want non-nil")
				}
				if gotJSON := MarshalJSON(t, got); gotJSON != tt.wantJSON {
					t.Errorf("ListProducts as JSON:\n got %s\nwant %s", gotJSON, tt.wantJSON)
				}
			})
		}
	})

	t.Run("done context fails the call", func(t *testing.T) {
		tests := []struct {
			name    string
			ctx     func(tb testing.TB) context.Context
			wantErr error
		}{
			{
				name: "cancelled",
				ctx: func(testing.TB) context.Context {
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					return ctx
				},
				wantErr: context.Canceled,
			},
			{
				name: "deadline passed",
				ctx: func(tb testing.TB) context.Context {
					ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
					tb.Cleanup(cancel)
					return ctx
				},
				wantErr: context.DeadlineExceeded,
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				// A non-empty catalogue, so a source cannot pass by having
				// nothing to read.
				source := newSource(t, domain.SampleCatalogue())

				got, err := source.ListProducts(tt.ctx(t))
				CheckDoneContext(t, got, err, tt.wantErr)

				after, err := source.ListProducts(context.Background())
				if err != nil {
					t.Fatalf("ListProducts after a done context: %v", err)
				}
				if len(after) != len(domain.SampleCatalogue()) {
					t.Errorf("ListProducts after a done context returned %d products, want %d", len(after), len(domain.SampleCatalogue()))
				}
			})
		}
	})

	t.Run("result belongs to the caller", func(t *testing.T) {
		source := newSource(t, domain.SampleCatalogue())
		want := MarshalJSON(t, domain.SampleCatalogue())

		first, err := source.ListProducts(context.Background())
		if err != nil {
			t.Fatalf("ListProducts: %v", err)
		}
		first[0] = Product(t, 99, "changed by the caller", 1)

		second, err := source.ListProducts(context.Background())
		if err != nil {
			t.Fatalf("ListProducts: %v", err)
		}
		if got := MarshalJSON(t, second); got != want {
			t.Errorf("after the caller changed an earlier result, ListProducts = %s, want %s", got, want)
		}
	})

	t.Run("concurrent calls", func(t *testing.T) {
		const callers, calls = 8, 10
		source := newSource(t, domain.SampleCatalogue())
		want := MarshalJSON(t, domain.SampleCatalogue())

		var wg sync.WaitGroup
		errs := make(chan error, callers*calls)
		for range callers {
			wg.Go(func() {
				for range calls {
					got, err := source.ListProducts(context.Background())
					if err != nil {
						errs <- err
						return
					}
					// Not MarshalJSON: t.Fatal must not be called off the
					// test's goroutine.
					b, err := json.Marshal(got)
					if err != nil {
						errs <- err
						return
					}
					if string(b) != want {
						errs <- errors.New("got " + string(b) + ", want " + want)
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
	})
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

// MarshalJSON is the wire form of products, the form in which exactness
// matters: comparing it checks ids, names and prices to the byte.
func MarshalJSON(tb testing.TB, products []domain.Product) string {
	tb.Helper()
	b, err := json.Marshal(products)
	if err != nil {
		tb.Fatalf("marshal products: %v", err)
	}
	return string(b)
}

// CheckDoneContext asserts the port's rule for a call whose context ended
// (wantErr is context.Canceled or context.DeadlineExceeded): the error
// matches wantErr, it matches domain.ErrSourceUnavailable only for a passed
// deadline (the caller giving up is not the store failing), and no products
// come back with it.
func CheckDoneContext(tb testing.TB, got []domain.Product, err, wantErr error) {
	tb.Helper()
	if !errors.Is(err, wantErr) {
		tb.Fatalf("ListProducts error = %v, want one matching %v", err, wantErr)
	}
	wantUnavailable := errors.Is(wantErr, context.DeadlineExceeded)
	if unavailable := errors.Is(err, domain.ErrSourceUnavailable); unavailable != wantUnavailable {
		tb.Errorf("ListProducts error = %v; matches ErrSourceUnavailable = %t, want %t", err, unavailable, wantUnavailable)
	}
	if got != nil {
		tb.Errorf("ListProducts returned %d products with an error; want none", len(got))
	}
}
