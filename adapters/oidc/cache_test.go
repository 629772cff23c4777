package oidc_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/oidc"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/testclock"
)

// counters records the cache hooks.
type counters struct{ hits, misses, evictions atomic.Int64 }

func (c *counters) hooks() oidc.CacheHooks {
	return oidc.CacheHooks{
		Hit:   func() { c.hits.Add(1) },
		Miss:  func() { c.misses.Add(1) },
		Evict: func() { c.evictions.Add(1) },
	}
}

func cachedVerifier(t *testing.T, ti *testIssuer, edit func(*oidc.Config)) (*oidc.Verifier, *counters) {
	t.Helper()
	var c counters
	cfg := testConfig(ti)
	cfg.CacheSize = 100
	cfg.Cache = c.hooks()
	if edit != nil {
		edit(&cfg)
	}
	return startVerifier(t, cfg), &c
}

func TestCacheAnswersARepeatedToken(t *testing.T) {
	ti := newTestIssuer(t, false)
	v, c := cachedVerifier(t, ti, nil)
	token := ti.mint(t, func(m map[string]any) { m["scope"] = "read:products openid" })
	var first domain.Principal
	for i := range 3 {
		p, err := v.Verify(context.Background(), token)
		if err != nil {
			t.Fatalf("Verify #%d: %v", i+1, err)
		}
		if i == 0 {
			first = p
		} else if p.Subject() != first.Subject() || !slices.Equal(p.Scopes(), first.Scopes()) {
			t.Fatalf("a hit answered %v, the full check %v", p, first)
		}
	}
	if c.misses.Load() != 1 || c.hits.Load() != 2 || v.CacheLen() != 1 {
		t.Fatalf("misses %d, hits %d, entries %d; want 1, 2, 1", c.misses.Load(), c.hits.Load(), v.CacheLen())
	}
}

func TestCachedTokenIsRefusedTheSecondItExpires(t *testing.T) {
	ti := newTestIssuer(t, false)
	clk := &testclock.Offset{}
	v, c := cachedVerifier(t, ti, func(cfg *oidc.Config) { cfg.Now = clk.Now })
	exp := clk.Now().Add(time.Minute).Truncate(time.Second)
	token := ti.mint(t, func(m map[string]any) { m["exp"] = exp.Unix() })
	ctx := context.Background()
	if _, err := v.Verify(ctx, token); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	clk.Advance(exp.Add(-time.Second).Sub(clk.Now()))
	if _, err := v.Verify(ctx, token); err != nil {
		t.Fatalf("a second before exp: %v", err)
	}
	if c.hits.Load() != 1 {
		t.Fatalf("hits = %d, want 1: the token was still valid and cached", c.hits.Load())
	}
	clk.Advance(exp.Sub(clk.Now()))
	_, err := v.Verify(ctx, token)
	if got := reasonOf(t, err); got != domain.ReasonExpired {
		t.Fatalf("at exp: reason %q, want expired (error %v)", got, err)
	}
	if c.hits.Load() != 1 {
		t.Fatalf("hits = %d: an expired entry counted as a hit", c.hits.Load())
	}
}

func TestCachedTokenIsRefusedOnceItsKeyIsGone(t *testing.T) {
	ti := newTestIssuer(t, false)
	results := newRefreshes()
	v, _ := cachedVerifier(t, ti, func(cfg *oidc.Config) {
		cfg.RefreshInterval = 20 * time.Millisecond
		cfg.OnRefresh = results.record
	})
	ctx := context.Background()
	oldToken := ti.mint(t, nil)
	if _, err := v.Verify(ctx, oldToken); err != nil {
		t.Fatal(err)
	}
	// Unchanged keys survive a refresh, and so do the verdicts under them.
	results.next(t, "ok")
	if _, err := v.Verify(ctx, oldToken); err != nil {
		t.Fatalf("after a refresh that kept the key: %v", err)
	}
	if err := ti.RotateKey(); err != nil {
		t.Fatal(err)
	}
	// Two more fetches: the second certainly began after the rotation.
	for hits := ti.jwksHits.Load(); ti.jwksHits.Load() < hits+2; {
		time.Sleep(5 * time.Millisecond)
	}
	results.next(t, "ok")
	_, err := v.Verify(ctx, oldToken)
	if got := reasonOf(t, err); got != domain.ReasonUnknownKID {
		t.Fatalf("token under a removed key: reason %q, want unknown_kid (error %v)", got, err)
	}
	if _, err := v.Verify(ctx, ti.mint(t, nil)); err != nil {
		t.Fatalf("token under the new key: %v", err)
	}
}

func TestScopeIsNotTheCachesBusiness(t *testing.T) {
	// The verifier returns the principal; the caller checks the scope
	// after, hit or miss. A token without the scope is a valid token.
	ti := newTestIssuer(t, false)
	v, c := cachedVerifier(t, ti, nil)
	token := ti.mint(t, func(m map[string]any) { m["scope"] = "openid"; m["permissions"] = []string{} })
	for range 2 {
		p, err := v.Verify(context.Background(), token)
		if err != nil || p.HasScope("read:products") {
			t.Fatalf("Verify = %v, %v; want a principal without read:products", p, err)
		}
	}
	if c.hits.Load() != 1 {
		t.Fatalf("hits = %d, want 1", c.hits.Load())
	}
}

func TestCacheUnderConcurrency(t *testing.T) {
	ti := newTestIssuer(t, false)
	v, c := cachedVerifier(t, ti, nil)
	tokens := make([]string, 8)
	for i := range tokens {
		tokens[i] = ti.mint(t, func(m map[string]any) { m["jti"] = i })
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64*len(tokens))
	for g := range 64 {
		wg.Go(func() {
			for i := range tokens {
				if _, err := v.Verify(context.Background(), tokens[(g+i)%len(tokens)]); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if total := c.hits.Load() + c.misses.Load(); total != int64(64*len(tokens)) {
		t.Fatalf("hits+misses = %d, want one per call", total)
	}
	if v.CacheLen() != len(tokens) {
		t.Fatalf("entries = %d, want %d", v.CacheLen(), len(tokens))
	}
}

// A DPoP-bound token's cnf.jkt is part of the verdict: the cache answers
// it as the full check did, and an unbound token has none.
func TestCacheKeepsTheTokensKeyBinding(t *testing.T) {
	ti := newTestIssuer(t, false)
	v, c := cachedVerifier(t, ti, nil)
	const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	bound := ti.mint(t, func(m map[string]any) { m["cnf"] = map[string]any{"jkt": jkt} })
	for i := range 2 {
		p, err := v.Verify(context.Background(), bound)
		if err != nil {
			t.Fatal(err)
		}
		if p.KeyThumbprint() != jkt {
			t.Fatalf("check #%d: jkt %q, want %q", i+1, p.KeyThumbprint(), jkt)
		}
	}
	p, err := v.Verify(context.Background(), ti.mint(t, nil))
	if err != nil || p.KeyThumbprint() != "" {
		t.Fatalf("unbound token: jkt %q, %v", p.KeyThumbprint(), err)
	}
	if c.hits.Load() != 1 {
		t.Errorf("hits %d, want 1", c.hits.Load())
	}
}
