// Package oidc verifies Auth0 RS256 access tokens with go-oidc, behind a JWKS
// cache that bounds how often forged or unknown tokens can make it call the
// issuer, and a cache of verified tokens that spares the full check for a
// token seen before. It implements ports.TokenVerifier.
package oidc

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

var _ ports.TokenVerifier = (*Verifier)(nil)

const (
	defaultHTTPTimeout        = 5 * time.Second
	defaultMaxResponseBytes   = 1 << 20
	defaultRefreshInterval    = 10 * time.Minute
	defaultMinRefreshInterval = 30 * time.Second

	// maxTokenBytes refuses oversized tokens before any parsing. Auth0
	// access tokens are around 1 KiB; 16 KiB leaves room for hundreds of
	// permissions.
	maxTokenBytes = 16 << 10

	// nbfLeeway mirrors go-oidc, which accepts a token up to five minutes
	// before its nbf to absorb clock skew. exp gets no leeway and iat is not
	// checked at all.
	nbfLeeway = 5 * time.Minute
)

// Config configures a Verifier. Issuer and Audience are required.
type Config struct {
	// Issuer must equal the token's iss exactly; Auth0's ends with a slash.
	Issuer string
	// Audience is the API identifier the token's aud must contain.
	Audience string
	// HTTPClient is copied, never modified, and used for discovery and the
	// JWKS; tests pass one that trusts their TLS root. Default: a client on
	// a clone of http.DefaultTransport.
	HTTPClient *http.Client
	// HTTPTimeout bounds each discovery or JWKS call. Default 5s.
	HTTPTimeout time.Duration
	// MaxResponseBytes bounds discovery and JWKS bodies. Default 1 MiB.
	MaxResponseBytes int64
	// RefreshInterval is how often the JWKS is refetched, so keys the
	// issuer removed stop being trusted. Default 10m.
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between two fetches triggered by
	// an unknown kid. Default 30s.
	MinRefreshInterval time.Duration
	// CacheSize bounds the verified-token cache; 0 turns it off.
	CacheSize int
	// Cache learns cache hits, misses and evictions.
	Cache CacheHooks
	// Logger receives refresh problems. Default: discard.
	Logger *slog.Logger
	// OnRefresh, if set, is called with "ok", "error" or "rate_limited" for
	// every JWKS fetch or suppressed fetch; it must be fast and safe for
	// concurrent use (a metrics counter).
	OnRefresh func(result string)
	// Now is the clock for token times and the rate bound. Default time.Now.
	Now func() time.Time
}

