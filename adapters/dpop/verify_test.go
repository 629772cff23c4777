package dpop_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/dpop"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/dpoptest"
)

const (
	testURL   = "https://api.example.com/products"
	testToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2ln"
)

var testNow = time.Unix(1_800_000_000, 0)

func newVerifier(tb testing.TB, cfg dpop.Config) *dpop.Verifier {
	tb.Helper()
	v, err := dpop.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func TestVerifyAcceptsAGoodProof(t *testing.T) {
	key := dpoptest.NewKey(t)
	v := newVerifier(t, dpop.Config{})
	proof := dpoptest.Good(t, key, "GET", testURL, testToken, testNow).Make(t)
	p, err := v.Verify(proof, "GET", testURL, testToken, testNow)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if p.JKT != dpoptest.Thumbprint(t, key) {
		t.Errorf("JKT = %q, want %q", p.JKT, dpoptest.Thumbprint(t, key))
	}
	if !p.IssuedAt.Equal(testNow) {
		t.Errorf("IssuedAt = %s", p.IssuedAt)
	}
}

func TestVerifyRefuses(t *testing.T) {
	key, other := dpoptest.NewKey(t), dpoptest.NewKey(t)
	hmacSign := func(input []byte) []byte {
		m := hmac.New(sha256.New, []byte("secret"))
		m.Write(input)
		return m.Sum(nil)
	}
	cases := []struct {
		name   string
		change func(s *dpoptest.Spec)
		method string
		url    string
		now    time.Time
		reason string
	}{
		{"wrong htm", func(s *dpoptest.Spec) { s.Claims["htm"] = "POST" }, "", "", time.Time{}, domain.ReasonProofMethod},
		{"lower-case htm", func(s *dpoptest.Spec) { s.Claims["htm"] = "get" }, "", "", time.Time{}, domain.ReasonProofMethod},
		{"htu another host", func(s *dpoptest.Spec) { s.Claims["htu"] = "https://evil.example.com/products" }, "", "", time.Time{}, domain.ReasonProofURL},
		{"htu another path", func(s *dpoptest.Spec) { s.Claims["htu"] = "https://api.example.com/products/1" }, "", "", time.Time{}, domain.ReasonProofURL},
		{"htu another scheme", func(s *dpoptest.Spec) { s.Claims["htu"] = "http://api.example.com/products" }, "", "", time.Time{}, domain.ReasonProofURL},
		{"htu another port", func(s *dpoptest.Spec) { s.Claims["htu"] = "https://api.example.com:8443/products" }, "", "", time.Time{}, domain.ReasonProofURL},
		{"htu relative", func(s *dpoptest.Spec) { s.Claims["htu"] = "/products" }, "", "", time.Time{}, domain.ReasonProofURL},
		{"htu with user", func(s *dpoptest.Spec) { s.Claims["htu"] = "https://u@api.example.com/products" }, "", "", time.Time{}, domain.ReasonProofURL},
		{"old iat", func(s *dpoptest.Spec) { s.Claims["iat"] = testNow.Add(-61 * time.Second).Unix() }, "", "", time.Time{}, domain.ReasonProofStale},
		{"future iat", func(s *dpoptest.Spec) { s.Claims["iat"] = testNow.Add(6 * time.Second).Unix() }, "", "", time.Time{}, domain.ReasonProofFuture},
		{"missing iat", func(s *dpoptest.Spec) { delete(s.Claims, "iat") }, "", "", time.Time{}, domain.ReasonProofMalformed},
		{"string iat", func(s *dpoptest.Spec) { s.Claims["iat"] = fmt.Sprint(testNow.Unix()) }, "", "", time.Time{}, domain.ReasonProofMalformed},
		{"missing jti", func(s *dpoptest.Spec) { delete(s.Claims, "jti") }, "", "", time.Time{}, domain.ReasonProofJTI},
		{"empty jti", func(s *dpoptest.Spec) { s.Claims["jti"] = "" }, "", "", time.Time{}, domain.ReasonProofJTI},
		{"wrong ath", func(s *dpoptest.Spec) { s.Claims["ath"] = dpop.AccessTokenHash("another token") }, "", "", time.Time{}, domain.ReasonProofAth},
		{"missing ath", func(s *dpoptest.Spec) { delete(s.Claims, "ath") }, "", "", time.Time{}, domain.ReasonProofAth},
		{"typ JWT", func(s *dpoptest.Spec) { s.Header["typ"] = "JWT" }, "", "", time.Time{}, domain.ReasonProofType},
		{"no typ", func(s *dpoptest.Spec) { delete(s.Header, "typ") }, "", "", time.Time{}, domain.ReasonProofType},
		{"private jwk", func(s *dpoptest.Spec) {
			s.Header["jwk"] = dpoptest.PrivateJWK(t, key)
		}, "", "", time.Time{}, domain.ReasonProofKey},
		{"symmetric jwk", func(s *dpoptest.Spec) {
			s.Header["jwk"] = map[string]any{"kty": "oct", "k": "c2VjcmV0"}
		}, "", "", time.Time{}, domain.ReasonProofKey},
		{"no jwk", func(s *dpoptest.Spec) { delete(s.Header, "jwk") }, "", "", time.Time{}, domain.ReasonProofKey},
		{"signed by another key", func(s *dpoptest.Spec) { s.Key = other }, "", "", time.Time{}, domain.ReasonProofSignature},
		{"alg none", func(s *dpoptest.Spec) {
			s.Header["alg"] = "none"
			s.Sign = func([]byte) []byte { return nil }
		}, "", "", time.Time{}, domain.ReasonProofAlgorithm},
		{"alg HS256", func(s *dpoptest.Spec) {
			s.Header["alg"] = "HS256"
			s.Sign = hmacSign
		}, "", "", time.Time{}, domain.ReasonProofAlgorithm},
		{"alg ES384 not allowed", func(s *dpoptest.Spec) { s.Header["alg"] = "ES384" }, "", "", time.Time{}, domain.ReasonProofAlgorithm},
		{"alg RS256 with an EC key", func(s *dpoptest.Spec) { s.Header["alg"] = "RS256" }, "", "", time.Time{}, domain.ReasonProofSignature},
		{"request method differs", func(*dpoptest.Spec) {}, "HEAD", "", time.Time{}, domain.ReasonProofMethod},
		{"much later", func(*dpoptest.Spec) {}, "", "", testNow.Add(2 * time.Minute), domain.ReasonProofStale},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := dpoptest.Good(t, key, "GET", testURL, testToken, testNow)
			tc.change(&s)
			method, url, now := "GET", testURL, testNow
			if tc.method != "" {
				method = tc.method
			}
			if tc.url != "" {
				url = tc.url
			}
			if !tc.now.IsZero() {
				now = tc.now
			}
			v := newVerifier(t, dpop.Config{})
			_, err := v.Verify(s.Make(t), method, url, testToken, now)
			if !errors.Is(err, domain.ErrProofInvalid) {
				t.Fatalf("Verify = %v, want ErrProofInvalid", err)
			}
			if got := domain.TokenReason(err); got != tc.reason {
				t.Errorf("reason = %q (%v), want %q", got, err, tc.reason)
			}
			if v.ReplayLen() != 0 {
				t.Errorf("a refused proof took a replay slot")
			}
		})
	}
}

