package dpop_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// testKey is a client's ES256 key.
func testKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// jwkOf is the public JWK of k, as a proof header carries it.
func jwkOf(tb testing.TB, k crypto.Signer) map[string]any {
	tb.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: k.Public()})
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// thumbprint is k's RFC 7638 thumbprint, as go-jose computes it.
func thumbprint(tb testing.TB, k crypto.Signer) string {
	tb.Helper()
	jwk := jose.JSONWebKey{Key: k.Public()}
	b, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// proofSpec is one proof to make: a good one for GET url with token unless
// a test changes a field.
type proofSpec struct {
	header map[string]any
	claims map[string]any
	key    *ecdsa.PrivateKey // signs the ES256 proof
	sign   func(input []byte) []byte
}

func goodSpec(tb testing.TB, key *ecdsa.PrivateKey, method, url, token string, now time.Time) proofSpec {
	tb.Helper()
	claims := map[string]any{
		"jti": rand.Text(),
		"htm": method,
		"htu": url,
		"iat": now.Unix(),
	}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return proofSpec{
		header: map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": jwkOf(tb, key)},
		claims: claims,
		key:    key,
	}
}

// make signs the spec as a compact JWS, by hand so tests can write what
// no library would (private members, alg none).
func (s proofSpec) make(tb testing.TB) string {
	tb.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(s.header) + "." + enc(s.claims)
	var sig []byte
	if s.sign != nil {
		sig = s.sign([]byte(input))
	} else {
		sum := sha256.Sum256([]byte(input))
		r, ss, err := ecdsa.Sign(rand.Reader, s.key, sum[:])
		if err != nil {
			tb.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}
