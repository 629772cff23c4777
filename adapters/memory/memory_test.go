package memory_test

import (
	"context"
	"testing"

	"github.com/trustchain/trustchain/adapters/memory"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/storetest"
	"github.com/trustchain/trustchain/ports"
)

func TestStoreContract(t *testing.T) {
	storetest.RunProductSourceContract(t, func(_ testing.TB, products []domain.Product) (ports.ProductSource, context.Context) {
		return memory.New(products...), context.Background()
	})
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		products []domain.Product
		want     string
	}{
		{name: "no products", products: nil, want: ``},
		{
			name: "a later product replaces an earlier one with the same id",
			products: []domain.Product{
				storetest.Product(t, 2, "b", 100),
				storetest.Product(t, 1, "old", 100),
				storetest.Product(t, 1, "new", 250),
			},
			want: `1 "new" 2.5; 2 "b" 1`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := storetest.List(t, context.Background(), memory.New(tt.products...), 0, 10)
			if got := storetest.Text(page.Products()); got != tt.want {
				t.Errorf("ListProducts = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestNewCopiesItsInput(t *testing.T) {
	products := domain.SampleCatalogue()
	store := memory.New(products...)
	products[0] = storetest.Product(t, 1, "changed after New", 1)

	page := storetest.List(t, context.Background(), store, 0, 10)
	if got, want := storetest.Text(page.Products()), storetest.Text(domain.SampleCatalogue()); got != want {
		t.Errorf("ListProducts = %s, want %s", got, want)
	}
}
