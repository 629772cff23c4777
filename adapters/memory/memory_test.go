package memory_test

import (
	"context"
	"testing"

	"github.com/trustchain/trustchain/adapters/memory"
	"github.com/trustchain/trustchain/adapters/storetest"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

func TestStoreContract(t *testing.T) {
	storetest.RunProductSourceContract(t, func(_ testing.TB, products []domain.Product) ports.ProductSource {
		return memory.New(products...)
	})
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		products []domain.Product
		wantJSON string
	}{
		{
			name:     "no products",
			products: nil,
			wantJSON: `[]`,
		},
		{
			name: "a later product replaces an earlier one with the same id",
			products: []domain.Product{
				storetest.Product(t, 2, "b", 100),
				storetest.Product(t, 1, "old", 100),
				storetest.Product(t, 1, "new", 250),
			},
			wantJSON: `[{"id":1,"name":"new","price":2.5},{"id":2,"name":"b","price":1}]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := memory.New(tt.products...).ListProducts(context.Background())
			if err != nil {
				t.Fatalf("ListProducts: %v", err)
			}
			if g := storetest.MarshalJSON(t, got); g != tt.wantJSON {
				t.Errorf("ListProducts = %s, want %s", g, tt.wantJSON)
			}
		})
	}
}

func TestNewCopiesItsInput(t *testing.T) {
	products := domain.SampleCatalogue()
	store := memory.New(products...)
	products[0] = storetest.Product(t, 1, "changed after New", 1)

	got, err := store.ListProducts(context.Background())
	if err != nil {
		t.Fatalf("ListProducts: %v", err)
	}
	if g, want := storetest.MarshalJSON(t, got), storetest.MarshalJSON(t, domain.SampleCatalogue()); g != want {
		t.Errorf("ListProducts = %s, want %s", g, want)
	}
}
