package issuer_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
	"github.com/trustchain/trustchain/adapters/dpop"
)

// withDPoP turns DPoP on with the real proof verifier, as app/demo wires
// it, reading the issuer's clock.
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

func newDPoPKey(tb testing.TB) (*ecdsa.PrivateKey, string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	jkt, err := dpop.Thumbprint(key.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return key, jkt
}

// tokenProof is a proof for the token endpoint of the issuer at base.
func tokenProof(tb testing.TB, key *ecdsa.PrivateKey, base string, now time.Time) string {
	tb.Helper()
	proof, err := dpop.NewProof(key, http.MethodPost, base+"/oauth/token", "", "", now)
	if err != nil {
		tb.Fatal(err)
	}
	return proof
}

type boundClaims struct {
	Sub string `json:"sub"`
	Cnf *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// checkBound checks a token response: token_type, and an access token that
// go-oidc verifies against the issuer's discovery and JWKS, bound to jkt
// (or unbound when jkt is "").
func checkBound(tb testing.TB, iss *issuer.Issuer, r response, jkt string) boundClaims {
	tb.Helper()
	if r.status != http.StatusOK {
		tb.Fatalf("token status = %d, want 200; body %s", r.status, r.body)
	}
	var toks userTokens
	if err := json.Unmarshal(r.body, &toks); err != nil {
		tb.Fatal(err)
	}
	wantType := "Bearer"
	if jkt != "" {
		wantType = "DPoP"
	}
	if toks.TokenType != wantType {
		tb.Errorf("token_type = %q, want %q", toks.TokenType, wantType)
	}
	accessV, _ := verifiers(tb, iss, cliClient)
	tok, err := accessV.Verify(tb.Context(), toks.AccessToken)
	if err != nil {
		tb.Fatalf("go-oidc refused the token: %v", err)
	}
	var c boundClaims
	if err := tok.Claims(&c); err != nil {
		tb.Fatal(err)
	}
	switch {
	case jkt == "" && c.Cnf != nil:
		tb.Errorf("an unbound token carries cnf %+v", *c.Cnf)
	case jkt != "" && (c.Cnf == nil || c.Cnf.JKT != jkt):
		tb.Errorf("cnf = %+v, want jkt %s (the key's RFC 7638 thumbprint)", c.Cnf, jkt)
	}
	return c
}

// Every grant the issuer has binds its token to the proof's key, and
// without a proof gives a Bearer token as before (RFC 9449 §5).
func TestEveryGrantBindsToTheProofKey(t *testing.T) {
	clock := newClock()
	iss, srv := newServer(t, withClock(clock), withDPoP(t))
	grants := map[string]func(t *testing.T, proof string) response{
		"client_credentials": func(t *testing.T, proof string) response {
			return postForm(t, srv.URL+"/oauth/token", url.Values{
				"grant_type": {"client_credentials"}, "client_id": {clientID},
				"client_secret": {clientSecret}, "audience": {audience},
			}, dpopHeader(proof)...)
		},
		"authorization_code": func(t *testing.T, proof string) response {
			verifier, challenge := pkcePair(t)
			code := codeFor(t, srv.URL, authorizeParams(challenge))
			return postForm(t, srv.URL+"/oauth/token", exchangeFields(code, verifier), dpopHeader(proof)...)
		},
		"device_code": func(t *testing.T, proof string) response {
			dc := startDevice(t, srv.URL)
			if r := activate(t, srv.URL, dc.UserCode, "allow", "alice", alicePassword); r.status != http.StatusOK {
				t.Fatalf("activate: %d %s", r.status, r.body)
			}
			clock.Advance(5 * time.Second)
			return postForm(t, srv.URL+"/oauth/token", url.Values{
				"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
				"client_id":   {cliClient},
				"device_code": {dc.DeviceCode},
			}, dpopHeader(proof)...)
		},
	}
	for name, grant := range grants {
		t.Run(name, func(t *testing.T) {
			key, jkt := newDPoPKey(t)
			checkBound(t, iss, grant(t, tokenProof(t, key, srv.URL, clock.Now())), jkt)
			checkBound(t, iss, grant(t, ""), "")
		})
	}
}

func dpopHeader(proof string) []string {
	if proof == "" {
		return nil
	}
	return []string{"DPoP", proof}
}

// A proof the issuer cannot accept is refused with invalid_dpop_proof
// (RFC 9449 §5), before the grant is looked at: the authorization code
// survives, and a good proof then gets the bound token.
func TestTokenEndpointRefusesBadProofs(t *testing.T) {
	clock := newClock()
	iss, srv := newServer(t, withClock(clock), withDPoP(t))
	key, jkt := newDPoPKey(t)
	proof := func(method, target string, at time.Time) string {
		p, err := dpop.NewProof(key, method, target, "", "", at)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	replayed := tokenProof(t, key, srv.URL, clock.Now())
	if r := postForm(t, srv.URL+"/oauth/token", clientCredentials(), "DPoP", replayed); r.status != http.StatusOK {
		t.Fatalf("first use of the proof: %d %s", r.status, r.body)
	}
	hs256, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")},
		(&jose.SignerOptions{}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	hmacJWS, err := hs256.Sign([]byte(`{"jti":"x","htm":"POST","htu":"` + srv.URL + `/oauth/token","iat":` + jsonTime(clock.Now()) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	hmacProof, _ := hmacJWS.CompactSerialize()

	cases := map[string][]string{
		"another URL":      {"DPoP", proof(http.MethodPost, "https://elsewhere.test/oauth/token", clock.Now())},
		"another path":     {"DPoP", proof(http.MethodPost, srv.URL+"/oauth/device/code", clock.Now())},
		"another method":   {"DPoP", proof(http.MethodGet, srv.URL+"/oauth/token", clock.Now())},
		"old iat":          {"DPoP", proof(http.MethodPost, srv.URL+"/oauth/token", clock.Now().Add(-5*time.Minute))},
		"future iat":       {"DPoP", proof(http.MethodPost, srv.URL+"/oauth/token", clock.Now().Add(5*time.Minute))},
		"replayed jti":     {"DPoP", replayed},
		"HS256":            {"DPoP", hmacProof},
		"not a JWS":        {"DPoP", "not.a.proof"},
		"empty":            {"DPoP", ""},
		"two DPoP headers": {"DPoP", tokenProof(t, key, srv.URL, clock.Now()), "DPoP", tokenProof(t, key, srv.URL, clock.Now())},
	}
	verifier, challenge := pkcePair(t)
	code := codeFor(t, srv.URL, authorizeParams(challenge))
	for name, header := range cases {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/oauth/token", strings.NewReader(exchangeFields(code, verifier).Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Add(header[i], header[i+1])
			}
			r := do(t, req)
			if got := r.oauthError(t); r.status != http.StatusBadRequest || got != "invalid_dpop_proof" {
				t.Fatalf("%d %q, want 400 invalid_dpop_proof; body %s", r.status, got, r.body)
			}
			if strings.Contains(string(r.body), header[1]) && header[1] != "" {
				t.Error("the refusal echoes the proof")
			}
		})
	}
	good := postForm(t, srv.URL+"/oauth/token", exchangeFields(code, verifier), "DPoP", tokenProof(t, key, srv.URL, clock.Now()))
	checkBound(t, iss, good, jkt)
}

func clientCredentials() url.Values {
	return url.Values{
		"grant_type": {"client_credentials"}, "client_id": {clientID},
		"client_secret": {clientSecret}, "audience": {audience},
	}
}

func jsonTime(t time.Time) string {
	b, _ := json.Marshal(t.Unix())
	return string(b)
}

// Discovery names the proof algorithms only when DPoP is on; without it a
// DPoP header is ignored, as by a server that does not know DPoP.
func TestDiscoveryAndDPoPOff(t *testing.T) {
	algs := func(base string) []string {
		var doc struct {
			Algs []string `json:"dpop_signing_alg_values_supported"`
		}
		if err := json.Unmarshal(get(t, base+"/.well-known/openid-configuration").body, &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Algs
	}
	_, on := newServer(t, withDPoP(t))
	if got := algs(on.URL); !slices.Equal(got, []string{"ES256", "PS256", "RS256", "EdDSA"}) {
		t.Errorf("dpop_signing_alg_values_supported = %v, want the verifier's ES256 PS256 RS256 EdDSA", got)
	}
	iss, off := newServer(t)
	if got := algs(off.URL); got != nil {
		t.Errorf("without DPoP, discovery lists %v", got)
	}
	key, _ := newDPoPKey(t)
	r := postForm(t, off.URL+"/oauth/token", clientCredentials(), "DPoP", tokenProof(t, key, off.URL, time.Now()))
	if c := checkBound(t, iss, r, ""); c.Cnf != nil {
		t.Error("an issuer without DPoP bound a token")
	}
}

func TestDPoPConfigNeedsCheckAndAlgorithms(t *testing.T) {
	base := issuer.Config{URL: "http://127.0.0.1:1", Audience: audience, ClientID: clientID, ClientSecret: clientSecret}
	for name, d := range map[string]issuer.DPoP{
		"check only":      {Check: func(string, string, string, time.Time) (string, error) { return "", nil }},
		"algorithms only": {Algorithms: []string{"ES256"}},
	} {
		cfg := base
		cfg.DPoP = d
		if _, err := issuer.New(cfg); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
}
