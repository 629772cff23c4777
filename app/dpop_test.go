package app_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustchain/trustchain/adapters/dpop"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/dpoptest"
)

// dpopCall is one request to A with DPoP credentials.
type dpopCall struct {
	path   string
	scheme string   // of Authorization; default DPoP
	proofs []string // the DPoP header's values
	token  string
}

func (c *chain) callA(t testing.TB, call dpopCall) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.url(roleA)+call.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if call.scheme == "" {
		call.scheme = "DPoP"
	}
	req.Header.Set("Authorization", call.scheme+" "+call.token)
	req.Header["Dpop"] = call.proofs
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// boundToken is a token of the chain's issuer bound to key's thumbprint.
func (c *chain) boundToken(t testing.TB, jkt string) string {
	return c.token(func(m map[string]any) { m["cnf"] = map[string]any{"jkt": jkt} })
}

var algs = `algs="` + dpop.AlgorithmsParam() + `"`

// TestDPoPAtA: a bound token with a good proof goes through all three
// hops (native mTLS between them), a paged request's proof names no
// query, and every bad proof or misuse of a bound token stops at A with
// the RFC 9449 answer, its reason in A's metrics and log, and no key
// fetch.
func TestDPoPAtA(t *testing.T) {
	c := startChain(t, chainOptions{})
	key, other := dpoptest.NewKey(t), dpoptest.NewKey(t)
	jkt := dpoptest.Thumbprint(t, key)
	tok := c.boundToken(t, jkt)
	htu := c.url(roleA) + "/products"
	good := func(edit func(*dpoptest.Spec)) string {
		s := dpoptest.Good(t, key, "GET", htu, tok, time.Now())
		if edit != nil {
			edit(&s)
		}
		return s.Make(t)
	}

	t.Run("good proof, all three hops", func(t *testing.T) {
		status, _, body := c.callA(t, dpopCall{path: "/products", token: tok, proofs: []string{good(nil)}})
		if status != 200 || !strings.Contains(body, `"serviceA_metadata"`) {
			t.Fatalf("status %d: %s", status, body)
		}
	})
	t.Run("paged request, htu without the query", func(t *testing.T) {
		status, _, body := c.callA(t, dpopCall{path: "/products?limit=1", token: tok, proofs: []string{good(nil)}})
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
	})
	t.Run("a query in htu that does not matter", func(t *testing.T) {
		proof := good(func(s *dpoptest.Spec) { s.Claims["htu"] = htu + "?after=7#top" })
		if status, _, body := c.callA(t, dpopCall{path: "/products", token: tok, proofs: []string{proof}}); status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
	})

	before := scrape(t, c, roleA)
	replayed := good(nil)
	if status, _, body := c.callA(t, dpopCall{path: "/products", token: tok, proofs: []string{replayed}}); status != 200 {
		t.Fatalf("first use of the proof to replay: %d %s", status, body)
	}
	hmacKey := []byte("a shared secret")
	unbound := c.token(nil)
	forgedToken := forgeToken(t, c, jkt)
	cases := []struct {
		name   string
		call   dpopCall
		code   string // the body's error
		reason string
	}{
		{"wrong htm", dpopCall{proofs: []string{good(func(s *dpoptest.Spec) { s.Claims["htm"] = "POST" })}}, "invalid_dpop_proof", domain.ReasonProofMethod},
		{"htu another host", dpopCall{proofs: []string{good(func(s *dpoptest.Spec) {
			s.Claims["htu"] = strings.Replace(htu, "127.0.0.1", "localhost", 1)
		})}}, "invalid_dpop_proof", domain.ReasonProofURL},
		{"htu another path", dpopCall{proofs: []string{good(func(s *dpoptest.Spec) { s.Claims["htu"] = htu + "/1" })}}, "invalid_dpop_proof", domain.ReasonProofURL},
		{"old iat", dpopCall{proofs: []string{good(func(s *dpoptest.Spec) { s.Claims["iat"] = time.Now().Add(-2 * time.Minute).Unix() })}}, "invalid_dpop_proof", domain.ReasonProofStale},
		{"future iat", dpopCall{proofs: []string{good(func(s *dpoptest.Spec) { s.Claims["iat"] = time.Now().Add(time.Minute).Unix() })}}, "invalid_dpop_proof", domain.ReasonProofFuture},
		{"replayed jti", dpopCall{proofs: []string{replayed}}, "invalid_dpop_proof", domain.ReasonProofReplay},
		{"missing jti", dpopCall{proofs: []string{good(func(s *dpoptest.Spec) { delete(s.Claims, "jti") })}}, "invalid_dpop_proof", domain.ReasonProofJTI},
		{"wrong ath", dpopCall{proofs: []string{good(func(s *dpoptest.Spec) { s.Claims["ath"] = dpop.AccessTokenHash(unbound) })}}, "invalid_dpop_proof", domain.ReasonProofAth},
		{"missing ath", dpopCall{proofs: []string{good(func(s *dpoptest.Spec) { delete(s.Claims, "ath") })}}, "invalid_dpop_proof", domain.ReasonProofAth},
		{"wrong jkt", dpopCall{proofs: []string{dpoptest.Good(t, other, "GET", htu, tok, time.Now()).Make(t)}}, "invalid_dpop_proof", domain.ReasonProofKeyBinding},
		{"private jwk", dpopCall{proofs: []string{good(func(s *dpoptest.Spec) {
			s.Header["jwk"] = dpoptest.PrivateJWK(t, key)
		})}}, "invalid_dpop_proof", domain.ReasonProofKey},
		{"alg none", dpopCall{proofs: []string{good(func(s *dpoptest.Spec) {
			s.Header["alg"] = "none"
			s.Sign = func([]byte) []byte { return nil }
		})}}, "invalid_dpop_proof", domain.ReasonProofAlgorithm},
		{"HS256", dpopCall{proofs: []string{good(func(s *dpoptest.Spec) {
			s.Header["alg"] = "HS256"
			s.Sign = func(in []byte) []byte { m := hmac.New(sha256.New, hmacKey); m.Write(in); return m.Sum(nil) }
		})}}, "invalid_dpop_proof", domain.ReasonProofAlgorithm},
		{"typ JWT", dpopCall{proofs: []string{good(func(s *dpoptest.Spec) { s.Header["typ"] = "JWT" })}}, "invalid_dpop_proof", domain.ReasonProofType},
		{"two DPoP headers", dpopCall{proofs: []string{good(nil), good(nil)}}, "invalid_dpop_proof", domain.ReasonProofMissing},
		{"no DPoP header", dpopCall{}, "invalid_dpop_proof", domain.ReasonProofMissing},
		{"bound token as Bearer", dpopCall{scheme: "Bearer"}, "invalid_token", domain.ReasonBoundAsBearer},
		{"bound token as Bearer with a good proof", dpopCall{scheme: "Bearer", proofs: []string{good(nil)}}, "invalid_token", domain.ReasonBoundAsBearer},
		{"unbound token with DPoP", dpopCall{token: unbound, proofs: []string{dpoptest.Good(t, key, "GET", htu, unbound, time.Now()).Make(t)}}, "invalid_token", domain.ReasonUnboundAsDPoP},
		{"forged token, good proof", dpopCall{token: forgedToken, proofs: []string{dpoptest.Good(t, key, "GET", htu, forgedToken, time.Now()).Make(t)}}, "invalid_token", domain.ReasonBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.call.token == "" {
				tc.call.token = tok
			}
			tc.call.path = "/products"
			status, h, body := c.callA(t, tc.call)
			var e struct{ Error, Message, RequestID string }
			e.RequestID = "unset"
			if err := json.Unmarshal([]byte(body), &struct {
				Error     *string `json:"error"`
				Message   *string `json:"message"`
				RequestID *string `json:"request_id"`
			}{&e.Error, &e.Message, &e.RequestID}); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if status != 401 || e.Error != tc.code || e.Message == "" || e.RequestID != h.Get("X-Request-Id") {
				t.Fatalf("got %d %s, want 401 %s", status, body, tc.code)
			}
			want := []string{`DPoP error="` + tc.code + `", ` + algs, "Bearer"}
			if tc.call.scheme == "Bearer" {
				want = []string{`Bearer error="invalid_token"`, "DPoP " + algs}
			}
			if got := h.Values("Www-Authenticate"); !slices.Equal(got, want) {
				t.Errorf("challenges %q, want %q", got, want)
			}
			if !strings.Contains(c.logs[roleA].String(), `"reason":"`+tc.reason+`"`) {
				t.Errorf("A's log has no reason %s", tc.reason)
			}
		})
	}
	after := scrape(t, c, roleA)
	for _, tc := range cases {
		series := `trustchain_token_checks_total{reason="` + tc.reason + `",result="rejected",role="a"}`
		if metricValue(t, after, series) < 1 {
			t.Errorf("%s: no count in %s", tc.name, series)
		}
	}
	for _, result := range []string{"ok", "error"} {
		series := `trustchain_jwks_refreshes_total{result="` + result + `",role="a"}`
		if b, a := metricValue(t, before, series), metricValue(t, after, series); a != b {
			t.Errorf("forged proofs and tokens fetched the keys: %s went %v -> %v", series, b, a)
		}
	}
	if metricValue(t, after, `trustchain_dpop_replay_entries{role="a"}`) < 4 {
		t.Error("the replay store's size is not in the metrics")
	}
	// Only the one good request since the scrape spent a proof: a refused
	// request, even one whose proof is good (another key's, or with an
	// unbound or forged token), takes no slot in the bounded store.
	entries := `trustchain_dpop_replay_entries{role="a"}`
	if b, a := metricValue(t, before, entries), metricValue(t, after, entries); a != b+1 {
		t.Errorf("replay store went %v -> %v over one good request and %d refusals, want one more entry", b, a, len(cases))
	}
	for _, line := range strings.Split(c.logs[roleA].String(), "\n") {
		if strings.Contains(line, tok) || strings.Contains(line, replayed) {
			t.Fatalf("a token or proof reached the log: %s", line)
		}
	}
}

