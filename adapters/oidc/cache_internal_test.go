package oidc

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustchain/trustchain/domain"
)

// TestCacheSizeStaysBounded stores a million distinct verdicts, as a flood
// of distinct valid tokens would (verifying them for real would take an
// RSA check each, minutes of CPU): the cache never holds more than its size.
func TestCacheSizeStaysBounded(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a million entries: run without -short or -race")
	}
	const size, tokens = 1000, 1_000_000
	var evicted atomic.Int64
	tc := newTokenCache(size, 0, CacheHooks{Evict: func() { evicted.Add(1) }})
	v := verdict{principal: domain.NewPrincipal("auth0|u", nil), exp: time.Now().Add(time.Hour)}
	for i := range tokens {
		tc.put(tokenKey(strconv.Itoa(i)), v)
		if i%100_000 == 0 && tc.len() > size {
			t.Fatalf("after %d tokens the cache holds %d entries, size %d", i, tc.len(), size)
		}
	}
	if n := tc.len(); n != size {
		t.Fatalf("the cache holds %d entries, want exactly its size %d", n, size)
	}
	if n := evicted.Load(); n != tokens-size {
		t.Fatalf("%d evictions reported for %d tokens into %d entries", n, tokens, size)
	}
}

func TestNoCacheWhenSizeIsZero(t *testing.T) {
	if newTokenCache(0, 0, CacheHooks{}) != nil {
		t.Fatal("a cache of size 0 exists")
	}
}
