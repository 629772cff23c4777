// Package dpoptest makes DPoP proofs (RFC 9449) for tests, good ones and
// the bad ones no library would sign: private jwks, alg none, HMAC.
package dpoptest

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

// NewKey is a client's ES256 key.
func NewKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// JWK is the public JWK of k, as a proof header carries it.
func JWK(tb testing.TB, k crypto.Signer) map[string]any {
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

// Thumbprint is k's RFC 7638 thumbprint, as go-jose computes it.
func Thumbprint(tb testing.TB, k crypto.Signer) string {
	tb.Helper()
	jwk := jose.JSONWebKey{Key: k.Public()}
	b, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Spec is one proof to make: Good's unless a test changes a field.
type Spec struct {
	Header map[string]any
	Claims map[string]any
	Key    *ecdsa.PrivateKey // signs the ES256 proof unless Sign is set
	Sign   func(input []byte) []byte
}

// Good is the spec of a good proof for method on url with token ("" for
// none: no ath), issued at now with a fresh jti.
func Good(tb testing.TB, key *ecdsa.PrivateKey, method, url, token string, now time.Time) Spec {
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
	return Spec{
		Header: map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": JWK(tb, key)},
		Claims: claims,
		Key:    key,
	}
}

// Make signs the spec as a compact JWS, by hand so tests can write what
// no library would (private members, alg none).
func (s Spec) Make(tb testing.TB) string {
	tb.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(s.Header) + "." + enc(s.Claims)
	var sig []byte
	if s.Sign != nil {
		sig = s.Sign([]byte(input))
	} else {
		sum := sha256.Sum256([]byte(input))
		r, ss, err := ecdsa.Sign(rand.Reader, s.Key, sum[:])
		if err != nil {
			tb.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// PrivateJWK is JWK with k's private member d: what a proof must never
// carry.
func PrivateJWK(tb testing.TB, k *ecdsa.PrivateKey) map[string]any {
	tb.Helper()
	d, err := k.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	jwk := JWK(tb, k)
	jwk["d"] = base64.RawURLEncoding.EncodeToString(d)
	return jwk
}