// forgeToken signs claims bound to jkt with a key of the attacker's under
// the issuer's own kid: a token whose check needs no key fetch to fail.
func forgeToken(t testing.TB, c *chain, jkt string) string {
	t.Helper()
	real := c.boundToken(t, jkt)
	header, _, _ := strings.Cut(real, ".")
	b, _ := base64.RawURLEncoding.DecodeString(header)
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil || h.Kid == "" {
		t.Fatalf("no kid in the issuer's tokens: %v", err)
	}
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: attacker}, (&jose.SignerOptions{}).WithHeader("kid", h.Kid).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	claims := c.issuer.DefaultClaims("auth0|user123")
	claims["cnf"] = map[string]any{"jkt": jkt}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDPoPModes: required refuses an unbound Bearer token with a DPoP
// challenge only; off takes Bearer alone and refuses a bound token.
func TestDPoPModes(t *testing.T) {
	for _, tc := range []struct {
		mode        string
		unboundCode int
		challenges  []string
	}{
		{"required", 401, []string{`DPoP error="invalid_token", ` + algs}},
		{"off", 200, []string{`Bearer error="invalid_token"`}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			c := startChain(t, chainOptions{configure: func(role domain.Role, cfg *app.Config) {
				if role == roleA {
					cfg.DPoP = tc.mode
				}
			}})
			key := dpoptest.NewKey(t)
			status, h, body := c.callA(t, dpopCall{path: "/products", scheme: "Bearer", token: c.token(nil)})
			if status != tc.unboundCode || status == 401 && !slices.Equal(h.Values("Www-Authenticate"), tc.challenges) {
				t.Fatalf("unbound Bearer token: %d %q %s", status, h.Values("Www-Authenticate"), body)
			}
			bound := c.boundToken(t, dpoptest.Thumbprint(t, key))
			status, h, body = c.callA(t, dpopCall{path: "/products", scheme: "Bearer", token: bound})
			if status != 401 || !slices.Equal(h.Values("Www-Authenticate"), tc.challenges) {
				t.Fatalf("bound Bearer token: %d %q %s", status, h.Values("Www-Authenticate"), body)
			}
			proof := dpoptest.Good(t, key, "GET", c.url(roleA)+"/products", bound, time.Now()).Make(t)
			status, _, body = c.callA(t, dpopCall{path: "/products", token: bound, proofs: []string{proof}})
			if want := map[string]int{"required": 200, "off": 401}[tc.mode]; status != want {
				t.Fatalf("bound token with a proof: %d, want %d: %s", status, want, body)
			}
		})
	}
}

