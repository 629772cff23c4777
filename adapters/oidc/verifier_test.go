package oidc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustchain/trustchain/adapters/oidc"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/testclock"
)

func TestNewValidatesConfig(t *testing.T) {
	valid := oidc.Config{Issuer: "https://tenant.auth0.com/", Audience: testAudience}
	tests := []struct {
		name   string
		mutate func(*oidc.Config)
	}{
		{"no issuer", func(c *oidc.Config) { c.Issuer = "" }},
		{"relative issuer", func(c *oidc.Config) { c.Issuer = "tenant.auth0.com/" }},
		{"no audience", func(c *oidc.Config) { c.Audience = "" }},
		{"negative timeout", func(c *oidc.Config) { c.HTTPTimeout = -time.Second }},
		{"negative body cap", func(c *oidc.Config) { c.MaxResponseBytes = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.mutate(&cfg)
			if _, err := oidc.New(cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
	if _, err := oidc.New(valid); err != nil {
		t.Fatalf("New refused a valid config: %v", err)
	}
}

func TestNotReadyUntilStartLoadsKeys(t *testing.T) {
	ti := newTestIssuer(t, false)
	v, err := oidc.New(testConfig(ti))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := v.Ready(ctx); !errors.Is(err, domain.ErrVerifierNotReady) {
		t.Fatalf("Ready before Start = %v, want ErrVerifierNotReady", err)
	}
	_, err = v.Verify(ctx, ti.mint(t, nil))
	if !errors.Is(err, domain.ErrVerifierNotReady) || errors.Is(err, domain.ErrTokenInvalid) {
		t.Fatalf("Verify before Start = %v, want ErrVerifierNotReady only", err)
	}
	if ti.discoveryHits.Load() != 0 || ti.jwksHits.Load() != 0 {
		t.Fatal("New or Verify did network I/O before Start")
	}
	if err := v.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := v.Start(ctx); err != nil {
		t.Fatalf("a second Start = %v, want nil: the verifier is already up", err)
	}
	if ti.discoveryHits.Load() != 1 {
		t.Fatalf("discovery hits = %d, want 1", ti.discoveryHits.Load())
	}
	if _, err := v.Verify(ctx, ti.mint(t, nil)); err != nil {
		t.Fatalf("Verify after ready: %v", err)
	}
}

func TestVerifyAcceptsValidTokens(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			ti := newTestIssuer(t, useTLS)
			cfg := testConfig(ti)
			cfg.ClockSkew = 2 * time.Minute
			v := startVerifier(t, cfg)
			tests := []struct {
				name       string
				edit       func(map[string]any)
				wantScopes []string
			}{
				{"Auth0 shape, array aud", nil, []string{"read:products"}},
				{"string aud", func(c map[string]any) { c["aud"] = testAudience }, []string{"read:products"}},
				{
					"scope and permissions merged",
					func(c map[string]any) {
						c["scope"] = "read:products openid"
						c["permissions"] = []string{"write:products", "read:products"}
					},
					[]string{"read:products", "openid", "write:products"},
				},
				{"permissions only", func(c map[string]any) { delete(c, "scope") }, []string{"read:products"}},
				{"no scopes", func(c map[string]any) { delete(c, "scope"); delete(c, "permissions") }, nil},
				{"nbf within the clock skew", func(c map[string]any) { c["nbf"] = time.Now().Add(time.Minute).Unix() }, []string{"read:products"}},
				{"exp within the clock skew", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }, []string{"read:products"}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					p, err := v.Verify(context.Background(), ti.mint(t, tt.edit))
					if err != nil {
						t.Fatalf("Verify: %v", err)
					}
					if p.Subject() != "user-1" {
						t.Errorf("subject = %q, want user-1", p.Subject())
					}
					if !slices.Equal(p.Scopes(), tt.wantScopes) {
						t.Errorf("scopes = %q, want %q", p.Scopes(), tt.wantScopes)
					}
				})
			}
		})
	}
}

