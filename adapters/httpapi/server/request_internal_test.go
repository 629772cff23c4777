package server

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/trustchain/trustchain/domain"
)

// FuzzRequestID: an id taken from a caller is short and plain.
func FuzzRequestID(f *testing.F) {
	f.Add("0b8f2c8e-7a8e-4d6a-9f0e-3f2b1c2d4e5f")
	f.Add("a b")
	f.Add(strings.Repeat("a", 129))
	safe := regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	f.Fuzz(func(t *testing.T, id string) {
		if validRequestID(id) && !safe.MatchString(id) {
			t.Fatalf("accepted %q", id)
		}
	})
}

// FuzzBearerToken: the Authorization header yields a token with no spaces,
// or a refusal that is missing or a malformed token, never anything else.
func FuzzBearerToken(f *testing.F) {
	f.Add("Bearer abc.def.ghi")
	f.Add("bearer  x")
	f.Add("Basic dXNlcjpwYXNz")
	f.Add("Bearer a b")
	f.Add("DPoP abc.def.ghi")
	f.Add("dpop x")
	f.Fuzz(func(t *testing.T, header string) {
		r, _ := http.NewRequest(http.MethodGet, "/products", nil)
		r.Header["Authorization"] = []string{header}
		tok, _, err := accessToken(r, true)
		switch {
		case err == nil:
			if tok == "" || strings.ContainsAny(tok, " \t") || !strings.Contains(header, tok) {
				t.Fatalf("%q gave token %q", header, tok)
			}
		case !errors.Is(err, domain.ErrTokenMissing) && !errors.Is(err, domain.ErrTokenInvalid):
			t.Fatalf("%q: unexpected error %v", header, err)
		}
	})
}