func TestVerifyRefusesGarbage(t *testing.T) {
	v := newVerifier(t, dpop.Config{})
	for _, proof := range []string{"", "a.b.c", "not a jws", "e30.e30.", string(make([]byte, 9<<10))} {
		_, err := v.Verify(proof, "GET", testURL, testToken, testNow)
		if got := domain.TokenReason(err); got != domain.ReasonProofMalformed && got != domain.ReasonProofAlgorithm {
			t.Errorf("Verify(%.20q) reason = %q (%v)", proof, got, err)
		}
	}
}

func TestVerifyIgnoresQueryAndFragmentAndCase(t *testing.T) {
	key := dpoptest.NewKey(t)
	v := newVerifier(t, dpop.Config{})
	for _, c := range []struct{ htu, request string }{
		{"https://api.example.com/products", "https://api.example.com/products?limit=2&after=5"},
		{"https://api.example.com/products?limit=2&after=5", "https://api.example.com/products"},
		{"https://api.example.com/products#x", "https://api.example.com/products"},
		{"HTTPS://API.Example.COM/products", "https://api.example.com/products"},
		{"https://api.example.com:443/products", "https://api.example.com/products"},
		{"http://127.0.0.1:8080/products", "http://127.0.0.1:8080/products"},
	} {
		proof := dpoptest.Good(t, key, "GET", c.htu, testToken, testNow).Make(t)
		if _, err := v.Verify(proof, "GET", c.request, testToken, testNow); err != nil {
			t.Errorf("htu %q for %q: %v", c.htu, c.request, err)
		}
	}
}

