package oidc

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

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
// it looks keys up by kid in a cache and goes to the network only for a kid
// it has never seen, at most once per minInterval, with concurrent callers
// sharing one fetch. A bad signature under a known kid costs no request, so
// forged tokens cannot be turned into a flood against the issuer.
type keySet struct {
	jwksURL     string
	client      *http.Client
	timeout     time.Duration
	minInterval time.Duration
	now         func() time.Time
	onRefresh   func(string)
	// base bounds every fetch's lifetime (Run's context), so a fetch outlives
	// the caller that triggered it but not the verifier.
	base context.Context

	mu        sync.Mutex
	keys      map[string]*rsa.PublicKey // by kid; replaced whole on each fetch
	lastFetch time.Time                 // start of the latest fetch, for the rate bound
	inflight  *fetchCall
}

type fetchCall struct {
	done chan struct{}
	err  error // set before done is closed
}

// VerifySignature implements oidc.KeySet. go-oidc flattens the error it
// returns into a string, so the typed refusal is also left in the call's
// verifyCall for Verify to report.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	call := callFrom(ctx)
	jws := call.jws
	if jws == nil {
		// Only reached if someone calls the key set directly; Verify always
		// passes the token it already parsed.
		var err error
		if jws, err = jose.ParseSignedCompact(raw, allowedAlgs); err != nil {
			return nil, call.fail(&domain.TokenError{Reason: domain.ReasonMalformed, Err: err})
		}
	}
	if len(jws.Signatures) != 1 {
		return nil, call.fail(&domain.TokenError{Reason: domain.ReasonMalformed, Err: errors.New("token must carry exactly one signature")})
	}
	key, refusal := k.key(ctx, jws.Signatures[0].Header.KeyID)
	if refusal != nil {
		return nil, call.fail(refusal)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, call.fail(&domain.TokenError{Reason: domain.ReasonBadSignature, Err: err})
	}
	call.payload = payload
	return payload, nil
}

// key returns the trusted key for kid, refetching the JWKS only for an
// unseen kid and only if the rate bound allows it.
func (k *keySet) key(ctx context.Context, kid string) (*rsa.PublicKey, *domain.TokenError) {
	if kid == "" {
		// Auth0 always sets kid; without one there is nothing to look up,
		// and trying every key would only make forgeries cheaper to test.
		return nil, &domain.TokenError{Reason: domain.ReasonUnknownKID, Err: errors.New("token has no kid header")}
	}
	k.mu.Lock()
	if key, ok := k.keys[kid]; ok {
		k.mu.Unlock()
		return key, nil
	}
	call := k.inflight
	if call == nil {
		if k.now().Sub(k.lastFetch) < k.minInterval {
			k.mu.Unlock()
			k.report(refreshRateLimited)
			return nil, &domain.TokenError{Reason: domain.ReasonUnknownKID, Err: errors.New("kid not in the key set; refetch rate-limited")}
		}
		call = k.startFetchLocked()
	}
	k.mu.Unlock()

	if err := k.wait(ctx, call); err != nil {
		return nil, &domain.TokenError{Reason: domain.ReasonKeysUnavailable, Err: err}
	}
	k.mu.Lock()
	key, ok := k.keys[kid]
	k.mu.Unlock()
	if !ok {
		return nil, &domain.TokenError{Reason: domain.ReasonUnknownKID, Err: errors.New("kid not in the refreshed key set")}
	}
	return key, nil
}

// refresh fetches the JWKS now, joining a fetch already in flight, and
// ignores the rate bound: it is the periodic refresh and the initial load.
func (k *keySet) refresh(ctx context.Context) error {
	k.mu.Lock()
	call := k.inflight
	if call == nil {
		call = k.startFetchLocked()
	}
	k.mu.Unlock()
	return k.wait(ctx, call)
}

// loaded reports whether a key set has been fetched at least once.
func (k *keySet) loaded() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys != nil
}

func (k *keySet) wait(ctx context.Context, call *fetchCall) error {
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return fmt.Errorf("wait for JWKS: %w", ctx.Err())
	}
}

func (k *keySet) startFetchLocked() *fetchCall {
	call := &fetchCall{done: make(chan struct{})}
	k.inflight = call
	k.lastFetch = k.now()
	go func() {
		keys, err := k.fetch()
		k.mu.Lock()
		if err == nil {
			// Replace, never merge: a key the issuer stopped publishing must
			// stop being trusted.
			k.keys = keys
		}
		k.inflight = nil
		k.mu.Unlock()
		call.err = err
		close(call.done)
		if err != nil {
			k.report(refreshError)
		} else {
			k.report(refreshOK)
		}
	}()
	return call
}

func (k *keySet) report(result string) {
	if k.onRefresh != nil {
		k.onRefresh(result)
	}
}

func (k *keySet) fetch() (map[string]*rsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(k.base, k.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.jwksURL, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: status %s", resp.Status)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("fetch JWKS: decode: %w", err)
	}
	keys := trustedKeys(doc.Keys)
	if len(keys) == 0 {
		// Keep the current keys rather than trust nothing: an issuer with no
		// usable key is a broken response, not a revocation of everything.
		return nil, fmt.Errorf("fetch JWKS: none of %d keys is a usable RS256 signing key", len(doc.Keys))
	}
	return keys, nil
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
