package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/trustchain/trustchain/domain"
)

// minRSABits refuses published keys too short to trust; Auth0 signs with
// 2048-bit keys.
const minRSABits = 2048

// Results passed to Config.OnRefresh.
const (
	refreshOK          = "ok"
	refreshError       = "error"
	refreshRateLimited = "rate_limited"
)

// keySet is the oidc.KeySet behind the verifier. Unlike go-oidc's
// RemoteKeySet, which refetches the JWKS after every failed signature check,
// it looks keys up by kid and goes to the network only for a kid it has
// never seen, at most once per minInterval, with concurrent callers sharing
// one fetch. A bad signature under a known kid costs no request, so forged
// tokens cannot be turned into a flood against the issuer.
type keySet struct {
	jwksURL     string
	client      *http.Client
	timeout     time.Duration
	maxBytes    int64
	minInterval time.Duration
	algs        []jose.SignatureAlgorithm // the algorithms a token may be signed with
	now         func() time.Time
	onRefresh   func(string)
	// base bounds every fetch's lifetime, so a fetch outlives the caller
	// that triggered it but not the verifier.
	base context.Context

	keys  atomic.Pointer[map[string]*publicKey] // by kid; replaced whole on each fetch
	fetch singleflight.Group

	mu       sync.Mutex
	fetching bool      // a fetch is in flight
	lastAt   time.Time // start of the latest fetch, for the rate bound
}

// publicKey is one trusted key of the JWKS: *rsa.PublicKey,
// *ecdsa.PublicKey or ed25519.PublicKey, with the alg its JWK names.
type publicKey struct {
	key crypto.PublicKey
	alg jose.SignatureAlgorithm // "" when the JWK names none
}

// fits says whether a signature made with alg may be checked against k:
// the key's type (and an EC key's curve) allows alg, and so does the JWK's
// alg when it names one. HMAC and none fit no key.
func (k *publicKey) fits(alg jose.SignatureAlgorithm) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(string(alg), "RS") || strings.HasPrefix(string(alg), "PS")
	case *ecdsa.PublicKey:
		return ecAlgs[key.Curve] == alg
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// ecAlgs is the one algorithm each named curve signs with (RFC 7518 3.4).
var ecAlgs = map[elliptic.Curve]jose.SignatureAlgorithm{
	elliptic.P256(): jose.ES256,
	elliptic.P384(): jose.ES384,
	elliptic.P521(): jose.ES512,
}

// current returns the trusted key for kid without any I/O. Keys that did
// not change across refreshes keep their identity, so a cached verdict can
// check that the key which signed it is still published.
func (k *keySet) current(kid string) *publicKey {
	if m := k.keys.Load(); m != nil {
		return (*m)[kid]
	}
	return nil
}

// VerifySignature implements oidc.KeySet. go-oidc has already parsed raw
// with go-jose and enforced the allowed algorithms and a single signature,
// but keeps that parse to itself, so go-jose parses it again here (a few
// microseconds) and checks the signature with the key the header's kid
// names, if that key may sign with the header's alg. Verify has already
// refused every token that is not canonical compact serialization.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	call := callFrom(ctx)
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, call.fail(&domain.TokenError{Reason: domain.ReasonMalformed, Err: errors.New("token is not a compact JWS with one signature")})
	}
	header := jws.Signatures[0].Header
	key, refusal := k.key(ctx, header.KeyID)
	if refusal != nil {
		return nil, call.fail(refusal)
	}
	alg := jose.SignatureAlgorithm(header.Algorithm)
	if !key.fits(alg) {
		return nil, call.fail(&domain.TokenError{Reason: domain.ReasonBadAlgorithm, Err: fmt.Errorf("key %q may not verify %s", header.KeyID, alg)})
	}
	payload, err := jws.Verify(key.key)
	if err != nil {
		return nil, call.fail(&domain.TokenError{Reason: domain.ReasonBadSignature, Err: err})
	}
	typ, _ := header.ExtraHeaders[jose.HeaderType].(string)
	call.kid, call.key, call.typ, call.payload = header.KeyID, key, typ, payload
	return payload, nil
}

// key returns the trusted key for kid, refetching the JWKS only for an
// unseen kid and only if the rate bound allows it.
func (k *keySet) key(ctx context.Context, kid string) (*publicKey, *domain.TokenError) {
	if kid == "" {
		// Auth0 always sets kid; without one there is nothing to look up,
		// and trying every key would only make forgeries cheaper to test.
		return nil, &domain.TokenError{Reason: domain.ReasonUnknownKID, Err: errors.New("token has no kid header")}
	}
	if key := k.current(kid); key != nil {
		return key, nil
	}
	k.mu.Lock()
	if !k.fetching && k.now().Sub(k.lastAt) < k.minInterval {
		k.mu.Unlock()
		k.report(refreshRateLimited)
		return nil, &domain.TokenError{Reason: domain.ReasonUnknownKID, Err: errors.New("kid not in the key set; refetch rate-limited")}
	}
	done := k.startOrJoinLocked()
	k.mu.Unlock()
	if err := wait(ctx, done); err != nil {
		return nil, &domain.TokenError{Reason: domain.ReasonKeysUnavailable, Err: err}
	}
	if key := k.current(kid); key != nil {
		return key, nil
	}
	return nil, &domain.TokenError{Reason: domain.ReasonUnknownKID, Err: errors.New("kid not in the refreshed key set")}
}