func TestVerifyRefusesAReplay(t *testing.T) {
	key := dpoptest.NewKey(t)
	v := newVerifier(t, dpop.Config{})
	proof := dpoptest.Good(t, key, "GET", testURL, testToken, testNow).Make(t)
	if _, err := v.Verify(proof, "GET", testURL, testToken, testNow); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(proof, "GET", testURL, testToken, testNow.Add(time.Second))
	if got := domain.TokenReason(err); got != domain.ReasonProofReplay {
		t.Fatalf("replay: reason %q (%v)", got, err)
	}
	// The same jti under another key is another proof.
	s := dpoptest.Good(t, dpoptest.NewKey(t), "GET", testURL, testToken, testNow)
	s.Claims["jti"] = "shared"
	s2 := dpoptest.Good(t, key, "GET", testURL, testToken, testNow)
	s2.Claims["jti"] = "shared"
	for _, p := range []string{s.Make(t), s2.Make(t)} {
		if _, err := v.Verify(p, "GET", testURL, testToken, testNow); err != nil {
			t.Errorf("same jti, other key: %v", err)
		}
	}
}

func TestReplayStoreNeverForgetsALiveJTI(t *testing.T) {
	key := dpoptest.NewKey(t)
	expired := 0
	v := newVerifier(t, dpop.Config{ReplaySize: 2, OnExpire: func() { expired++ }})
	verify := func(now time.Time) error {
		_, err := v.Verify(dpoptest.Good(t, key, "GET", testURL, testToken, now).Make(t), "GET", testURL, testToken, now)
		return err
	}
	for range 2 {
		if err := verify(testNow); err != nil {
			t.Fatal(err)
		}
	}
	err := verify(testNow)
	if !errors.Is(err, domain.ErrReplayStoreFull) {
		t.Fatalf("third proof in a full store = %v, want ErrReplayStoreFull", err)
	}
	if got := domain.TokenReason(err); got != domain.ReasonProofStoreFull {
		t.Errorf("reason %q", got)
	}
	// Once the first two expire, they make room.
	later := testNow.Add(dpop.DefaultMaxAge + time.Second)
	if err := verify(later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if expired != 1 || v.ReplayLen() != 2 {
		t.Errorf("expired = %d, len = %d; want 1, 2", expired, v.ReplayLen())
	}
}

func TestNonces(t *testing.T) {
	key := dpoptest.NewKey(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	v := newVerifier(t, dpop.Config{NonceSecret: secret})
	replica := newVerifier(t, dpop.Config{NonceSecret: secret})
	stranger := newVerifier(t, dpop.Config{NonceSecret: []byte("another secret, another cluster!")})
	nonce := v.Nonce(testNow)
	if nonce == "" || nonce != replica.Nonce(testNow) || nonce == stranger.Nonce(testNow) {
		t.Fatalf("nonces: %q, replica %q, stranger %q", nonce, replica.Nonce(testNow), stranger.Nonce(testNow))
	}
	proof := func(nonce any) string {
		s := dpoptest.Good(t, key, "GET", testURL, testToken, testNow)
		if nonce != nil {
			s.Claims["nonce"] = nonce
		}
		return s.Make(t)
	}
	for _, bad := range []any{nil, "", "made-up", stranger.Nonce(testNow), v.Nonce(testNow.Add(-2 * dpop.DefaultMaxAge)), v.Nonce(testNow.Add(dpop.DefaultMaxAge))} {
		_, err := v.Verify(proof(bad), "GET", testURL, testToken, testNow)
		if !errors.Is(err, domain.ErrUseDPoPNonce) {
			t.Errorf("nonce %v: %v, want ErrUseDPoPNonce", bad, err)
		}
	}
	// Good at the replica, and through the next step.
	if _, err := replica.Verify(proof(nonce), "GET", testURL, testToken, testNow); err != nil {
		t.Errorf("replica: %v", err)
	}
	if _, err := v.Verify(proof(nonce), "GET", testURL, testToken, testNow.Add(dpop.DefaultMaxAge/2)); err != nil {
		t.Errorf("next step: %v", err)
	}
	if newVerifier(t, dpop.Config{}).Nonce(testNow) != "" {
		t.Error("a verifier without a secret hands out nonces")
	}
}
