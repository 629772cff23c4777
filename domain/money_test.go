package domain_test

import (
	"errors"
	"testing"

	"github.com/trustchain/trustchain/domain"
)

func TestParseMoney(t *testing.T) {
	tests := []struct {
		in        string
		wantCents int64
		wantJSON  string
		wantErr   bool
	}{
		{in: "1000", wantCents: 100000, wantJSON: "1000"},
		{in: "1000.00", wantCents: 100000, wantJSON: "1000"},
		{in: "19.99", wantCents: 1999, wantJSON: "19.99"},
		{in: "19.50", wantCents: 1950, wantJSON: "19.5"},
		{in: "0.05", wantCents: 5, wantJSON: "0.05"},
		{in: "0", wantCents: 0, wantJSON: "0"},
		{in: "9999999999.99", wantCents: 999999999999, wantJSON: "9999999999.99"},
		{in: "1.230", wantCents: 123, wantJSON: "1.23"},
		{in: "19.999", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "1e3", wantErr: true},
		{in: "", wantErr: true},
		{in: ".5", wantErr: true},
		{in: "5.", wantErr: true},
		{in: "01", wantErr: true},
		{in: `"10"`, wantErr: true},
		{in: "10000000000", wantErr: true},
		{in: "99999999999999999999", wantErr: true},
		{in: "NaN", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := domain.ParseMoney(tt.in)
			if tt.wantErr {
				if !errors.Is(err, domain.ErrInvalidProduct) {
					t.Fatalf("ParseMoney(%q) error = %v, want ErrInvalidProduct", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMoney(%q): %v", tt.in, err)
			}
			if m.Cents() != tt.wantCents {
				t.Errorf("cents = %d, want %d", m.Cents(), tt.wantCents)
			}
			if got := m.String(); got != tt.wantJSON {
				t.Errorf("String = %s, want %s", got, tt.wantJSON)
			}
			if got := string(m.Append([]byte("x"))); got != "x"+tt.wantJSON {
				t.Errorf("Append = %s, want x%s", got, tt.wantJSON)
			}
		})
	}
}

func TestMoneyDecimal(t *testing.T) {
	for cents, want := range map[int64]string{0: "0.00", 5: "0.05", 1999: "19.99", 100000: "1000.00"} {
		m, err := domain.NewMoneyFromCents(cents)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Decimal(); got != want {
			t.Errorf("Decimal(%d) = %q, want %q", cents, got, want)
		}
	}
	if _, err := domain.NewMoneyFromCents(-1); !errors.Is(err, domain.ErrInvalidProduct) {
		t.Errorf("negative cents accepted: %v", err)
	}
}
