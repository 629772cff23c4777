package oidc

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
	now         func() time.Time
	onRefresh   func(string)
	// base bounds every fetch's lifetime, so a fetch outlives the caller
	// that triggered it but not the verifier.
	base context.Context

	keys  atomic.Pointer[map[string]*rsa.PublicKey] // by kid; replaced whole on each fetch
	fetch singleflight.Group

	mu       sync.Mutex
	fetching bool      // a fetch is in flight
	lastAt   time.Time // start of the latest fetch, for the rate bound
}

// current returns the trusted key for kid without any I/O. Keys that did
// not change across refreshes keep their identity, so a cached verdict can
// check that the key which signed it is still published.
func (k *keySet) current(kid string) *rsa.PublicKey {
	if m := k.keys.Load(); m != nil {
		return (*m)[kid]
	}
	return nil
}

// VerifySignature implements oidc.KeySet. go-oidc has already parsed raw
// with go-jose and enforced RS256 and a single signature; it keeps that
// parse to itself, so rather than parse the token a second time this checks
// the RS256 signature over the compact form's signing input directly, and
// reads only the header's kid. Anything that is not plain compact
// serialization fails here and is refused.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	call := callFrom(ctx)
	header, rest, ok := strings.Cut(raw, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(sig, ".") {
		return nil, call.fail(&domain.TokenError{Reason: domain.ReasonMalformed, Err: errors.New("token is not compact serialization")})
	}
	kid, err := headerKID(header)
	if err != nil {
		return nil, call.fail(&domain.TokenError{Reason: domain.ReasonMalformed, Err: err})
	}
	key, refusal := k.key(ctx, kid)
	if refusal != nil {
		return nil, call.fail(refusal)
	}
	signature, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return nil, call.fail(&domain.TokenError{Reason: domain.ReasonMalformed, Err: fmt.Errorf("signature: %w", err)})
	}
	h := sha256.New()
	h.Write([]byte(raw[:len(header)+1+len(payload)]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, h.Sum(nil), signature); err != nil {
		return nil, call.fail(&domain.TokenError{Reason: domain.ReasonBadSignature, Err: err})
	}
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, call.fail(&domain.TokenError{Reason: domain.ReasonMalformed, Err: fmt.Errorf("payload: %w", err)})
	}
	call.kid, call.key, call.payload = kid, key, body
	return body, nil
}

// headerKID reads the kid of a JOSE header, insisting on RS256 again so
// this check never rests on the caller's alone.
func headerKID(segment string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return "", fmt.Errorf("header: %w", err)
	}
	if h.Alg != string(jose.RS256) {
		return "", fmt.Errorf("header: alg %q is not RS256", h.Alg)
	}
	return h.Kid, nil
}

// key returns the trusted key for kid, refetching the JWKS only for an
// unseen kid and only if the rate bound allows it.
func (k *keySet) key(ctx context.Context, kid string) (*rsa.PublicKey, *domain.TokenError) {
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
func (k *keySet) replace(fetched map[string]*rsa.PublicKey) {
	if old := k.keys.Load(); old != nil {
		for kid, key := range fetched {
			if prev, ok := (*old)[kid]; ok && prev.Equal(key) {
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

func (k *keySet) fetchKeys() (map[string]*rsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(k.base, k.timeout)
	defer cancel()
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := getJSON(ctx, k.client, k.jwksURL, k.maxBytes, &doc); err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	keys := trustedKeys(doc.Keys)
	if len(keys) == 0 {
		// Keep the current keys rather than trust nothing: an issuer with no
		// usable key is a broken response, not a revocation of everything.
		return nil, fmt.Errorf("fetch JWKS: none of %d keys is a usable RS256 signing key", len(doc.Keys))
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

// trustedKeys keeps only the keys an RS256 signature may be checked
// against: RSA public keys of at least minRSABits with a kid, use "sig" or
// absent, alg "RS256" or absent. Anything else is skipped, not fatal, as RFC
// 7517 section 5 asks, so one odd key cannot take the whole set down.
func trustedKeys(raw []json.RawMessage) map[string]*rsa.PublicKey {
	keys := make(map[string]*rsa.PublicKey, len(raw))
	for _, r := range raw {
		var meta struct {
			Kty string `json:"kty"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			Kid string `json:"kid"`
		}
		if err := json.Unmarshal(r, &meta); err != nil {
			continue
		}
		if meta.Kty != "RSA" || meta.Kid == "" ||
			(meta.Use != "" && meta.Use != "sig") ||
			(meta.Alg != "" && meta.Alg != string(jose.RS256)) {
			continue
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(r); err != nil {
			continue
		}
		pub, ok := jwk.Key.(*rsa.PublicKey)
		if !ok || pub.N.BitLen() < minRSABits {
			continue
		}
		if _, dup := keys[meta.Kid]; dup {
			continue // first one wins; a kid must name one key
		}
		keys[meta.Kid] = pub
	}
	return keys
}
