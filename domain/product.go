package domain

import (
	"fmt"
	"unicode/utf8"
)

// MaxNameLength matches the width of the name column in the store.
const MaxNameLength = 255

// Product is one catalogue entry. Its fields are private so that every
// Product in the program has passed NewProduct's checks.
type Product struct {
	id    int64
	name  string
	price Money
}

// NewProduct validates and returns a product.
func NewProduct(id int64, name string, price Money) (Product, error) {
	if id <= 0 {
		return Product{}, fmt.Errorf("%w: id %d is not positive", ErrInvalidProduct, id)
	}
	if name == "" {
		return Product{}, fmt.Errorf("%w: product %d has an empty name", ErrInvalidProduct, id)
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLength {
		return Product{}, fmt.Errorf("%w: product %d name is not valid UTF-8 of at most %d characters", ErrInvalidProduct, id, MaxNameLength)
	}
	return Product{id: id, name: name, price: price}, nil
}

// UnmarshalProductFromStore rebuilds a product from a row read from storage.
// The store's own constraints already held when the row was written, but a
// row is still checked: a bad row must surface as an error, not a bad answer.
func UnmarshalProductFromStore(id int64, name, decimalPrice string) (Product, error) {
	price, err := ParseMoney(decimalPrice)
	if err != nil {
		return Product{}, fmt.Errorf("product %d: %w", id, err)
	}
	return NewProduct(id, name, price)
}

// ID returns the product's identifier.
func (p Product) ID() int64 { return p.id }

// Name returns the product's display name.
func (p Product) Name() string { return p.name }

// Price returns the product's price.
func (p Product) Price() Money { return p.price }
