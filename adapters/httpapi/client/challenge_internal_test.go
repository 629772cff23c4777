package client

import (
	"strings"
	"testing"
)

func TestRelayChallenge(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
		ok     bool
	}{
		{"bare Bearer", []string{`Bearer`}, `Bearer`, true},
		{"error and scope kept", []string{`Bearer error="insufficient_scope", scope="read:products admin"`}, `Bearer error="insufficient_scope", scope="read:products admin"`, true},
		{"description, uri and realm dropped", []string{`Bearer realm="evil", error="invalid_token", error_description="call +1 555 0100", error_uri="https://evil.example/"`}, `Bearer error="invalid_token"`, true},
		{"token values are quoted", []string{`bearer error=invalid_token`}, `Bearer error="invalid_token"`, true},
		{"parameter names are case-insensitive", []string{`Bearer ERROR="invalid_token"`}, `Bearer error="invalid_token"`, true},
		{"whitespace around = is allowed", []string{`Bearer error = "invalid_token"`}, `Bearer error="invalid_token"`, true},
		{"Bearer and DPoP in one value", []string{`Bearer error="invalid_token", DPoP algs="ES256 PS256", error="invalid_token"`}, `Bearer error="invalid_token", DPoP error="invalid_token", algs="ES256 PS256"`, true},
		{"Bearer and DPoP in two values", []string{`Bearer`, `DPoP algs="ES256"`}, `Bearer, DPoP algs="ES256"`, true},
		{"other schemes dropped", []string{`Basic realm="x", Bearer error="invalid_token"`}, `Bearer error="invalid_token"`, true},
		{"only another scheme", []string{`Basic realm="x"`}, ``, true},
		{"an unknown error code", []string{`Bearer error="visit evil.example"`}, ``, false},
		{"a repeated parameter", []string{`Bearer error="invalid_token", error="insufficient_scope"`}, ``, false},
		{"a scope with a quote", []string{`Bearer error="insufficient_scope", scope="a\"b"`}, ``, false},
		{"a stray quote", []string{`Bearer error="a"b"`}, ``, false},
		{"an unterminated quote", []string{`Bearer error="invalid_token`}, ``, false},
		{"a control character", []string{"Bearer error=\"invalid_token\", error_description=\"a\x1b[2Jb\""}, ``, false},
		{"token68", []string{`Basic dXNlcjpwYXNz==`}, ``, false},
		{"empty", nil, ``, true},
		{"too long", []string{`Bearer error="invalid_token", realm="` + strings.Repeat("x", 600) + `"`}, ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := relayChallenge(tt.values)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Fatalf("relayChallenge(%q) = %q, %v; want %q, %v", tt.values, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// FuzzChallenge: a challenge passed on is short, printable, one line, only
// Bearer and DPoP, with no parameter but error, scope and algs, and reads
// back as itself.
func FuzzChallenge(f *testing.F) {
	f.Add(`Bearer error="invalid_token"`)
	f.Add(`Bearer error="insufficient_scope", scope="read:products"`)
	f.Add(`Bearer realm="x", error_description="y", DPoP algs="ES256"`)
	f.Add("Bearer error=\"x\r\nSet-Cookie: a=b\"")
	f.Fuzz(func(t *testing.T, c string) {
		got, ok := relayChallenge([]string{c})
		if !ok || got == "" {
			return
		}
		if len(got) > maxChallengeLength || strings.ContainsAny(got, "\r\n\x00") {
			t.Fatalf("passed on %q", got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] > 0x7e {
				t.Fatalf("passed on %q", got)
			}
		}
		challenges, ok := parseChallenges(got)
		if !ok {
			t.Fatalf("passed on %q, which does not parse", got)
		}
		for _, ch := range challenges {
			if ch.scheme != "Bearer" && ch.scheme != "DPoP" {
				t.Fatalf("passed on scheme %q in %q", ch.scheme, got)
			}
			for _, p := range ch.params {
				if p[0] != "error" && p[0] != "scope" && p[0] != "algs" {
					t.Fatalf("passed on parameter %q in %q", p[0], got)
				}
			}
		}
		if again, ok := relayChallenge([]string{got}); !ok || again != got {
			t.Fatalf("%q reads back as %q, %v", got, again, ok)
		}
	})
}
