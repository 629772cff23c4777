package oauthlogin

import (
	"bytes"
	"encoding/base64"
	"testing"
)

func TestTerminalSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ABCD-EFGH", "ABCD-EFGH"},
		{"https://issuer.example/activate?user_code=AB", "https://issuer.example/activate?user_code=AB"},
		{"Zürich ✓", "Zürich ✓"},
		{"\x1b[2J\x1b]0;pwned\x07", `\x1b[2J\x1b]0;pwned\a`},
		{"a\r\nb\tc", `a\r\nb\tc`},
		{"\u009b31m", `\u009b31m`},                           // C1 CSI
		{"moc.live\u202e//:sptth", `moc.live\u202e//:sptth`}, // right-to-left override
		{"\xff\xfe", `\xff\xfe`},                             // invalid UTF-8
		{"\x7f", `\x7f`},
	}
	for _, tt := range tests {
		if got := terminalSafe(tt.in); got != tt.want {
			t.Errorf("terminalSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func jwt(payload string) string {
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
}

func TestWriteSummary(t *testing.T) {
	tests := []struct {
		name  string
		token string
		asked []string
		want  string
	}{
		{"Auth0: scope and permissions", jwt(`{"sub":"auth0|alice","scope":"openid profile read:products","permissions":["read:products"]}`),
			[]string{"openid", "profile", "read:products"}, "logged in as auth0|alice; scopes openid profile read:products\n"},
		{"Hydra: scp array", jwt(`{"sub":"u1","scp":["read:products"]}`),
			[]string{"read:products"}, "logged in as u1; scopes read:products\n"},
		{"Entra: scp string", jwt(`{"sub":"u2","scp":"read:products write:products"}`),
			nil, "logged in as u2; scopes read:products write:products\n"},
		{"a scope asked for and not granted", jwt(`{"sub":"bob","scope":"openid profile"}`),
			[]string{"openid", "profile", "email", "read:products"}, "logged in as bob; scopes openid profile (warning: the token does not grant read:products, asked with --scope)\n"},
		{"a string is split on spaces only, as the roles split it", jwt(`{"sub":"bob","scope":"read:products\twrite"}`), []string{"read:products"},
			`logged in as bob; scopes read:products\twrite (warning: the token does not grant read:products, asked with --scope)` + "\n"},
		{"no scopes", jwt(`{"sub":"bob"}`), []string{"read:products"},
			"logged in as bob; no scopes (warning: the token does not grant read:products, asked with --scope)\n"},
		{"the issuer's text is escaped", jwt(`{"sub":"x\u001b[2Jy","scope":"a\u0007"}`), nil, `logged in as x\x1b[2Jy; scopes a\a` + "\n"},
		{"an opaque token", "opaque-token", nil, "logged in; the access token is not a JWT this command can read (not three segments)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := writeSummary(&out, tt.token, tt.asked); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Fatalf("summary = %q\nwant      %q", out.String(), tt.want)
			}
		})
	}
}