// TestVerifyRefusesBadTokens runs the whole attack table with the verified
// token cache off and on, twice per token: the cache must not change a
// single verdict, and a refusal must never be remembered.
func TestVerifyRefusesBadTokens(t *testing.T) {
	for _, cacheSize := range []int{0, 1000} {
		t.Run(fmt.Sprintf("cache=%d", cacheSize), func(t *testing.T) { refusesBadTokens(t, cacheSize) })
	}
}

func refusesBadTokens(t *testing.T, cacheSize int) {
	ti := newTestIssuer(t, false)
	cfg := testConfig(ti)
	cfg.CacheSize = cacheSize
	v := startVerifier(t, cfg)
	kid, pub := ti.publicKey(t)
	now := time.Now()
	claims := func(edit func(map[string]any)) map[string]any {
		c := ti.DefaultClaims("user-1")
		if edit != nil {
			edit(c)
		}
		return c
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(pub))})
	ecKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	otherRSA := newRSAKey(t, 2048)

	tests := []struct {
		name       string
		token      func(tb testing.TB) string
		wantReason string
	}{
		{"expired", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })
		}, domain.ReasonExpired},
		// The clock skew is 0: go-oidc's own five minutes must not widen it.
		{"nbf a minute ahead", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() })
		}, domain.ReasonNotYetValid},
		{"nbf 1e300", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["nbf"] = 1e300 })
		}, domain.ReasonMalformed},
		{"nbf -1e300", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["nbf"] = -1e300 })
		}, domain.ReasonMalformed},
		{"exp 1e300", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["exp"] = 1e300 })
		}, domain.ReasonMalformed},
		{"exp as a string", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["exp"] = fmt.Sprint(now.Add(time.Hour).Unix()) })
		}, domain.ReasonMalformed},
		{"nbf as a string", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["nbf"] = fmt.Sprint(now.Add(-time.Hour).Unix()) })
		}, domain.ReasonMalformed},
		{"iat as a string", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["iat"] = fmt.Sprint(now.Unix()) })
		}, domain.ReasonMalformed},
		{"iat 2^63", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["iat"] = json.RawMessage("9223372036854775808") })
		}, domain.ReasonMalformed},
		{"exp an object", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["exp"] = map[string]int{"v": 1} })
		}, domain.ReasonMalformed},
		{"scope a number", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["scope"] = 7 })
		}, domain.ReasonMalformed},
		{"scp an array holding a number", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["scp"] = []any{"read:products", 7} })
		}, domain.ReasonMalformed},
		{"wrong issuer", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["iss"] = "https://evil.example/" })
		}, domain.ReasonWrongIssuer},
		{"issuer without trailing slash", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["iss"] = strings.TrimSuffix(ti.Issuer.Issuer(), "/") })
		}, domain.ReasonWrongIssuer},
		{"wrong audience array", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["aud"] = []string{"https://other.api", ti.srv.URL + "/userinfo"} })
		}, domain.ReasonWrongAudience},
		{"wrong audience string", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["aud"] = "https://other.api" })
		}, domain.ReasonWrongAudience},
		{"missing exp", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { delete(c, "exp") })
		}, domain.ReasonMissingExpiry},
		{"null exp", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["exp"] = nil })
		}, domain.ReasonMissingExpiry},
		{"missing sub", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { delete(c, "sub") })
		}, domain.ReasonMalformed},
		{"alg none", func(tb testing.TB) string { return unsigned(tb, claims(nil)) }, domain.ReasonBadAlgorithm},
		{"HS256 keyed with the public key PEM", func(tb testing.TB) string {
			return sign(tb, jose.HS256, pubPEM, kid, claims(nil))
		}, domain.ReasonBadAlgorithm},
		{"ES256", func(tb testing.TB) string { return sign(tb, jose.ES256, ecKey, kid, claims(nil)) }, domain.ReasonBadAlgorithm},
		{"PS256 with an RSA key", func(tb testing.TB) string {
			return sign(tb, jose.PS256, otherRSA, kid, claims(nil))
		}, domain.ReasonBadAlgorithm},
		{"unknown kid", func(tb testing.TB) string {
			return sign(tb, jose.RS256, otherRSA, "not-a-published-kid", claims(nil))
		}, domain.ReasonUnknownKID},
		{"no kid", func(tb testing.TB) string { return sign(tb, jose.RS256, otherRSA, "", claims(nil)) }, domain.ReasonUnknownKID},
		{"other RSA key under the published kid", func(tb testing.TB) string {
			return sign(tb, jose.RS256, otherRSA, kid, claims(nil))
		}, domain.ReasonBadSignature},
		{"tampered payload", func(tb testing.TB) string {
			parts := strings.Split(ti.mint(tb, nil), ".")
			forged := must(json.Marshal(claims(func(c map[string]any) { c["sub"] = "admin" })))
			parts[1] = base64.RawURLEncoding.EncodeToString(forged)
			return strings.Join(parts, ".")
		}, domain.ReasonBadSignature},
		{"garbage", func(testing.TB) string { return "not a token" }, domain.ReasonMalformed},
		{"empty", func(testing.TB) string { return "" }, domain.ReasonMalformed},
		{"two parts", func(testing.TB) string { return "eyJhbGciOiJSUzI1NiJ9.e30" }, domain.ReasonMalformed},
		{"JWS JSON serialization", func(tb testing.TB) string {
			jws := must(jose.ParseSignedCompact(ti.mint(tb, nil), []jose.SignatureAlgorithm{jose.RS256}))
			return jws.FullSerialize()
		}, domain.ReasonMalformed},
		{"oversized", func(tb testing.TB) string {
			return ti.mint(tb, func(c map[string]any) { c["pad"] = strings.Repeat("x", 32<<10) })
		}, domain.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := tt.token(t)
			for attempt := range 2 {
				_, err := v.Verify(context.Background(), token)
				if err == nil {
					t.Fatalf("attempt %d: Verify accepted the token", attempt+1)
				}
				if got := reasonOf(t, err); got != tt.wantReason {
					t.Fatalf("attempt %d: reason = %q, want %q (error: %v)", attempt+1, got, tt.wantReason, err)
				}
				assertNoTokenIn(t, err.Error(), token)
			}
			if n := v.CacheLen(); n != 0 {
				t.Fatalf("the cache holds %d entries after refusals only", n)
			}
		})
	}
}

