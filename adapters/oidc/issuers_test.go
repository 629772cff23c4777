package oidc_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustchain/trustchain/adapters/oidc"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/testclock"
)

const wantScope = "read:products"

// signingKey is a key the test issuer publishes, with its kid and the JWK
// alg it is published under ("" for none).
type signingKey struct {
	kid    string
	priv   crypto.Signer
	jwkAlg string
}

// publish makes ti's JWKS exactly these keys' public halves.
func publish(tb testing.TB, ti *testIssuer, keys ...signingKey) {
	tb.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: k.jwkAlg, Use: "sig"})
	}
	body := must(json.Marshal(set))
	ti.jwksOverride.Store(&body)
}

// signTyp signs claims with alg and key under kid, with the typ header.
func signTyp(tb testing.TB, alg jose.SignatureAlgorithm, key any, kid, typ string, claims map[string]any) string {
	tb.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", kid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer := must(jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts))
	jws := must(signer.Sign(must(json.Marshal(claims))))
	return must(jws.CompactSerialize())
}

// TestIssuerShapes: tokens shaped as each common issuer issues them, under
// the default --scope-claims, grant the scope when they carry it and not
// otherwise. The verifier's principal is what the HTTP layer's scope check
// reads (domain.Principal.HasScope): 200 against 403 insufficient_scope.
func TestIssuerShapes(t *testing.T) {
	ti := newTestIssuer(t, false)
	rsaKey := signingKey{"rsa-1", newRSAKey(t, 2048), ""}
	ecKey := signingKey{"ec-1", must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)), "ES256"}
	publish(t, ti, rsaKey, ecKey)
	cfg := testConfig(ti)
	cfg.SigningAlgs = []string{"RS256", "ES256"}
	cfg.CacheSize = 100
	v := startVerifier(t, cfg)

	base := func(edit func(map[string]any)) map[string]any {
		c := ti.DefaultClaims("user-1")
		delete(c, "scope")
		delete(c, "permissions")
		edit(c)
		return c
	}
	shapes := []struct {
		name        string
		key         signingKey
		alg         jose.SignatureAlgorithm
		typ         string
		with, witho func(map[string]any) // the claims with the scope, and without it
	}{
		{"Okta: scp array", rsaKey, jose.RS256, "JWT",
			func(c map[string]any) { c["scp"] = []string{"openid", wantScope} },
			func(c map[string]any) { c["scp"] = []string{"openid", "profile"} }},
		{"Entra ID: scp string", rsaKey, jose.RS256, "JWT",
			func(c map[string]any) { c["scp"] = "User.Read " + wantScope },
			func(c map[string]any) { c["scp"] = "User.Read" }},
		{"Hydra: scp array, ES256 after rotation", ecKey, jose.ES256, "",
			func(c map[string]any) { c["scp"] = []string{wantScope} },
			func(c map[string]any) { c["scp"] = []string{} }},
		{"Keycloak: scope string", rsaKey, jose.RS256, "JWT",
			func(c map[string]any) { c["scope"] = "openid email " + wantScope },
			func(c map[string]any) { c["scope"] = "openid email" }},
		{"RFC 9068: at+jwt, scope", rsaKey, jose.RS256, "at+jwt",
			func(c map[string]any) { c["scope"] = wantScope },
			func(c map[string]any) { c["scope"] = "openid" }},
		{"Auth0: scope and permissions", rsaKey, jose.RS256, "JWT",
			func(c map[string]any) { c["scope"] = "openid"; c["permissions"] = []string{wantScope} },
			func(c map[string]any) { c["scope"] = "openid"; c["permissions"] = []string{"write:products"} }},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			for _, tc := range []struct {
				edit  func(map[string]any)
				grant bool
			}{{s.with, true}, {s.witho, false}} {
				token := signTyp(t, s.alg, s.key.priv, s.key.kid, s.typ, base(tc.edit))
				for attempt := range 2 { // a miss, then a cache hit
					p, err := v.Verify(context.Background(), token)
					if err != nil {
						t.Fatalf("attempt %d: Verify: %v", attempt+1, err)
					}
					if p.HasScope(wantScope) != tc.grant {
						t.Fatalf("attempt %d: scopes %q grant %s = %v, want %v", attempt+1, p.Scopes(), wantScope, !tc.grant, tc.grant)
					}
				}
			}
		})
	}
}

