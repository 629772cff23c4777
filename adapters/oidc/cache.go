package oidc

import (
	"crypto/rsa"
	"crypto/sha256"
	"time"
	"unsafe"

	"github.com/maypok86/otter/v2"

	"github.com/trustchain/trustchain/domain"
)

// CacheHooks learn what the verified-token cache does, for metrics. Each
// must be fast and safe for concurrent use; nil ones are skipped.
type CacheHooks struct {
	Hit, Miss, Evict func()
}

// tokenCache remembers verdicts of tokens that passed every check, so a
// token presented again is not parsed and RSA-verified again. It never
// weakens a check:
//
//   - the key is the SHA-256 of the raw token; the token itself is never kept;
//   - an entry is what the full check produced (the principal), with the
//     token's exp and nbf and the exact key that verified its signature;
//   - a hit counts only while now < exp, with no leeway, and nbf still holds;
//   - the key must still be the one published under its kid: a key gone
//     from the JWKS after a refresh takes every verdict it signed with it;
//   - the caller applies the scope requirement after the lookup, as on a
//     miss, and only successful checks are ever stored.
//
// Memory: at most size entries (otter's S3-FIFO evicts in O(1) and reads
// take no lock). An entry is about 250 bytes plus the token's sub and
// scopes; an Auth0 access token's are a few hundred bytes, so the default
// 10,000 entries stay under about 6 MiB. Tokens are capped at 16 KiB, which
// bounds an entry at about 17 KiB whatever the issuer puts in a token.
type tokenCache struct {
	c     *otter.Cache[[sha256.Size]byte, verdict]
	hooks CacheHooks
}

// verdict is what a successful full check established about one token.
type verdict struct {
	principal domain.Principal
	exp, nbf  time.Time // nbf is zero when the token has none
	kid       string
	key       *rsa.PublicKey
}

func newTokenCache(size int, hooks CacheHooks) *tokenCache {
	if size <= 0 {
		return nil
	}
	return &tokenCache{
		hooks: hooks,
		c: otter.Must(&otter.Options[[sha256.Size]byte, verdict]{
			MaximumSize: size,
			// Expired verdicts would never be used again: let them go when
			// their token does, rather than wait for eviction.
			ExpiryCalculator: otter.ExpiryCreatingFunc(func(e otter.Entry[[sha256.Size]byte, verdict]) time.Duration {
				return time.Until(e.Value.exp)
			}),
			OnDeletion: func(e otter.DeletionEvent[[sha256.Size]byte, verdict]) {
				if e.Cause == otter.CauseOverflow && hooks.Evict != nil {
					hooks.Evict()
				}
			},
		}),
	}
}

// tokenKey hashes raw without copying it: Sum256 neither keeps nor changes
// its input, so viewing the string's bytes is safe and spares an
// allocation of the token's size on every request.
func tokenKey(raw string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

// get returns the principal of a token verified before, if its verdict
// still holds at now under the keys currently published.
func (tc *tokenCache) get(key [sha256.Size]byte, now time.Time, keys *keySet) (domain.Principal, bool) {
	v, ok := tc.c.GetIfPresent(key)
	if ok && (!now.Before(v.exp) || now.Add(nbfLeeway).Before(v.nbf) || keys.current(v.kid) != v.key) {
		// Stale: the full check decides, and names the reason.
		tc.c.Invalidate(key)
		ok = false
	}
	if ok {
		call(tc.hooks.Hit)
		return v.principal, true
	}
	call(tc.hooks.Miss)
	return domain.Principal{}, false
}

func (tc *tokenCache) put(key [sha256.Size]byte, v verdict) { tc.c.Set(key, v) }

func (tc *tokenCache) len() int { return tc.c.EstimatedSize() }

func (tc *tokenCache) close() { tc.c.StopAllGoroutines() }

func call(f func()) {
	if f != nil {
		f()
	}
}