// assertNoTokenIn fails if text holds the token or any of its parts long
// enough to matter (a signature or payload could be replayed or read).
func assertNoTokenIn(tb testing.TB, text, token string) {
	tb.Helper()
	for _, part := range append([]string{token}, strings.Split(token, ".")...) {
		if len(part) >= 16 && strings.Contains(text, part) {
			tb.Fatalf("error text contains the token or a part of it: %q", text)
		}
	}
}

func TestUntrustedJWKSKeysAreIgnored(t *testing.T) {
	ti := newTestIssuer(t, false)
	plain := newRSAKey(t, 2048)
	enc := newRSAKey(t, 2048)
	rs512 := newRSAKey(t, 2048)
	short := newRSAKey(t, 1024)
	ecKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &plain.PublicKey, KeyID: "plain"}, // no use, no alg: trusted
		{Key: &enc.PublicKey, KeyID: "enc", Use: "enc"},
		{Key: &rs512.PublicKey, KeyID: "rs512", Algorithm: "RS512", Use: "sig"},
		{Key: &short.PublicKey, KeyID: "short", Algorithm: "RS256", Use: "sig"},
		{Key: &ecKey.PublicKey, KeyID: "ec", Algorithm: "ES256", Use: "sig"},
	}}
	body := must(json.Marshal(set))
	ti.jwksOverride.Store(&body)
	v := startVerifier(t, testConfig(ti))

	claims := ti.DefaultClaims("user-1")
	tests := []struct {
		kid        string
		token      string
		wantReason string // "" means accepted
	}{
		{"plain", sign(t, jose.RS256, plain, "plain", claims), ""},
		{"enc", sign(t, jose.RS256, enc, "enc", claims), domain.ReasonUnknownKID},
		{"rs512", sign(t, jose.RS256, rs512, "rs512", claims), domain.ReasonUnknownKID},
		{"short", sign(t, jose.RS256, short, "short", claims), domain.ReasonUnknownKID},
		{"ec", sign(t, jose.ES256, ecKey, "ec", claims), domain.ReasonBadAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.kid, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tt.token)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if got := reasonOf(t, err); got != tt.wantReason {
				t.Fatalf("reason = %q, want %q (error: %v)", got, tt.wantReason, err)
			}
		})
	}
}