// TestDPoPNonces: with --dpop-nonce, a proof without the server's nonce
// is answered use_dpop_nonce with the nonce to use, which then works.
func TestDPoPNonces(t *testing.T) {
	c := startChain(t, chainOptions{configure: func(role domain.Role, cfg *app.Config) {
		if role == roleA {
			cfg.DPoPNonce = strings.Repeat("s", 32)
		}
	}})
	key := dpoptest.NewKey(t)
	tok := c.boundToken(t, dpoptest.Thumbprint(t, key))
	htu := c.url(roleA) + "/products"
	status, h, body := c.callA(t, dpopCall{path: "/products", token: tok, proofs: []string{dpoptest.Good(t, key, "GET", htu, tok, time.Now()).Make(t)}})
	nonce := h.Get("DPoP-Nonce")
	if status != 401 || !strings.Contains(body, `"use_dpop_nonce"`) || nonce == "" ||
		!slices.Equal(h.Values("Www-Authenticate"), []string{`DPoP error="use_dpop_nonce", ` + algs, "Bearer"}) {
		t.Fatalf("no nonce: %d %q %q %s", status, nonce, h.Values("Www-Authenticate"), body)
	}
	s := dpoptest.Good(t, key, "GET", htu, tok, time.Now())
	s.Claims["nonce"] = nonce
	status, h, body = c.callA(t, dpopCall{path: "/products", token: tok, proofs: []string{s.Make(t)}})
	if status != 200 || h.Get("DPoP-Nonce") == "" {
		t.Fatalf("with the nonce: %d, DPoP-Nonce %q: %s", status, h.Get("DPoP-Nonce"), body)
	}
	if strings.Contains(c.logs[roleA].String(), strings.Repeat("s", 32)) {
		t.Error("the nonce secret reached the log")
	}
}

