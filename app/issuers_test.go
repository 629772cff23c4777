package app_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/domain"
)

// TestIssuerShapesThroughTheChain: tokens shaped as Okta, Entra ID, Hydra,
// Keycloak and Auth0 issue them get 200 from A with the required scope and
// 403 insufficient_scope without it, under the default --scope-claims; a
// near-miss scope is 403. (RFC 9068's typ header, and the algorithms, are
// the oidc adapter's TestIssuerShapes: the demo issuer mints RS256 JWTs.)
func TestIssuerShapesThroughTheChain(t *testing.T) {
	c := startChain(t, chainOptions{})
	shape := func(claims map[string]any) string {
		return c.token(func(m map[string]any) {
			delete(m, "scope")
			delete(m, "permissions")
			for k, v := range claims {
				m[k] = v
			}
		})
	}
	tests := []struct {
		name   string
		claims map[string]any
		want   int
	}{
		{"Okta, scp array", map[string]any{"scp": []string{"openid", scope}}, 200},
		{"Okta, without", map[string]any{"scp": []string{"openid"}}, 403},
		{"Entra ID, scp string", map[string]any{"scp": "User.Read " + scope}, 200},
		{"Entra ID, without", map[string]any{"scp": "User.Read"}, 403},
		{"Hydra, scp array", map[string]any{"scp": []string{scope}}, 200},
		{"Hydra, without", map[string]any{"scp": []string{}}, 403},
		{"Keycloak, scope string", map[string]any{"scope": "openid " + scope}, 200},
		{"Keycloak, without", map[string]any{"scope": "openid"}, 403},
		{"Auth0, permissions", map[string]any{"scope": "openid", "permissions": []string{scope}}, 200},
		{"Auth0, without", map[string]any{"scope": "openid", "permissions": []string{"write:products"}}, 403},
		{"near miss: prefix", map[string]any{"scope": "read:product"}, 403},
		{"near miss: space inside an array element", map[string]any{"scp": []string{scope + " "}}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := get(t, nil, c.url(roleA)+"/products", shape(tt.claims), nil)
			if status != tt.want {
				t.Fatalf("status %d, want %d: %s", status, tt.want, body)
			}
			if tt.want == 403 && !strings.HasPrefix(h.Get("WWW-Authenticate"), `Bearer error="insufficient_scope"`) {
				t.Fatalf("challenge %q, want insufficient_scope", h.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestStrictTokenEdgesThroughTheChain: an nbf of 1e300, an exp sent as a
// string and a signature re-spelled with non-zero padding bits are 401
// invalid_token at A, on the first use and the second (the cache's turn).
func TestStrictTokenEdgesThroughTheChain(t *testing.T) {
	c := startChain(t, chainOptions{})
	good := c.token(nil)
	if status, _, body := get(t, nil, c.url(roleA)+"/products", good, nil); status != 200 {
		t.Fatalf("good token: %d %s", status, body)
	}
	bad := map[string]string{
		"nbf 1e300":       c.token(func(m map[string]any) { m["nbf"] = 1e300 }),
		"exp as a string": c.token(func(m map[string]any) { m["exp"] = strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) }),
		"re-spelled":      respell(good),
	}
	for name, tok := range bad {
		t.Run(name, func(t *testing.T) {
			for range 2 {
				status, header, body := get(t, nil, c.url(roleA)+"/products", tok, nil)
				if status != 401 || header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
					t.Fatalf("%d %q %s", status, header.Get("WWW-Authenticate"), body)
				}
			}
		})
	}
}

// respell sets the lowest unused bit of the signature's last character,
// which a lenient base64url decoder ignores. An RS256 signature of a
// 2048-bit key is 256 bytes: its last character carries 4 unused bits.
func respell(token string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, token[len(token)-1])
	return token[:len(token)-1] + string(alphabet[last|1])
}

// TestWarnsWhenNoScopeIsRequired: a role without --required-scope says so
// loudly at startup, as --peer-auth=off does; one with it says nothing.
func TestWarnsWhenNoScopeIsRequired(t *testing.T) {
	c := startChain(t, chainOptions{configure: func(role domain.Role, cfg *app.Config) {
		if role == roleC {
			cfg.RequiredScope = ""
		}
	}})
	const warning = `"level":"WARN","msg":"NO SCOPE IS REQUIRED`
	if !strings.Contains(c.logs[roleC].String(), warning) {
		t.Errorf("C, without --required-scope, logged no warning:\n%s", c.logs[roleC].String())
	}
	if strings.Contains(c.logs[roleA].String(), warning) {
		t.Error("A, with --required-scope, warned that none is required")
	}
}
