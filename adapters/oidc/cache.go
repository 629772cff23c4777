package oidc

import (
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/hashicorp/golang-lru/v2/simplelru"

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
//     only canonical tokens are stored, so a re-spelling of one (same
//     signature, other bytes) can neither hit its entry nor take its own;
//   - an entry is what the full check produced (the principal), with the
//     token's exp and nbf and the exact key that verified its signature;
//   - a hit counts only while exp and nbf hold under the same rule and
//     clock skew as the full check (timesHold);
//   - the key must still be the one published under its kid: a key gone
//     from the JWKS after a refresh takes every verdict it signed with it;
//   - the caller applies the scope requirement after the lookup, as on a
//     miss, and only successful checks are ever stored.
//
// Memory: at most size entries, split evenly over shards picked by the key
// (a SHA-256, so uniformly): each shard is a hashicorp/golang-lru LRU behind
// its own mutex, so concurrent requests rarely wait on one another, and
// eviction is O(1). An entry is about 250 bytes plus the token's sub and
// scopes; an Auth0 access token's are a few hundred bytes, so the default
// 10,000 entries stay under about 6 MiB. Tokens are capped at 16 KiB, which
// bounds an entry at about 17 KiB whatever the issuer puts in a token.
// Expired verdicts are dropped when next looked up, or age out.
type tokenCache struct {
	shards []cacheShard
	mask   uint64 // len(shards)-1; the count is a power of two
	skew   time.Duration
	hooks  CacheHooks
}

type cacheShard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[[sha256.Size]byte, verdict]
	_   [48]byte // one shard per cache line: neighbours' locks do not share one
}

// verdict is what a successful full check established about one token.
type verdict struct {
	principal domain.Principal
	exp, nbf  time.Time // nbf is zero when the token has none
	kid       string
	key       *publicKey
}

// maxShards bounds the lock striping: enough that a busy many-core node's
// requests spread out, few enough that each shard's LRU order still means
// something.
const maxShards = 64

func newTokenCache(size int, skew time.Duration, hooks CacheHooks) *tokenCache {
	if size <= 0 {
		return nil
	}
	n := 1
	for n < 4*runtime.GOMAXPROCS(0) && n < maxShards && 2*n <= size {
		n *= 2
	}
	tc := &tokenCache{shards: make([]cacheShard, n), mask: uint64(n - 1), skew: skew, hooks: hooks}
	for i := range tc.shards {
		// Exactly size in all: the first size%n shards take one more.
		capacity := size / n
		if i < size%n {
			capacity++
		}
		tc.shards[i].lru, _ = simplelru.NewLRU[[sha256.Size]byte, verdict](capacity, nil) // capacity >= 1: n <= size
	}
	return tc
}

func (tc *tokenCache) shard(key [sha256.Size]byte) *cacheShard {
	return &tc.shards[binary.LittleEndian.Uint64(key[:8])&tc.mask]
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
	sh := tc.shard(key)
	sh.mu.Lock()
	v, ok := sh.lru.Get(key)
	if ok && (timesHold(now, v.exp, v.nbf, tc.skew) != "" || keys.current(v.kid) != v.key) {
		// Stale: the full check decides, and names the reason.
		sh.lru.Remove(key)
		ok = false
	}
	sh.mu.Unlock()
	if ok {
		call(tc.hooks.Hit)
		return v.principal, true
	}
	call(tc.hooks.Miss)
	return domain.Principal{}, false
}

func (tc *tokenCache) put(key [sha256.Size]byte, v verdict) {
	sh := tc.shard(key)
	sh.mu.Lock()
	evicted := sh.lru.Add(key, v)
	sh.mu.Unlock()
	if evicted {
		call(tc.hooks.Evict)
	}
}

func (tc *tokenCache) len() int {
	n := 0
	for i := range tc.shards {
		sh := &tc.shards[i]
		sh.mu.Lock()
		n += sh.lru.Len()
		sh.mu.Unlock()
	}
	return n
}

func call(f func()) {
	if f != nil {
		f()
	}
}
