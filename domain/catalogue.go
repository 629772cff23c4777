package domain

// SampleCatalogue is the catalogue the demo serves and `trustchain seed`
// loads. Its first entry is the seed document's {1, Laptop, 1000}; the others
// show prices with cents surviving every hop exactly.
func SampleCatalogue() []Product {
	return []Product{
		mustProduct(1, "Laptop", 100000),
		mustProduct(2, "Mechanical Keyboard", 8999),
		mustProduct(3, "USB-C Cable", 1999),
	}
}

// mustProduct is only for the literal catalogue above, whose values are
// known to be valid; a panic here is a programming error caught by tests.
func mustProduct(id int64, name string, cents int64) Product {
	price, err := NewMoneyFromCents(cents)
	if err != nil {
		panic(err)
	}
	p, err := NewProduct(id, name, price)
	if err != nil {
		panic(err)
	}
	return p
}