// refresh fetches the JWKS now, joining a fetch already in flight. It
// ignores the rate bound: it is the periodic refresh and the initial load.
func (k *keySet) refresh(ctx context.Context) error {
	k.mu.Lock()
	done := k.startOrJoinLocked()
	k.mu.Unlock()
	return wait(ctx, done)
}

// startOrJoinLocked joins the fetch in flight or starts one, which then
// counts for the rate bound. Joining is decided under mu, together with
// the bound, so a crowd of unknown kids makes one fetch, not one each.
func (k *keySet) startOrJoinLocked() <-chan singleflight.Result {
	if !k.fetching {
		k.fetching, k.lastAt = true, k.now()
	}
	return k.fetch.DoChan("jwks", func() (any, error) {
		defer func() {
			k.mu.Lock()
			k.fetching = false
			k.mu.Unlock()
		}()
		keys, err := k.fetchKeys()
		if err != nil {
			k.report(refreshError)
			return nil, err
		}
		k.replace(keys)
		k.report(refreshOK)
		return nil, nil
	})
}

func wait(ctx context.Context, done <-chan singleflight.Result) error {
	select {
	case res := <-done:
		return res.Err
	case <-ctx.Done():
		return fmt.Errorf("wait for JWKS: %w", ctx.Err())
	}
}

// replace installs a fetched key set. Replace, never merge: a key the
// issuer stopped publishing must stop being trusted. A key that is
// published unchanged keeps its identity, so verdicts cached under it stay.
func (k *keySet) replace(fetched map[string]*publicKey) {
	if old := k.keys.Load(); old != nil {
		for kid, key := range fetched {
			if prev, ok := (*old)[kid]; ok && prev.alg == key.alg && sameKey(prev.key, key.key) {
				fetched[kid] = prev
			}
		}
	}
	k.keys.Store(&fetched)
}

func (k *keySet) report(result string) {
	if k.onRefresh != nil {
		k.onRefresh(result)
	}
}

// sameKey compares two public keys; every type trustedKeys keeps has Equal.
func sameKey(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

func (k *keySet) fetchKeys() (map[string]*publicKey, error) {
	ctx, cancel := context.WithTimeout(k.base, k.timeout)
	defer cancel()
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := getJSON(ctx, k.client, k.jwksURL, k.maxBytes, &doc); err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	keys := trustedKeys(doc.Keys, k.algs)
	if len(keys) == 0 {
		// Keep the current keys rather than trust nothing: an issuer with no
		// usable key is a broken response, not a revocation of everything.
		return nil, fmt.Errorf("fetch JWKS: none of %d keys is a usable signing key for %q", len(doc.Keys), k.algs)
	}
	return keys, nil
}

// getJSON GETs url and decodes a 200's body, capped at maxBytes: a cut-off
// JWKS must fail, not parse as a smaller, wrong key set.
func getJSON(ctx context.Context, client *http.Client, url string, maxBytes int64, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, maxBytes)).Decode(v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

// trustedKeys keeps only the keys a signature in algs may be checked
// against: RSA keys of at least minRSABits, EC keys on P-256, P-384 or
// P-521 (go-jose checks the point is on the curve), Ed25519 keys; each with
// a kid, use "sig" or absent, and an alg that is absent or one of algs
// fitting the key. Anything else is skipped, not fatal, as RFC 7517 section
// 5 asks, so one odd key cannot take the whole set down.
func trustedKeys(raw []json.RawMessage, algs []jose.SignatureAlgorithm) map[string]*publicKey {
	keys := make(map[string]*publicKey, len(raw))
	for _, r := range raw {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(r); err != nil || jwk.KeyID == "" || (jwk.Use != "" && jwk.Use != "sig") {
			continue
		}
		if rsaKey, ok := jwk.Key.(*rsa.PublicKey); ok && rsaKey.N.BitLen() < minRSABits {
			continue
		}
		key := &publicKey{key: jwk.Key, alg: jose.SignatureAlgorithm(jwk.Algorithm)}
		if !slices.ContainsFunc(algs, key.fits) {
			continue // also drops private, symmetric and unknown keys: they fit nothing
		}
		if _, dup := keys[jwk.KeyID]; dup {
			continue // first one wins; a kid must name one key
		}
		keys[jwk.KeyID] = key
	}
	return keys
}
