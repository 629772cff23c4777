package client

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzChallenge: a challenge passed on is short, printable, one line, and
// a Bearer challenge.
func FuzzChallenge(f *testing.F) {
	f.Add(`Bearer error="invalid_token"`)
	f.Add(`Bearer error="insufficient_scope", scope="read:products"`)
	f.Add("Bearer error=\"x\r\nSet-Cookie: a=b\"")
	f.Fuzz(func(t *testing.T, c string) {
		if !validChallenge(c) {
			return
		}
		if len(c) > maxChallengeLength || (c != "" && !strings.HasPrefix(c, "Bearer")) || strings.ContainsAny(c, "\r\n\x00") || !utf8.ValidString(c) {
			t.Fatalf("passed on %q", c)
		}
	})
}
