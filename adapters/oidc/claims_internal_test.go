package oidc

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestCanonicalSegmentIsStrictBase64URL: the cheap check Verify runs before
// the cache accepts exactly the segments base64.RawURLEncoding.Strict
// decodes, line breaks aside (Strict skips them; a token has none).
func TestCanonicalSegmentIsStrictBase64URL(t *testing.T) {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. "
	rng := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	for range 200_000 {
		var b strings.Builder
		for range rng.IntN(9) {
			// Mostly the alphabet, so that many segments are valid.
			if rng.IntN(20) == 0 {
				b.WriteByte(chars[64+rng.IntN(len(chars)-64)])
			} else {
				b.WriteByte(chars[rng.IntN(64)])
			}
		}
		s := b.String()
		_, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if got, want := canonicalSegment(s), err == nil; got != want {
			t.Fatalf("canonicalSegment(%q) = %v, strict decoding says %v", s, got, want)
		}
		if err == nil {
			accepted++
		}
	}
	if accepted < 10_000 {
		t.Fatalf("only %d valid segments generated: the comparison proves little", accepted)
	}
}

func TestCanonical(t *testing.T) {
	for raw, want := range map[string]bool{
		"eyJh.e30.c2ln":   true,
		"eyJh.e30.":       true, // an empty signature parses; alg none is refused later
		"eyJh.e30":        false,
		"eyJh.e30.c2ln.":  false,
		"eyJh.e30.c2k":    true,  // "si"
		"eyJh.e30.c2l":    false, // "si" with an unused bit set
		"eyJh.e30=.c2ln":  false,
		"eyJh.e3\n0.c2ln": false,
		"":                false,
	} {
		if got := canonical(raw) == nil; got != want {
			t.Errorf("canonical(%q) ok = %v, want %v", raw, got, want)
		}
	}
}

func BenchmarkCanonical(b *testing.B) {
	seg := strings.Repeat("eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ", 10)
	raw := seg + "." + seg + seg + "." + seg
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if canonical(raw) != nil {
			b.Fatal("refused")
		}
	}
}

// BenchmarkParseClaims is the claims decode of a miss, on an Auth0-shaped
// payload: compare it, in the same run, with BenchmarkVerify's whole miss.
func BenchmarkParseClaims(b *testing.B) {
	payload := []byte(`{"iss":"https://tenant.auth0.com/","sub":"auth0|0123456789abcdef","aud":["https://api.example","https://tenant.auth0.com/userinfo"],"iat":1765000000,"exp":1765086400,"scope":"openid profile read:products","permissions":["read:products","write:products"],"azp":"client"}`)
	claims := []string{"scope", "scp", "permissions"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseClaims(payload, claims); err != nil {
			b.Fatal(err)
		}
	}
}