// TestNearMissScopesAreNotGranted: a scope matches exactly, never as a
// prefix, a substring, another case, or by splitting an array's string.
func TestNearMissScopesAreNotGranted(t *testing.T) {
	ti := newTestIssuer(t, false)
	v := startVerifier(t, testConfig(ti))
	nearMisses := map[string]any{
		"prefix in scope":          "read:product",
		"longer in scope":          "read:products:all",
		"other case in scope":      "Read:products",
		"comma-joined in scope":    "read:products,write:products",
		"tab-joined in scope":      "read:products\twrite:products",
		"prefix in scp array":      []string{"read:product"},
		"trailing space in array":  []string{wantScope + " "},
		"two scopes in an element": []string{wantScope + " write:products"},
		"leading space in array":   []string{" " + wantScope},
	}
	for name, value := range nearMisses {
		t.Run(name, func(t *testing.T) {
			claim := "scope"
			if _, isArray := value.([]string); isArray {
				claim = "scp"
			}
			token := ti.mint(t, func(c map[string]any) { delete(c, "permissions"); delete(c, "scope"); c[claim] = value })
			p, err := v.Verify(context.Background(), token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.HasScope(wantScope) {
				t.Fatalf("%s = %q grants %s", claim, value, wantScope)
			}
		})
	}
}

// TestScopeClaimsSetting: only the configured claims grant scopes.
func TestScopeClaimsSetting(t *testing.T) {
	ti := newTestIssuer(t, false)
	cfg := testConfig(ti)
	cfg.ScopeClaims = []string{"scp"}
	v := startVerifier(t, cfg)
	for claim, want := range map[string]bool{"scp": true, "scope": false, "permissions": false} {
		token := ti.mint(t, func(c map[string]any) {
			delete(c, "scope")
			delete(c, "permissions")
			c[claim] = []string{wantScope}
		})
		p, err := v.Verify(context.Background(), token)
		if err != nil {
			t.Fatalf("%s: Verify: %v", claim, err)
		}
		if p.HasScope(wantScope) != want {
			t.Errorf("scope in %s with --scope-claims=scp: granted %v, want %v", claim, !want, want)
		}
	}
}

func TestRequireATJWT(t *testing.T) {
	ti := newTestIssuer(t, false)
	key := signingKey{"rsa-1", newRSAKey(t, 2048), "RS256"}
	publish(t, ti, key)
	claims := ti.DefaultClaims("user-1")
	for _, require := range []bool{false, true} {
		t.Run(fmt.Sprintf("require=%v", require), func(t *testing.T) {
			cfg := testConfig(ti)
			cfg.RequireATJWT = require
			cfg.CacheSize = 100
			v := startVerifier(t, cfg)
			for typ, typed := range map[string]bool{
				"at+jwt": true, "application/at+jwt": true, "AT+JWT": true, "Application/AT+jwt": true,
				"JWT": false, "": false, "at+jwt ": false, "jwt+at": false, "application/jwt": false,
			} {
				token := signTyp(t, jose.RS256, key.priv, key.kid, typ, claims)
				for attempt := range 2 {
					_, err := v.Verify(context.Background(), token)
					if want := typed || !require; (err == nil) != want {
						t.Fatalf("typ %q, attempt %d: accepted %v, want %v (error: %v)", typ, attempt+1, err == nil, want, err)
					}
					if err != nil && reasonOf(t, err) != domain.ReasonMalformed {
						t.Fatalf("typ %q: %v, want malformed", typ, err)
					}
				}
			}
		})
	}
}

// TestSigningAlgs: each algorithm passes only when --signing-algs allows it
// and only under a key whose type, curve and JWK alg fit it.
func TestSigningAlgs(t *testing.T) {
	ti := newTestIssuer(t, false)
	rsaAny := signingKey{"rsa-any", newRSAKey(t, 2048), ""}
	rsaRS := signingKey{"rsa-rs256", newRSAKey(t, 2048), "RS256"}
	rsaPS := signingKey{"rsa-ps256", newRSAKey(t, 2048), "PS256"}
	p256 := signingKey{"p256", must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)), ""}
	p384 := signingKey{"p384", must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)), ""}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ed := signingKey{"ed", edPriv, ""}
	publish(t, ti, rsaAny, rsaRS, rsaPS, p256, p384, ed)
	claims := ti.DefaultClaims("user-1")
	tok := func(alg jose.SignatureAlgorithm, signWith signingKey, kid string) string {
		return signTyp(t, alg, signWith.priv, kid, "JWT", claims)
	}

	tests := []struct {
		name  string
		token string
		algs  []string // --signing-algs; nil is the default
		want  string   // refusal reason, "" for accepted
	}{
		{"RS256 by default", tok(jose.RS256, rsaAny, rsaAny.kid), nil, ""},
		{"ES256 refused by default", tok(jose.ES256, p256, p256.kid), nil, domain.ReasonBadAlgorithm},
		{"PS256 refused by default", tok(jose.PS256, rsaPS, rsaPS.kid), nil, domain.ReasonBadAlgorithm},
		{"EdDSA refused by default", tok(jose.EdDSA, ed, ed.kid), nil, domain.ReasonBadAlgorithm},
		{"ES256 allowed", tok(jose.ES256, p256, p256.kid), []string{"ES256"}, ""},
		{"PS256 allowed", tok(jose.PS256, rsaPS, rsaPS.kid), []string{"PS256"}, ""},
		{"PS256 under an RSA key with no JWK alg", tok(jose.PS256, rsaAny, rsaAny.kid), []string{"PS256"}, ""},
		{"ES384 allowed", tok(jose.ES384, p384, p384.kid), []string{"ES384"}, ""},
		{"EdDSA allowed", tok(jose.EdDSA, ed, ed.kid), []string{"EdDSA"}, ""},
		{"RS512 allowed", tok(jose.RS512, rsaAny, rsaAny.kid), []string{"RS256", "RS512"}, ""},
		// Mismatches: the right key's signature, the wrong algorithm for it.
		{"PS256 under a key published for RS256", tok(jose.PS256, rsaRS, rsaRS.kid), []string{"RS256", "PS256"}, domain.ReasonBadAlgorithm},
		{"RS256 under a key published for PS256", tok(jose.RS256, rsaPS, rsaPS.kid), []string{"RS256", "PS256"}, domain.ReasonBadAlgorithm},
		{"ES384 under a P-256 key", tok(jose.ES256, p256, p256.kid), []string{"ES384"}, domain.ReasonBadAlgorithm},
		{"ES256 claiming a P-384 kid", tok(jose.ES256, p256, p384.kid), []string{"ES256", "ES384"}, domain.ReasonBadAlgorithm},
		{"ES256 claiming an RSA kid", tok(jose.ES256, p256, rsaAny.kid), []string{"RS256", "ES256"}, domain.ReasonBadAlgorithm},
		{"RS256 claiming an EC kid", tok(jose.RS256, rsaAny, p256.kid), []string{"RS256", "ES256"}, domain.ReasonBadAlgorithm},
		{"EdDSA claiming an EC kid", tok(jose.EdDSA, ed, p256.kid), []string{"ES256", "EdDSA"}, domain.ReasonBadAlgorithm},
		{"HS256 keyed with nothing published", sign(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), rsaAny.kid, claims), []string{"RS256"}, domain.ReasonBadAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(ti)
			cfg.SigningAlgs = tt.algs
			cfg.CacheSize = 100
			v := startVerifier(t, cfg)
			for attempt := range 2 {
				_, err := v.Verify(context.Background(), tt.token)
				if tt.want == "" {
					if err != nil {
						t.Fatalf("attempt %d: Verify: %v", attempt+1, err)
					}
					continue
				}
				if got := reasonOf(t, err); got != tt.want {
					t.Fatalf("attempt %d: reason %q, want %q (error: %v)", attempt+1, got, tt.want, err)
				}
			}
		})
	}
	for _, bad := range []string{"HS256", "none", "RS1", "es256"} {
		cfg := testConfig(ti)
		cfg.SigningAlgs = []string{"RS256", bad}
		if _, err := oidc.New(cfg); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("SigningAlgs with %q: New = %v, want an error naming it", bad, err)
		}
	}
}