func TestFloodsCauseBoundedJWKSFetches(t *testing.T) {
	const callers = 500
	ti := newTestIssuer(t, false)
	clk := &testclock.Offset{}
	results := newRefreshes()
	cfg := testConfig(ti)
	cfg.MinRefreshInterval = time.Minute
	cfg.Now = clk.Now
	cfg.OnRefresh = results.record
	v := startVerifier(t, cfg)
	kid, _ := ti.publicKey(t)
	attacker := newRSAKey(t, 2048)
	claims := ti.DefaultClaims("user-1")

	forged := sign(t, jose.RS256, attacker, kid, claims)
	tests := []struct {
		name       string
		token      func(i int) string
		wantReason string
		wantFetch  int64
	}{
		// A known kid with a bad signature is a forgery, never a reason to
		// refetch, even with the rate bound open.
		{"forged signatures under the known kid", func(int) string { return forged }, domain.ReasonBadSignature, 0},
		// A kid never seen may be a new key, so one refetch is right; the
		// other callers share it or are rate-limited. Last, so the bound is
		// closed for the check after the table.
		{"distinct unknown kids", func(i int) string {
			return withKID(t, forged, fmt.Sprintf("kid-%d", i))
		}, domain.ReasonUnknownKID, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens := make([]string, callers)
			for i := range tokens {
				tokens[i] = tt.token(i)
			}
			clk.Advance(cfg.MinRefreshInterval + time.Second) // open the rate bound
			before := ti.jwksHits.Load()

			var wg sync.WaitGroup
			errs := make([]error, callers)
			for i := range callers {
				wg.Go(func() { _, errs[i] = v.Verify(context.Background(), tokens[i]) })
			}
			wg.Wait()

			for i, err := range errs {
				if got := reasonOf(t, err); got != tt.wantReason {
					t.Fatalf("caller %d: reason %q, want %q (error: %v)", i, got, tt.wantReason, err)
				}
			}
			if got := ti.jwksHits.Load() - before; got != tt.wantFetch {
				t.Fatalf("JWKS fetches during the flood = %d, want %d", got, tt.wantFetch)
			}
		})
	}
	// The flood's own refetch closed the rate bound again: one more unknown
	// kid is refused without a fetch, and metrics see the suppression.
	before := ti.jwksHits.Load()
	_, err := v.Verify(context.Background(), withKID(t, forged, "one-more"))
	if got := reasonOf(t, err); got != domain.ReasonUnknownKID {
		t.Fatalf("reason = %q, want unknown_kid", got)
	}
	if ti.jwksHits.Load() != before {
		t.Fatal("unknown kid inside the rate bound caused a fetch")
	}
	results.next(t, "rate_limited")
}

