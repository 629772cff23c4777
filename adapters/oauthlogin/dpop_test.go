package oauthlogin_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
	"github.com/trustchain/trustchain/adapters/dpop"
	"github.com/trustchain/trustchain/adapters/oauthlogin"
)

// withDPoP turns DPoP on at the issuer with the real proof verifier.
func withDPoP(tb testing.TB) func(*issuer.Config) {
	tb.Helper()
	v, err := dpop.New(dpop.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	return func(cfg *issuer.Config) {
		cfg.DPoP = issuer.DPoP{Check: v.TokenRequestKey, Algorithms: dpop.AlgorithmNames()}
	}
}

// newProver makes a key file as `trustchain login --dpop --key` does and
// returns its prover and thumbprint.
func newProver(tb testing.TB) (*dpop.Prover, string) {
	tb.Helper()
	key, err := dpop.CreateKey(filepath.Join(tb.TempDir(), "dpop.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	jkt, err := dpop.Thumbprint(key.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return dpop.NewProver(key), jkt
}

// loginBound logs alice in with DPoP against iss and returns the token and its cnf.jkt as go-oidc
// verifies it.
func loginBound(t *testing.T, iss *issuer.Issuer, prover oauthlogin.Prover, opts ...func(*oauthlogin.Config)) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	prompt := newPrompt()
	user := playUser(ctx, prompt, "approve", "alice", alicePassword)
	cfg := config(iss, prompt)
	cfg.DPoP = prover
	for _, opt := range opts {
		opt(&cfg)
	}
	token, err := oauthlogin.Login(ctx, cfg)
	if err != nil {
		cancel()
		<-user
		return "", "", err
	}
	if err := <-user; err != nil {
		t.Fatalf("user: %v", err)
	}
	provider, err := oidc.NewProvider(ctx, iss.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	verified, err := provider.Verifier(&oidc.Config{ClientID: audience}).Verify(ctx, token)
	if err != nil {
		t.Fatalf("go-oidc refused the token: %v", err)
	}
	var claims struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if err := verified.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return token, claims.Cnf.JKT, nil
}

func TestLoginWithDPoPGetsABoundToken(t *testing.T) {
	iss, _ := newIssuer(t, withDPoP(t))
	prover, jkt := newProver(t)
	_, got, err := loginBound(t, iss, prover)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if got != jkt {
		t.Fatalf("cnf.jkt = %q, want the key's thumbprint %q", got, jkt)
	}
}

// An issuer that asks for a nonce (RFC 9449 §8) gets the request again
// with it; proofs go to the token endpoint alone. The nonce is demanded by
// the transport under Login's, standing in for the issuer's front door.
func TestLoginWithDPoPFollowsTheNonce(t *testing.T) {
	iss, _ := newIssuer(t, withDPoP(t))
	const nonce = "n0nce-from-the-issuer"
	var mu sync.Mutex
	var refused, elsewhere int
	demand := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		if !strings.HasSuffix(r.URL.Path, "/oauth/token") {
			if r.Header.Get("DPoP") != "" {
				elsewhere++
			}
			return http.DefaultTransport.RoundTrip(r)
		}
		if proofNonce(t, r.Header.Get("DPoP")) == nonce {
			return http.DefaultTransport.RoundTrip(r)
		}
		refused++
		rec := httptest.NewRecorder()
		rec.Header().Set("DPoP-Nonce", nonce)
		rec.Header().Set("Content-Type", "application/json")
		rec.WriteHeader(http.StatusBadRequest)
		_, _ = rec.WriteString(`{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`)
		return rec.Result(), nil
	})
	prover, jkt := newProver(t)
	_, got, err := loginBound(t, iss, prover, func(c *oauthlogin.Config) {
		c.HTTPClient = &http.Client{Transport: demand, Timeout: 10 * time.Second}
	})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got != jkt || refused != 1 || elsewhere != 0 {
		t.Fatalf("cnf.jkt %q (want %q), %d nonce refusals (want 1), %d proofs elsewhere (want 0)", got, jkt, refused, elsewhere)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// proofNonce reads a proof's nonce claim, unverified: the issuer behind
// checks the proof itself.
func proofNonce(tb testing.TB, proof string) string {
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Error(err)
		return ""
	}
	var c struct {
		Nonce string `json:"nonce"`
	}
	_ = json.Unmarshal(payload, &c)
	return c.Nonce
}

// Before anyone logs in: an issuer whose discovery does not offer DPoP is
// refused, and no device code is asked for.
func TestLoginWithDPoPNeedsAnIssuerThatOffersIt(t *testing.T) {
	iss, _ := newIssuer(t)
	prover, _ := newProver(t)
	prompt := newPrompt()
	cfg := config(iss, prompt)
	cfg.DPoP = prover
	// Nobody plays the user: were a device code asked for, Login would
	// wait for them until this deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := oauthlogin.Login(ctx, cfg)
	if !errors.Is(err, oauthlogin.ErrNoDPoP) {
		t.Fatalf("Login = %v, want ErrNoDPoP", err)
	}
	if prompt.String() != "" {
		t.Errorf("the user was asked to log in: %q", prompt)
	}
}

// An issuer that says it offers DPoP but answers with a Bearer token is
// refused: the user asked for a bound token.
func TestLoginWithDPoPRefusesAnUnboundToken(t *testing.T) {
	ignore := func(cfg *issuer.Config) {
		cfg.DPoP = issuer.DPoP{
			Check:      func(string, string, string, time.Time) (string, error) { return "", nil },
			Algorithms: []string{"ES256"},
		}
	}
	iss, _ := newIssuer(t, ignore)
	prover, _ := newProver(t)
	if _, _, err := loginBound(t, iss, prover); !errors.Is(err, oauthlogin.ErrNotBound) {
		t.Fatalf("Login = %v, want ErrNotBound", err)
	}
}
