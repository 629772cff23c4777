package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trustchain/trustchain/domain"
)

func money(t testing.TB, s string) domain.Money {
	t.Helper()
	m, err := domain.ParseMoney(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNewProduct(t *testing.T) {
	tests := []struct {
		name    string
		id      int64
		pname   string
		wantErr bool
	}{
		{"valid", 1, "Laptop", false},
		{"unicode name", 2, "Clé USB – 64 Go", false},
		{"max length", 3, strings.Repeat("é", domain.MaxNameLength), false},
		{"zero id", 0, "Laptop", true},
		{"negative id", -4, "Laptop", true},
		{"empty name", 5, "", true},
		{"name too long", 6, strings.Repeat("x", domain.MaxNameLength+1), true},
		{"invalid utf-8", 7, "\xff", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := domain.NewProduct(tt.id, tt.pname, money(t, "1"))
			if tt.wantErr {
				if !errors.Is(err, domain.ErrInvalidProduct) {
					t.Fatalf("error = %v, want ErrInvalidProduct", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.ID() != tt.id || p.Name() != tt.pname {
				t.Errorf("got %d %q", p.ID(), p.Name())
			}
		})
	}
}

func TestUnmarshalProductFromStore(t *testing.T) {
	p, err := domain.UnmarshalProductFromStore(3, "USB-C Cable", "19.99")
	if err != nil || p.Price().String() != "19.99" {
		t.Fatalf("got %v, %v", p, err)
	}
	if _, err := domain.UnmarshalProductFromStore(3, "x", "19.999"); !errors.Is(err, domain.ErrInvalidProduct) {
		t.Fatalf("bad stored price accepted: %v", err)
	}
}

func TestPrincipalHasScope(t *testing.T) {
	p := domain.NewPrincipal("auth0|user123", []string{"read:products", "openid"})
	tests := []struct {
		scope string
		want  bool
	}{
		{"", true},
		{"read:products", true},
		{"write:products", false},
		{"read", false},
	}
	for _, tt := range tests {
		if got := p.HasScope(tt.scope); got != tt.want {
			t.Errorf("HasScope(%q) = %v, want %v", tt.scope, got, tt.want)
		}
	}
	if domain.NewPrincipal("x", nil).HasScope("read:products") {
		t.Error("a principal without scopes passed a scope check")
	}
}

func TestTokenErrorMatchesSentinel(t *testing.T) {
	err := error(&domain.TokenError{Reason: domain.ReasonExpired, Err: errors.New("exp")})
	wrapped := errors.Join(errors.New("ctx"), err)
	if !errors.Is(wrapped, domain.ErrTokenInvalid) {
		t.Fatal("TokenError does not match ErrTokenInvalid")
	}
	var te *domain.TokenError
	if !errors.As(wrapped, &te) || te.Reason != domain.ReasonExpired {
		t.Fatal("reason lost")
	}
}

func TestEnvelopeMetadata(t *testing.T) {
	at := time.Date(2025, 2, 12, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	if got, want := domain.NewEnvelope(at).Metadata(), "request processed at 2025-02-12T08:00:00Z"; got != want {
		t.Fatalf("Metadata = %q, want %q (RFC 3339 in UTC, to the second)", got, want)
	}
}

func TestSampleCatalogueStartsWithTheSeedProduct(t *testing.T) {
	c := domain.SampleCatalogue()
	if len(c) == 0 || c[0].ID() != 1 || c[0].Name() != "Laptop" || c[0].Price().String() != "1000" {
		t.Fatalf("catalogue = %+v", c)
	}
}

func TestChainIsOneLine(t *testing.T) {
	hops := domain.Chain()
	if len(hops) == 0 || !hops[0].IsEdge() || !hops[len(hops)-1].ReadsStore() {
		t.Fatalf("chain must run from the edge to the store: %+v", hops)
	}
	for i, h := range hops {
		got, ok := domain.HopOf(h.Role)
		if !ok || got != h {
			t.Errorf("HopOf(%s) = %+v, %v", h.Role, got, ok)
		}
		if h.ServiceAccount == "" || h.Budget <= 0 {
			t.Errorf("%s: service account %q, budget %s", h.Role, h.ServiceAccount, h.Budget)
		}
		if i+1 < len(hops) {
			next := hops[i+1]
			if h.Calls != next.Role || next.CalledBy != h.Role {
				t.Errorf("%s calls %q but the next row is %s, called by %q", h.Role, h.Calls, next.Role, next.CalledBy)
			}
			if next.Budget >= h.Budget {
				t.Errorf("%s's budget %s does not nest inside %s's %s", next.Role, next.Budget, h.Role, h.Budget)
			}
		}
		if h.Envelope != h.IsEdge() {
			t.Errorf("%s: only the edge wraps the envelope", h.Role)
		}
	}
	if _, ok := domain.HopOf("d"); ok {
		t.Error("an unknown role has a row")
	}
}