// TestNonCanonicalTokensAreRefused: a token re-spelled with non-zero
// unused bits in any segment's last character decodes to the same bytes
// and verifies under a lenient decoder; it must be refused, and must
// neither hit nor take a cache entry, with the cache on and off.
func TestNonCanonicalTokensAreRefused(t *testing.T) {
	for _, cacheSize := range []int{0, 100} {
		t.Run(fmt.Sprintf("cache=%d", cacheSize), func(t *testing.T) {
			ti := newTestIssuer(t, false)
			cfg := testConfig(ti)
			cfg.CacheSize = cacheSize
			v := startVerifier(t, cfg)
			token := ti.mint(t, nil)
			if _, err := v.Verify(context.Background(), token); err != nil {
				t.Fatalf("canonical token: %v", err)
			}
			cached := v.CacheLen()
			parts := strings.Split(token, ".")
			respelled := 0
			for i, part := range parts {
				for _, alt := range respellings(part) {
					p := slices.Clone(parts)
					p[i] = alt
					_, err := v.Verify(context.Background(), strings.Join(p, "."))
					if got := reasonOf(t, err); got != domain.ReasonMalformed {
						t.Fatalf("segment %d re-spelled: reason %q, want malformed (error: %v)", i, got, err)
					}
					respelled++
				}
			}
			if respelled == 0 {
				t.Fatal("no segment could be re-spelled: the test proves nothing")
			}
			if v.CacheLen() != cached {
				t.Fatalf("cache grew from %d to %d on re-spelled tokens", cached, v.CacheLen())
			}
			for name, bad := range map[string]string{
				"padding":      token + "=",
				"line break":   parts[0] + ".\n" + parts[1] + "." + parts[2],
				"std alphabet": strings.NewReplacer("-", "+", "_", "/").Replace(token),
			} {
				if bad == token {
					continue
				}
				_, err := v.Verify(context.Background(), bad)
				if got := reasonOf(t, err); got != domain.ReasonMalformed {
					t.Errorf("%s: reason %q, want malformed", name, got)
				}
			}
		})
	}
}

