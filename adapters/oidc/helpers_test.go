package oidc_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
	"github.com/trustchain/trustchain/adapters/oidc"
	"github.com/trustchain/trustchain/domain"
)

const testAudience = "https://api.trustchain.test"

// endpoint behaviours a test can switch the issuer's endpoints to.
const (
	serve int32 = iota
	fail        // 503
	hang        // hold the request until the client gives up
)

// testIssuer is the dev issuer (adapters/dev/issuer) on a real loopback server, with request counts
// and switches to make its discovery and JWKS endpoints fail or hang.
type testIssuer struct {
	*issuer.Issuer
	srv *httptest.Server

	discoveryHits, jwksHits atomic.Int64
	discoveryMode, jwksMode atomic.Int32
	jwksOverride            atomic.Pointer[[]byte] // served instead of the real JWKS
	discoveryOverride       atomic.Pointer[[]byte] // served instead of the real discovery document
	jwksRedirect            atomic.Pointer[string] // a 302 to this URL instead of the JWKS
	release                 chan struct{}          // closed at cleanup to free hung requests
}

func newTestIssuer(tb testing.TB, useTLS bool) *testIssuer {
	tb.Helper()
	ti := &testIssuer{release: make(chan struct{})}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(ti.serveHTTP))
	scheme := "http://"
	if useTLS {
		scheme = "https://"
	}
	iss, err := issuer.New(issuer.Config{
		URL:          scheme + srv.Listener.Addr().String(),
		Audience:     testAudience,
		ClientID:     "client-1",
		ClientSecret: "secret-1",
		Scopes:       []string{"read:products"},
	})
	if err != nil {
		tb.Fatalf("issuer.New: %v", err)
	}
	ti.Issuer, ti.srv = iss, srv
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	// Cleanups run last-in first-out: free hung handlers, then close.
	tb.Cleanup(srv.Close)
	tb.Cleanup(func() { close(ti.release) })
	return ti
}

func (ti *testIssuer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	mode := serve
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		ti.discoveryHits.Add(1)
		mode = ti.discoveryMode.Load()
		if body := ti.discoveryOverride.Load(); body != nil && mode == serve {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(*body)
			return
		}
	case "/.well-known/jwks.json":
		ti.jwksHits.Add(1)
		mode = ti.jwksMode.Load()
		if to := ti.jwksRedirect.Load(); to != nil && r.URL.RawQuery == "" {
			http.Redirect(w, r, *to, http.StatusFound)
			return
		}
		if body := ti.jwksOverride.Load(); body != nil && mode == serve {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(*body)
			return
		}
	}
	switch mode {
	case fail:
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	case hang:
		select {
		case <-r.Context().Done():
		case <-ti.release:
		}
	default:
		ti.Issuer.ServeHTTP(w, r)
	}
}

// publicKey returns the key the issuer publishes, as an attacker would
// fetch it. The fetch counts in jwksHits, so take baselines after it.
func (ti *testIssuer) publicKey(tb testing.TB) (string, *rsa.PublicKey) {
	tb.Helper()
	resp, err := ti.srv.Client().Get(ti.srv.URL + "/.well-known/jwks.json")
	if err != nil {
		tb.Fatalf("get jwks: %v", err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		tb.Fatalf("decode jwks: %v", err)
	}
	pub, ok := set.Keys[0].Key.(*rsa.PublicKey)
	if !ok {
		tb.Fatalf("published key is %T", set.Keys[0].Key)
	}
	return set.Keys[0].KeyID, pub
}

// mint signs the issuer's default claims, changed by edit, with its key.
func (ti *testIssuer) mint(tb testing.TB, edit func(map[string]any)) string {
	tb.Helper()
	claims := ti.DefaultClaims("user-1")
	if edit != nil {
		edit(claims)
	}
	tok, err := ti.Mint(claims)
	if err != nil {
		tb.Fatalf("mint: %v", err)
	}
	return tok
}

// sign makes a token with any algorithm, key and kid, for forgeries.
func sign(tb testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	tb.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		tb.Fatalf("new signer %s: %v", alg, err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// unsigned builds an alg "none" token by hand; go-jose will not make one.
func unsigned(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

func newRSAKey(tb testing.TB, bits int) *rsa.PrivateKey {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// refreshes records OnRefresh results on a channel a test can wait on.
type refreshes chan string

func newRefreshes() refreshes { return make(refreshes, 1024) }

func (r refreshes) record(result string) {
	select {
	case r <- result:
	default: // a test that stopped reading must not block the verifier
	}
}

// next waits for the next result equal to want.
func (r refreshes) next(tb testing.TB, want string) {
	tb.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-r:
			if got == want {
				return
			}
		case <-timeout:
			tb.Fatalf("no %q refresh within 10s", want)
		}
	}
}

// testConfig is a config for ti with quiet defaults: no periodic refresh
// and no on-demand refetch during the test unless the test asks.
func testConfig(ti *testIssuer) oidc.Config {
	return oidc.Config{
		Issuer:             ti.Issuer.Issuer(),
		Audience:           testAudience,
		HTTPClient:         ti.srv.Client(),
		HTTPTimeout:        2 * time.Second,
		RefreshInterval:    time.Hour,
		MinRefreshInterval: time.Hour,
	}
}

// startVerifier runs a verifier for cfg until the test ends and waits until
// it is ready.
func startVerifier(tb testing.TB, cfg oidc.Config) *oidc.Verifier {
	tb.Helper()
	v := runVerifier(tb, cfg)
	waitReady(tb, v)
	return v
}

// runVerifier brings the verifier up the way the service does, retrying
// Start until it succeeds and then refreshing, without waiting for
// readiness; everything stops when the test ends.
func runVerifier(tb testing.TB, cfg oidc.Config) *oidc.Verifier {
	tb.Helper()
	v, err := oidc.New(cfg)
	if err != nil {
		tb.Fatalf("oidc.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for v.Start(ctx) != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		v.Refresh(ctx)
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			tb.Error("Start or Refresh did not return within 10s of cancel")
		}
	})
	return v
}

func waitReady(tb testing.TB, v *oidc.Verifier) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		err := v.Ready(ctx)
		if err == nil {
			return
		}
		if !errors.Is(err, domain.ErrVerifierNotReady) {
			tb.Fatalf("Ready: %v, want nil or ErrVerifierNotReady", err)
		}
		select {
		case <-ctx.Done():
			tb.Fatal("verifier not ready within 10s")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// reasonOf returns the refusal reason of err, failing if err is not a
// *domain.TokenError matching domain.ErrTokenInvalid.
func reasonOf(tb testing.TB, err error) string {
	tb.Helper()
	if err == nil {
		tb.Fatal("token accepted, want a refusal")
	}
	var te *domain.TokenError
	if !errors.As(err, &te) || !errors.Is(err, domain.ErrTokenInvalid) {
		tb.Fatalf("error %v is not a *domain.TokenError", err)
	}
	return te.Reason
}