func TestHangingJWKSCannotHangVerify(t *testing.T) {
	ti := newTestIssuer(t, false)
	clk := &testclock.Offset{}
	cfg := testConfig(ti)
	cfg.HTTPTimeout = 300 * time.Millisecond
	cfg.MinRefreshInterval = time.Minute
	cfg.Now = clk.Now
	v := startVerifier(t, cfg)
	valid := ti.mint(t, nil)
	unknown := sign(t, jose.RS256, newRSAKey(t, 2048), "new-kid", ti.DefaultClaims("user-1"))

	ti.jwksMode.Store(hang)
	clk.Advance(cfg.MinRefreshInterval + time.Second)

	// The caller allows far longer than HTTPTimeout; the refetch must give
	// up on its own, so the caller's deadline must still be open after.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := v.Verify(ctx, unknown)
	if got := reasonOf(t, err); got != domain.ReasonKeysUnavailable {
		t.Fatalf("reason = %q, want %q (error: %v)", got, domain.ReasonKeysUnavailable, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("want the fetch's own timeout with the caller's deadline open; err %v, ctx %v", err, ctx.Err())
	}

	// Tokens under keys already loaded never wait on the JWKS.
	if _, err := v.Verify(ctx, valid); err != nil {
		t.Fatalf("valid token while the JWKS hangs: %v", err)
	}
}

func TestCallerDeadlineBoundsVerify(t *testing.T) {
	ti := newTestIssuer(t, false)
	clk := &testclock.Offset{}
	cfg := testConfig(ti)
	cfg.HTTPTimeout = time.Minute // the caller's deadline is the tighter bound here
	cfg.MinRefreshInterval = time.Minute
	cfg.Now = clk.Now
	v := startVerifier(t, cfg)
	unknown := sign(t, jose.RS256, newRSAKey(t, 2048), "new-kid", ti.DefaultClaims("user-1"))

	ti.jwksMode.Store(hang)
	clk.Advance(cfg.MinRefreshInterval + time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := v.Verify(ctx, unknown)
	if got := reasonOf(t, err); got != domain.ReasonKeysUnavailable {
		t.Fatalf("reason = %q, want %q (error: %v)", got, domain.ReasonKeysUnavailable, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() == nil {
		t.Fatalf("want the caller's deadline to end the wait; err %v", err)
	}
}

func TestStartGivesUpOnAHangingIssuer(t *testing.T) {
	ti := newTestIssuer(t, false)
	ti.discoveryMode.Store(hang)
	cfg := testConfig(ti)
	cfg.HTTPTimeout = 100 * time.Millisecond
	v, err := oidc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := v.Start(context.Background()); err == nil {
		t.Fatal("Start succeeded while discovery hangs")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Start took %v, past its 100ms HTTP timeout", took)
	}
	if err := v.Ready(context.Background()); !errors.Is(err, domain.ErrVerifierNotReady) {
		t.Fatalf("Ready while discovery hangs = %v", err)
	}
	ti.discoveryMode.Store(serve)
	if err := v.Start(context.Background()); err != nil {
		t.Fatalf("Start once discovery answers: %v", err)
	}
}

func TestStartReturnsOnCancelWhileDiscoveryHangs(t *testing.T) {
	ti := newTestIssuer(t, false)
	ti.discoveryMode.Store(hang)
	cfg := testConfig(ti)
	cfg.HTTPTimeout = time.Minute
	v, err := oidc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Start(ctx) }()
	for ti.discoveryHits.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Start = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return after cancel")
	}
}

func TestPeriodicRefreshDropsRemovedKeys(t *testing.T) {
	ti := newTestIssuer(t, false)
	results := newRefreshes()
	cfg := testConfig(ti)
	cfg.RefreshInterval = 20 * time.Millisecond
	cfg.OnRefresh = results.record
	v := startVerifier(t, cfg)
	ctx := context.Background()
	oldToken := ti.mint(t, nil)
	if _, err := v.Verify(ctx, oldToken); err != nil {
		t.Fatalf("before rotation: %v", err)
	}

	if err := ti.RotateKey(); err != nil {
		t.Fatal(err)
	}
	newToken := ti.mint(t, nil)
	// A refresh already in flight may still carry the old set, so wait
	// refresh by refresh until the old key is gone. MinRefreshInterval is an
	// hour, so only the periodic refresh can make this happen.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("token under the removed key still accepted after 10s of refreshes")
		}
		results.next(t, "ok")
		_, err := v.Verify(ctx, oldToken)
		if err == nil {
			continue
		}
		if got := reasonOf(t, err); got != domain.ReasonUnknownKID {
			t.Fatalf("old token after refresh: reason %q, want unknown_kid", got)
		}
		break
	}
	if _, err := v.Verify(ctx, newToken); err != nil {
		t.Fatalf("new key after periodic refresh: %v", err)
	}
}