// respellings returns the other spellings of a base64url segment that a
// lenient decoder reads as the same bytes: the last character with its
// unused low bits set.
func respellings(segment string) []string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	unused := map[int]int{2: 4, 3: 2}[len(segment)%4]
	if unused == 0 {
		return nil
	}
	last := strings.IndexByte(alphabet, segment[len(segment)-1])
	var out []string
	for low := 1; low < 1<<unused; low++ {
		out = append(out, segment[:len(segment)-1]+string(alphabet[last|low]))
	}
	return out
}

// TestNewKeyIsFoundAfterTheRateBound: a key the issuer publishes after the
// hop's last fetch is unknown within MinRefreshInterval of that fetch and
// accepted on any use once it has passed (3 s by default), and a removed
// key is dropped by that same refetch.
func TestNewKeyIsFoundAfterTheRateBound(t *testing.T) {
	for _, tc := range []struct {
		name        string
		minInterval time.Duration
		bound       time.Duration
	}{
		{"default", 0, 3 * time.Second},
		{"a minute", time.Minute, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ti := newTestIssuer(t, false)
			clk := &testclock.Offset{}
			cfg := testConfig(ti)
			cfg.MinRefreshInterval = tc.minInterval
			cfg.Now = clk.Now
			v := startVerifier(t, cfg)
			ctx := context.Background()
			oldToken := ti.mint(t, nil)

			clk.Advance(time.Second) // the token's first use, a second after the startup fetch
			if err := ti.RotateKey(); err != nil {
				t.Fatal(err)
			}
			newToken := ti.mint(t, nil)
			if _, err := v.Verify(ctx, newToken); reasonOf(t, err) != domain.ReasonUnknownKID {
				t.Fatalf("new kid 1s after the last fetch: %v, want unknown_kid", err)
			}
			clk.Advance(tc.bound - 2*time.Second)
			if _, err := v.Verify(ctx, newToken); reasonOf(t, err) != domain.ReasonUnknownKID {
				t.Fatalf("new kid 1s inside the bound: %v, want unknown_kid", err)
			}
			clk.Advance(time.Second) // exactly the bound after the last fetch
			if _, err := v.Verify(ctx, newToken); err != nil {
				t.Fatalf("new kid %v after the last fetch: %v", tc.bound, err)
			}
			if _, err := v.Verify(ctx, oldToken); reasonOf(t, err) != domain.ReasonUnknownKID {
				t.Fatalf("token under the removed key: %v, want unknown_kid", err)
			}
		})
	}
}