func (c Config) validate() error {
	var errs []error
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("issuer %q must be an absolute http(s) URL", c.Issuer))
	} else if u.User != nil {
		errs = append(errs, errors.New("issuer must not carry a user name or password"))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("audience is required"))
	}
	if c.HTTPTimeout < 0 || c.RefreshInterval < 0 || c.MinRefreshInterval < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.MaxResponseBytes < 0 || c.CacheSize < 0 {
		errs = append(errs, errors.New("sizes must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.HTTPTimeout == 0 {
		c.HTTPTimeout = defaultHTTPTimeout
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = defaultMaxResponseBytes
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = defaultRefreshInterval
	}
	if c.MinRefreshInterval == 0 {
		c.MinRefreshInterval = defaultMinRefreshInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Verifier checks Auth0 access tokens. It refuses everything with
// domain.ErrVerifierNotReady until Start has loaded the issuer's keys.
type Verifier struct {
	cfg    Config
	client *http.Client
	cache  *tokenCache
	ready  atomic.Pointer[loaded]
}

// loaded is what Start publishes once discovery and the first JWKS succeed.
type loaded struct {
	keys     *keySet
	verifier *oidc.IDTokenVerifier
}

// New validates cfg. It does no network I/O; Start does.
func New(cfg Config) (*Verifier, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("oidc config: %w", err)
	}
	cfg = cfg.withDefaults()
	return &Verifier{
		cfg:    cfg,
		client: newHTTPClient(cfg.HTTPClient, cfg.HTTPTimeout),
		cache:  newTokenCache(cfg.CacheSize, cfg.Cache),
	}, nil
}

// Start makes one attempt at discovering the issuer and loading its keys,
// and makes the verifier ready when both succeed. Its error says why not,
// in words an operator can act on; the caller retries. ctx bounds the
// attempt and the lifetime of the key fetches that follow it.
func (v *Verifier) Start(ctx context.Context) error {
	if v.ready.Load() != nil {
		return nil
	}
	jwksURL, err := v.discover(ctx)
	if err != nil {
		return err
	}
	keys := &keySet{
		jwksURL:     jwksURL,
		client:      v.client,
		timeout:     v.cfg.HTTPTimeout,
		maxBytes:    v.cfg.MaxResponseBytes,
		minInterval: v.cfg.MinRefreshInterval,
		now:         v.cfg.Now,
		onRefresh:   v.cfg.OnRefresh,
		base:        ctx,
	}
	if err := keys.refresh(ctx); err != nil {
		return err
	}
	v.ready.Store(&loaded{
		keys: keys,
		verifier: oidc.NewVerifier(v.cfg.Issuer, keys, &oidc.Config{
			ClientID:             v.cfg.Audience,
			SupportedSigningAlgs: []string{oidc.RS256},
			Now:                  v.cfg.Now,
		}),
	})
	v.cfg.Logger.Info("oidc verifier ready", "issuer", v.cfg.Issuer, "jwks_uri", jwksURL)
	return nil
}

// Refresh refetches the keys every RefreshInterval until ctx is done. A
// failed refresh keeps the keys already loaded, so an issuer outage does not
// lock out valid tokens. Call it once Start has succeeded.
func (v *Verifier) Refresh(ctx context.Context) {
	l := v.ready.Load()
	if l == nil {
		return
	}
	ticker := time.NewTicker(v.cfg.RefreshInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := l.keys.refresh(ctx); err != nil && ctx.Err() == nil {
				v.cfg.Logger.Warn("JWKS refresh failed; keeping the keys already loaded", "issuer", v.cfg.Issuer, "error", err.Error())
			}
		}
	}
}

// CacheLen is how many verified tokens the cache holds.
func (v *Verifier) CacheLen() int {
	if v.cache == nil {
		return 0
	}
	return v.cache.len()
}

// discover reads the issuer's discovery document and returns its jwks_uri.
// It is done here rather than by oidc.NewProvider so that a failure never
// puts the (possibly large) response body into an error, and so that the
// jwks_uri can be held to the issuer's own transport security.
func (v *Verifier) discover(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.HTTPTimeout)
	defer cancel()
	wellKnown := strings.TrimSuffix(v.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	var doc oidc.ProviderConfig
	if err := getJSON(ctx, v.client, wellKnown, v.cfg.MaxResponseBytes, &doc); err != nil {
		return "", fmt.Errorf("discover %s: %w", wellKnown, err)
	}
	// Exact match, as go-oidc's NewProvider requires: a missing trailing
	// slash is a different issuer and every token would fail its iss check.
	if doc.IssuerURL != v.cfg.Issuer {
		return "", fmt.Errorf("issuer mismatch: discovery says %q, configured %q", doc.IssuerURL, v.cfg.Issuer)
	}
	if err := v.checkJWKSURL(doc.JWKSURL); err != nil {
		return "", fmt.Errorf("discover %s: %w", wellKnown, err)
	}
	return doc.JWKSURL, nil
}

// checkJWKSURL insists on https for the keys, as for the issuer: plain http
// only when the issuer itself is a loopback http one (the demo's, tests').
func (v *Verifier) checkJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return fmt.Errorf("jwks_uri %q is not an absolute URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		iss, _ := url.Parse(v.cfg.Issuer)
		if iss.Scheme == "http" && domain.IsLoopbackHost(iss.Hostname()) && domain.IsLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("jwks_uri %q is not https: keys must not travel in clear", s)
}

// Ready returns nil once discovery and the first JWKS load have succeeded.
func (v *Verifier) Ready(context.Context) error {
	if v.ready.Load() == nil {
		return fmt.Errorf("oidc: %w", domain.ErrVerifierNotReady)
	}
	return nil
}

// Verify checks raw and returns the principal it speaks for: RS256 only, iss
// exactly Issuer, aud containing Audience, exp required and strict, nbf
// honoured with go-oidc's five minutes of skew, iat unchecked. A token that
// passed all that before, under a key still published, is answered from
// the cache. Every refusal is a *domain.TokenError; neither it nor anything
// logged contains raw.
func (v *Verifier) Verify(ctx context.Context, raw string) (domain.Principal, error) {
	l := v.ready.Load()
	if l == nil {
		return domain.Principal{}, fmt.Errorf("verify token: %w", domain.ErrVerifierNotReady)
	}
	if len(raw) > maxTokenBytes {
		return refuse(domain.ReasonMalformed, fmt.Errorf("token is %d bytes, more than %d", len(raw), maxTokenBytes))
	}
	if v.cache == nil {
		p, _, err := v.verify(ctx, l, raw)
		return p, err
	}
	key := tokenKey(raw)
	if p, ok := v.cache.get(key, v.cfg.Now(), l.keys); ok {
		return p, nil
	}
	p, verdict, err := v.verify(ctx, l, raw)
	if err != nil {
		return p, err
	}
	v.cache.put(key, verdict)
	return p, nil
}

// verify is the full check: go-oidc parses the token and checks iss, aud,
// exp and nbf, the key set checks the signature, and the claims go-oidc
// does not read (scope, permissions, nbf) are decoded once from the
// verified payload.
func (v *Verifier) verify(ctx context.Context, l *loaded, raw string) (domain.Principal, verdict, error) {
	call := &verifyCall{}
	tok, oidcErr := l.verifier.Verify(withCall(ctx, call), raw)
	if call.refusal != nil {
		return domain.Principal{}, verdict{}, call.refusal
	}
	if call.payload == nil {
		// go-oidc refused before asking for the signature: the token does
		// not even parse as a JWS with an allowed algorithm.
		reason := domain.ReasonMalformed
		if alg := headerAlg(raw); alg != "" && alg != oidc.RS256 {
			reason = domain.ReasonBadAlgorithm
		}
		return domain.Principal{}, verdict{}, &domain.TokenError{Reason: reason, Err: oidcErr}
	}
	var c claims
	if err := json.Unmarshal(call.payload, &c); err != nil {
		return domain.Principal{}, verdict{}, &domain.TokenError{Reason: domain.ReasonMalformed, Err: fmt.Errorf("decode claims: %w", err)}
	}
	if refusal := v.classify(c, tok, oidcErr); refusal != nil {
		return domain.Principal{}, verdict{}, refusal
	}
	if c.Subject == "" {
		return domain.Principal{}, verdict{}, &domain.TokenError{Reason: domain.ReasonMalformed, Err: errors.New("token has no sub claim")}
	}
	p := domain.NewPrincipal(c.Subject, c.scopes()).BoundTo(c.Confirmation.JKT)
	return p, verdict{principal: p, exp: tok.Expiry, nbf: c.notBefore(), kid: call.kid, key: call.key}, nil
}

// classify names go-oidc's verdict on a correctly signed token. go-oidc
// returns untyped errors except for expiry, so the reason is found by
// checking the claims in go-oidc's own order. iss, aud and exp presence are
// checked even when go-oidc accepts: they are our contract, go-oidc is lax
// about iss for one issuer (Google), and it calls a missing exp "expired".
// exp is also held to RFC 7519's "now before exp", where go-oidc lets the
// very instant of exp pass.
func (v *Verifier) classify(c claims, tok *oidc.IDToken, oidcErr error) *domain.TokenError {
	var expired *oidc.TokenExpiredError
	switch {
	case c.Issuer != v.cfg.Issuer:
		return &domain.TokenError{Reason: domain.ReasonWrongIssuer, Err: fmt.Errorf("iss is %q, want %q", c.Issuer, v.cfg.Issuer)}
	case !slices.Contains(c.Audience, v.cfg.Audience):
		return &domain.TokenError{Reason: domain.ReasonWrongAudience, Err: fmt.Errorf("aud %q does not contain %q", []string(c.Audience), v.cfg.Audience)}
	case len(c.Expiry) == 0 || string(c.Expiry) == "null":
		return &domain.TokenError{Reason: domain.ReasonMissingExpiry, Err: errors.New("token has no exp claim")}
	case oidcErr == nil && !v.cfg.Now().Before(tok.Expiry):
		return &domain.TokenError{Reason: domain.ReasonExpired, Err: fmt.Errorf("token expired at %s", tok.Expiry.UTC().Format(time.RFC3339))}
	case oidcErr == nil:
		return nil
	case errors.As(oidcErr, &expired):
		return &domain.TokenError{Reason: domain.ReasonExpired, Err: oidcErr}
	case c.notBefore().After(v.cfg.Now().Add(nbfLeeway)):
		return &domain.TokenError{Reason: domain.ReasonNotYetValid, Err: oidcErr}
	default:
		return &domain.TokenError{Reason: domain.ReasonMalformed, Err: oidcErr}
	}
}

// headerAlg reads the alg of a compact token's header, to name an
// algorithm refusal; "" when the header does not parse.
func headerAlg(raw string) string {
	segment, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Alg
}

func refuse(reason string, cause error) (domain.Principal, error) {
	return domain.Principal{}, &domain.TokenError{Reason: reason, Err: cause}
}

// claims are the parts of an Auth0 access token the verifier reads.
type claims struct {
	Issuer      string          `json:"iss"`
	Subject     string          `json:"sub"`
	Audience    audience        `json:"aud"`
	Expiry      json.RawMessage `json:"exp"` // only presence is ours to check
	NotBefore   *json.Number    `json:"nbf"`
	Scope       string          `json:"scope"`
	Permissions []string        `json:"permissions"`
	// Confirmation binds a DPoP token to its key (RFC 9449 §6.1). It is
	// part of the principal, so of the cached verdict too.
	Confirmation struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// scopes joins the space-separated scope claim and Auth0's permissions
// array (set when RBAC is on), without duplicates.
func (c claims) scopes() []string {
	var out []string
	for _, s := range append(strings.Fields(c.Scope), c.Permissions...) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (c claims) notBefore() time.Time {
	if c.NotBefore == nil {
		return time.Time{}
	}
	f, err := c.NotBefore.Float64()
	if err != nil {
		return time.Time{}
	}
	return time.Unix(int64(f), 0)
}

// audience is aud as a list; RFC 7519 allows a single string too.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("aud must be a string or an array of strings: %w", err)
	}
	*a = many
	return nil
}

// verifyCall carries one Verify call through go-oidc to keySet and back:
// the typed outcome go-oidc's string errors would lose, and the key that
// verified the signature.
type verifyCall struct {
	payload []byte             // set once the signature verified
	kid     string             // the header's kid
	key     *rsa.PublicKey     // the key that verified it
	refusal *domain.TokenError // set when keySet refused the token
}

func (c *verifyCall) fail(refusal *domain.TokenError) error {
	c.refusal = refusal
	return refusal
}

type verifyCallKey struct{}

func withCall(ctx context.Context, call *verifyCall) context.Context {
	return context.WithValue(ctx, verifyCallKey{}, call)
}

func callFrom(ctx context.Context) *verifyCall {
	if call, ok := ctx.Value(verifyCallKey{}).(*verifyCall); ok {
		return call
	}
	return &verifyCall{}
}