func TestKnownKeysSurviveJWKSOutage(t *testing.T) {
	ti := newTestIssuer(t, false)
	results := newRefreshes()
	cfg := testConfig(ti)
	cfg.RefreshInterval = 20 * time.Millisecond
	cfg.OnRefresh = results.record
	v := startVerifier(t, cfg)

	ti.jwksMode.Store(fail)
	results.next(t, "error")
	results.next(t, "error") // certainly a refresh that began during the outage
	if _, err := v.Verify(context.Background(), ti.mint(t, nil)); err != nil {
		t.Fatalf("valid token during JWKS outage: %v", err)
	}
	if err := v.Ready(context.Background()); err != nil {
		t.Fatalf("Ready during JWKS outage: %v", err)
	}
}

func TestOversizedJWKSIsRefused(t *testing.T) {
	ti := newTestIssuer(t, false)
	kid, pub := ti.publicKey(t)
	padded := map[string]any{
		"keys":    []jose.JSONWebKey{{Key: pub, KeyID: kid, Algorithm: "RS256", Use: "sig"}},
		"padding": strings.Repeat("x", 64<<10),
	}
	body := must(json.Marshal(padded))
	ti.jwksOverride.Store(&body)
	results := newRefreshes()
	cfg := testConfig(ti)
	cfg.MaxResponseBytes = 16 << 10
	cfg.OnRefresh = results.record
	v := runVerifier(t, cfg)

	results.next(t, "error")
	if err := v.Ready(context.Background()); !errors.Is(err, domain.ErrVerifierNotReady) {
		t.Fatalf("Ready with an oversized JWKS = %v, want ErrVerifierNotReady", err)
	}
	ti.jwksOverride.Store(nil) // the same keys at normal size are accepted
	waitReady(t, v)
}

func TestDiscoveryIssuerMustMatchExactly(t *testing.T) {
	ti := newTestIssuer(t, false)
	cfg := testConfig(ti)
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	v, err := oidc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = v.Start(context.Background())
	want := fmt.Sprintf("issuer mismatch: discovery says %q, configured %q", ti.Issuer.Issuer(), cfg.Issuer)
	if err == nil || err.Error() != want {
		t.Fatalf("Start = %v, want %q: the readiness probe shows it as it is", err, want)
	}
	if err := v.Ready(context.Background()); !errors.Is(err, domain.ErrVerifierNotReady) {
		t.Fatalf("Ready with a mismatched issuer = %v, want ErrVerifierNotReady", err)
	}
	if ti.jwksHits.Load() != 0 {
		t.Fatal("JWKS fetched although discovery named another issuer")
	}
}

func BenchmarkVerify(b *testing.B) {
	ti := newTestIssuer(b, false)
	v := startVerifier(b, testConfig(ti))
	token := ti.mint(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCachedParallel is the verified-token cache under
// concurrency: every CPU checks tokens it and the others checked before
// (hits), as a busy hop does.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	ti := newTestIssuer(b, false)
	cfg := testConfig(ti)
	cfg.CacheSize = 10_000
	v := startVerifier(b, cfg)
	tokens := make([]string, 64)
	for i := range tokens {
		tokens[i] = ti.mint(b, func(c map[string]any) { c["sub"] = fmt.Sprintf("auth0|%d", i) })
	}
	ctx := context.Background()
	b.ReportAllocs()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		// Each CPU starts elsewhere in the list, as requests from many
		// users would, rather than all in step on one shard.
		for i := int(next.Add(17)); pb.Next(); i++ {
			if _, err := v.Verify(ctx, tokens[i%len(tokens)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// withKID swaps the kid in token's header, keeping the (now wrong)
// signature: enough for tokens whose kid is never found.
func withKID(tb testing.TB, token, kid string) string {
	tb.Helper()
	_, rest, _ := strings.Cut(token, ".")
	header := must(json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid}))
	return base64.RawURLEncoding.EncodeToString(header) + "." + rest
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
