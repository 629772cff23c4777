package oidc_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/trustchain/trustchain/domain"
)

// FuzzVerify feeds the verifier what an attacker controls, the raw token,
// against a real issuer's keys: it never panics, never accepts anything but
// a token the issuer signed, and every refusal is a bounded reason with no
// piece of the token in its text.
func FuzzVerify(f *testing.F) {
	ti := newTestIssuer(f, false)
	cfg := testConfig(ti)
	cfg.CacheSize = 100
	v := startVerifier(f, cfg)
	valid := ti.mint(f, nil)
	parts := strings.Split(valid, ".")
	f.Add(valid)
	for _, respelled := range respellings(parts[2]) { // the same signature, other bytes
		f.Add(parts[0] + "." + parts[1] + "." + respelled)
	}
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + "..." + parts[2])
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(strings.Repeat("a", 20_000))
	f.Add(`{"payload":"e30","signatures":[]}`)
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := v.Verify(context.Background(), raw)
		if err == nil {
			if raw != valid || p.Subject() != "user-1" {
				t.Fatalf("accepted %q as %v", raw, p)
			}
			return
		}
		var te *domain.TokenError
		if !errors.As(err, &te) || domain.TokenReason(err) != te.Reason {
			t.Fatalf("refusal %v has no bounded reason", err)
		}
		for _, part := range strings.Split(raw, ".") {
			if len(part) >= 16 && strings.Contains(err.Error(), part) {
				t.Fatalf("the refusal quotes the token: %v", err)
			}
		}
	})
}