// TestBoundTokenAtInnerHops: C takes a bound token as Bearer from A, its
// one allowed caller, proved by workload identity; from another workload
// the mesh refuses it, and with peer authentication off C refuses it.
func TestBoundTokenAtInnerHops(t *testing.T) {
	key := dpoptest.NewKey(t)
	jkt := dpoptest.Thumbprint(t, key)
	t.Run("mtls", func(t *testing.T) {
		c := startChain(t, chainOptions{})
		tok := c.boundToken(t, jkt)
		status, _, body := get(t, c.clientAs(roleA, roleC), c.url(roleC)+"/products", tok, nil)
		if status != 200 {
			t.Fatalf("A's identity: %d %s", status, body)
		}
		req, _ := http.NewRequest(http.MethodGet, c.url(roleC)+"/products", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := c.clientAs(roleB, roleC).Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("B's identity got %d", resp.StatusCode)
		}
	})
	t.Run("xfcc", func(t *testing.T) {
		c := startChain(t, chainOptions{peerAuth: app.PeerAuthOff, configure: func(role domain.Role, cfg *app.Config) {
			if role == roleC {
				cfg.PeerAuth = app.PeerAuthXFCC
			}
		}})
		tok := c.boundToken(t, jkt)
		xfcc := func(uri string) http.Header {
			return http.Header{"X-Forwarded-Client-Cert": {`By=spiffe://cluster.local/ns/default/sa/service-c;URI=spiffe://cluster.local/ns/default/sa/` + uri}}
		}
		if status, _, body := get(t, nil, c.url(roleC)+"/products", tok, xfcc("service-b")); status != 403 {
			t.Fatalf("B's identity: %d %s", status, body)
		}
		// C takes it from A's identity and forwards it; B, with peer
		// authentication off here, is the one that refuses it.
		status, _, body := get(t, nil, c.url(roleC)+"/products", tok, xfcc("service-a"))
		if status != 401 || !strings.Contains(c.logs[roleB].String(), `"reason":"`+domain.ReasonBoundNoPeer+`"`) ||
			strings.Contains(c.logs[roleC].String(), domain.ReasonBoundNoPeer) {
			t.Fatalf("A's identity: %d %s; C must pass it on and B (peer auth off) refuse it", status, body)
		}
	})
	t.Run("peer auth off", func(t *testing.T) {
		c := startChain(t, chainOptions{peerAuth: app.PeerAuthOff})
		tok := c.boundToken(t, jkt)
		status, h, body := get(t, nil, c.url(roleC)+"/products", tok, nil)
		if status != 401 || !strings.Contains(body, `"invalid_token"`) || h.Get("Www-Authenticate") != `Bearer error="invalid_token"` {
			t.Fatalf("C with peer auth off: %d %q %s", status, h.Get("Www-Authenticate"), body)
		}
		if !strings.Contains(c.logs[roleC].String(), `"reason":"`+domain.ReasonBoundNoPeer+`"`) {
			t.Error("C's log does not give the reason")
		}
		// Through A with a good proof: A's proof check passes, C refuses.
		proof := dpoptest.Good(t, key, "GET", c.url(roleA)+"/products", tok, time.Now()).Make(t)
		if status, _, body := c.callA(t, dpopCall{path: "/products", token: tok, proofs: []string{proof}}); status != 401 || !strings.Contains(body, `"invalid_token"`) {
			t.Fatalf("through A: %d %s", status, body)
		}
	})
}
