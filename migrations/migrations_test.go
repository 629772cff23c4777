package migrations_test

import (
	"testing"

	"github.com/trustchain/trustchain/migrations"
)

// TestLoad guards the file naming: a file bun/migrate cannot parse, or an up
// without its down, would otherwise only show up against a live database.
func TestLoad(t *testing.T) {
	ms, err := migrations.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	sorted := ms.Sorted()
	if len(sorted) == 0 {
		t.Fatal("Load found no migrations")
	}
	if got, want := sorted[0].String(), "20250701000000_create_products"; got != want {
		t.Errorf("first migration = %q, want %q", got, want)
	}
	for _, m := range sorted {
		if m.Up == nil || m.Down == nil {
			t.Errorf("migration %s: up present = %t, down present = %t; want both", m, m.Up != nil, m.Down != nil)
		}
	}
}