// TestUnknownKIDFloodIsBounded: a minute of distinct forged unknown kids,
// ten a second, makes at most 20 JWKS fetches (one per 3 s), and forged
// signatures under a known kid make none.
func TestUnknownKIDFloodIsBounded(t *testing.T) {
	ti := newTestIssuer(t, false)
	clk := &testclock.Offset{}
	cfg := testConfig(ti)
	cfg.MinRefreshInterval = 0 // the default
	cfg.Now = clk.Now
	v := startVerifier(t, cfg)
	kid, _ := ti.publicKey(t)
	forged := sign(t, jose.RS256, newRSAKey(t, 2048), kid, ti.DefaultClaims("user-1"))
	ctx := context.Background()

	before := ti.jwksHits.Load()
	for i := range 600 {
		clk.Advance(100 * time.Millisecond)
		if _, err := v.Verify(ctx, withKID(t, forged, fmt.Sprintf("forged-%d", i))); reasonOf(t, err) != domain.ReasonUnknownKID {
			t.Fatalf("forged kid %d: %v, want unknown_kid", i, err)
		}
		if _, err := v.Verify(ctx, forged); reasonOf(t, err) != domain.ReasonBadSignature {
			t.Fatalf("forged signature %d: %v, want bad_signature", i, err)
		}
	}
	if got := ti.jwksHits.Load() - before; got > 20 || got < 19 {
		t.Fatalf("a minute of unknown kids made %d JWKS fetches, want 20 at most (one per 3s)", got)
	}
}

// TestECKeysOnlyOnTheirCurve: an EC key whose point is not on its curve is
// not trusted (go-jose refuses it), nor one published for another curve's
// algorithm; the same key published rightly is.
func TestECKeysOnlyOnTheirCurve(t *testing.T) {
	ti := newTestIssuer(t, false)
	priv := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	good := must(json.Marshal(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "good", Use: "sig"}))
	wrongAlg := must(json.Marshal(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "es384", Algorithm: "ES384", Use: "sig"}))
	var off map[string]any
	if err := json.Unmarshal(good, &off); err != nil {
		t.Fatal(err)
	}
	off["kid"] = "off-curve"
	y := must(base64.RawURLEncoding.DecodeString(off["y"].(string)))
	y[len(y)-1] ^= 1 // another y for the same x: y² changes, the point leaves P-256
	off["y"] = base64.RawURLEncoding.EncodeToString(y)
	body := must(json.Marshal(map[string]any{"keys": []any{json.RawMessage(good), json.RawMessage(wrongAlg), off}}))
	ti.jwksOverride.Store(&body)
	cfg := testConfig(ti)
	cfg.SigningAlgs = []string{"ES256", "ES384"}
	v := startVerifier(t, cfg)
	claims := ti.DefaultClaims("user-1")
	for kid, want := range map[string]string{"good": "", "off-curve": domain.ReasonUnknownKID, "es384": domain.ReasonUnknownKID} {
		_, err := v.Verify(context.Background(), signTyp(t, jose.ES256, priv, kid, "JWT", claims))
		if want == "" {
			if err != nil {
				t.Errorf("kid %s: %v", kid, err)
			}
			continue
		}
		if got := reasonOf(t, err); got != want {
			t.Errorf("kid %s: reason %q, want %q (error: %v)", kid, got, want, err)
		}
	}
}
