// Package oidc verifies JWT access tokens of any standard issuer (Auth0,
// Okta, Entra ID, Keycloak, Hydra, RFC 9068) with go-oidc and go-jose,
// behind a JWKS cache that bounds how often forged or unknown tokens can
// make it call the issuer, and a cache of verified tokens that spares the
// full check for a token seen before. It implements ports.TokenVerifier.
package oidc

import (
	"context"
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
	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

var _ ports.TokenVerifier = (*Verifier)(nil)

const (
	defaultHTTPTimeout        = 5 * time.Second
	defaultMaxResponseBytes   = 1 << 20
	defaultRefreshInterval    = 10 * time.Minute
	defaultMinRefreshInterval = 3 * time.Second

	// maxTokenBytes refuses oversized tokens before any parsing. Auth0
	// access tokens are around 1 KiB; 16 KiB leaves room for hundreds of
	// permissions.
	maxTokenBytes = 16 << 10
)

// signingAlgs are the algorithms Config.SigningAlgs may name: RSA
// (PKCS#1 v1.5 and PSS), ECDSA on its named curve, and Ed25519. Never HMAC
// or none: a verifier that knows only public keys must not accept them.
var signingAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// DefaultScopeClaims are the claims that carry granted scopes at the
// common issuers: scope (RFC 9068, Auth0, Keycloak), scp (an array at Okta
// and Hydra, a string at Entra ID) and permissions (Auth0 with RBAC).
func DefaultScopeClaims() []string { return []string{"scope", "scp", "permissions"} }

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
	// an unknown kid: a key the issuer just published is found on its first
	// use this long after the last fetch, and a flood of unknown kids makes
	// at most one fetch per interval. Default 3s: 20 a minute, and a new
	// key works within 5 s of its first use with room for the fetch.
	MinRefreshInterval time.Duration
	// SigningAlgs are the algorithms tokens may be signed with: RS256/384/512,
	// PS256/384/512, ES256/384/512 or EdDSA. Default RS256.
	SigningAlgs []string
	// ScopeClaims name the claims that carry granted scopes, each a
	// space-delimited string or an array of strings. Default
	// DefaultScopeClaims.
	ScopeClaims []string
	// RequireATJWT refuses tokens whose typ header is not at+jwt (RFC 9068).
	RequireATJWT bool
	// ClockSkew is how far exp and nbf may be off, the same way for both:
	// valid while exp+skew is after now and nbf-skew is not. Default 0.
	ClockSkew time.Duration
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
	if c.HTTPTimeout < 0 || c.RefreshInterval < 0 || c.MinRefreshInterval < 0 || c.ClockSkew < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.MaxResponseBytes < 0 || c.CacheSize < 0 {
		errs = append(errs, errors.New("sizes must not be negative"))
	}
	return errors.Join(append(errs, c.tokenRuleErrors()...)...)
}

func (c Config) tokenRuleErrors() []error {
	var errs []error
	for _, alg := range c.SigningAlgs {
		if !slices.Contains(signingAlgs, alg) {
			errs = append(errs, fmt.Errorf("signing algorithm %q is not one of %s", alg, strings.Join(signingAlgs, ", ")))
		}
	}
	if slices.Contains(c.ScopeClaims, "") {
		errs = append(errs, errors.New("a scope claim name is empty"))
	}
	return errs
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
	if len(c.SigningAlgs) == 0 {
		c.SigningAlgs = []string{oidc.RS256}
	}
	if len(c.ScopeClaims) == 0 {
		c.ScopeClaims = DefaultScopeClaims()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Verifier checks JWT access tokens. It refuses everything with
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
		cache:  newTokenCache(cfg.CacheSize, cfg.ClockSkew, cfg.Cache),
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
		algs:        joseAlgs(v.cfg.SigningAlgs),
		now:         v.cfg.Now,
		onRefresh:   v.cfg.OnRefresh,
		base:        ctx,
	}
	if err := keys.refresh(ctx); err != nil {
		return err
	}
	v.ready.Store(&loaded{
		keys: keys,
		// The times are ours to check (timesHold): go-oidc would add five
		// minutes of leeway to nbf and read out-of-range numbers as wrapped.
		verifier: oidc.NewVerifier(v.cfg.Issuer, keys, &oidc.Config{
			ClientID:             v.cfg.Audience,
			SupportedSigningAlgs: v.cfg.SigningAlgs,
			SkipExpiryCheck:      true,
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

// Verify checks raw and returns the principal it speaks for: canonical
// compact serialization, an allowed algorithm under a published key that
// fits it, iss exactly Issuer, aud containing Audience, typ at+jwt if
// RequireATJWT, exp required, exp/nbf/iat JSON numbers within int64
// seconds, exp and nbf held to ClockSkew. A token that passed all that
// before, under a key still published, is answered from the cache. Every
// refusal is a *domain.TokenError; neither it nor anything logged contains
// raw.
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

// verify is the full check: go-oidc parses the token and checks iss and
// aud, the key set checks the signature through go-jose, and the claims are
// decoded once, strictly, from the verified payload for the rest.
//
// It alone needs the canonical check: the cache is keyed by the token's
// exact bytes and stores only tokens that passed it, so a re-spelled token
// can neither hit an entry nor take one, and a hit costs no extra scan.
func (v *Verifier) verify(ctx context.Context, l *loaded, raw string) (domain.Principal, verdict, error) {
	if err := canonical(raw); err != nil {
		return domain.Principal{}, verdict{}, &domain.TokenError{Reason: domain.ReasonMalformed, Err: err}
	}
	call := &verifyCall{}
	_, oidcErr := l.verifier.Verify(withCall(ctx, call), raw)
	if call.refusal != nil {
		return domain.Principal{}, verdict{}, call.refusal
	}
	if call.payload == nil {
		// go-oidc refused before asking for the signature: the token does
		// not even parse as a JWS with an allowed algorithm.
		reason := domain.ReasonMalformed
		if alg := headerAlg(raw); alg != "" && !slices.Contains(v.cfg.SigningAlgs, alg) {
			reason = domain.ReasonBadAlgorithm
		}
		return domain.Principal{}, verdict{}, &domain.TokenError{Reason: reason, Err: oidcErr}
	}
	c, err := parseClaims(call.payload, v.cfg.ScopeClaims)
	if err != nil {
		return domain.Principal{}, verdict{}, &domain.TokenError{Reason: domain.ReasonMalformed, Err: fmt.Errorf("decode claims: %w", err)}
	}
	if refusal := v.classify(c, call.typ, oidcErr); refusal != nil {
		return domain.Principal{}, verdict{}, refusal
	}
	p := domain.NewPrincipal(c.Subject, c.Scopes)
	if c.Confirmation != nil {
		p = p.BoundTo(c.Confirmation.JKT)
	}
	return p, verdict{principal: p, exp: c.Expiry.time(), nbf: c.NotBefore.time(), kid: call.kid, key: call.key}, nil
}

// classify names what is wrong with a correctly signed token, or returns
// nil. go-oidc returns untyped errors, so its checks are repeated here in
// its order to name the reason; iss and aud are checked even when go-oidc
// accepts, as they are our contract and go-oidc is lax about iss for one
// issuer (Google). The times are ours alone (go-oidc skips them).
func (v *Verifier) classify(c claims, typ string, oidcErr error) *domain.TokenError {
	switch {
	case c.Issuer != v.cfg.Issuer:
		return &domain.TokenError{Reason: domain.ReasonWrongIssuer, Err: fmt.Errorf("iss is %q, want %q", c.Issuer, v.cfg.Issuer)}
	case !slices.Contains(c.Audience, v.cfg.Audience):
		return &domain.TokenError{Reason: domain.ReasonWrongAudience, Err: fmt.Errorf("aud %q does not contain %q", []string(c.Audience), v.cfg.Audience)}
	case c.Expiry == nil:
		return &domain.TokenError{Reason: domain.ReasonMissingExpiry, Err: errors.New("token has no exp claim")}
	case oidcErr != nil:
		return &domain.TokenError{Reason: domain.ReasonMalformed, Err: oidcErr}
	case v.cfg.RequireATJWT && !isATJWT(typ):
		return &domain.TokenError{Reason: domain.ReasonMalformed, Err: fmt.Errorf("typ %q is not at+jwt (RFC 9068)", typ)}
	case c.Subject == "":
		return &domain.TokenError{Reason: domain.ReasonMalformed, Err: errors.New("token has no sub claim")}
	}
	if reason := timesHold(v.cfg.Now(), c.Expiry.time(), c.NotBefore.time(), v.cfg.ClockSkew); reason != "" {
		return &domain.TokenError{Reason: reason, Err: fmt.Errorf("exp %d, nbf %v, skew %s", *c.Expiry, c.NotBefore, v.cfg.ClockSkew)}
	}
	return nil
}

// timesHold is the one rule for exp and nbf, on a miss and on a cache hit:
// the token is valid while now is before exp+skew (RFC 7519: at exp it has
// expired) and not before nbf-skew. It returns the refusal reason, or "".
// nbf is zero when the token has none.
func timesHold(now, exp, nbf time.Time, skew time.Duration) string {
	switch {
	case !now.Before(exp.Add(skew)):
		return domain.ReasonExpired
	case now.Add(skew).Before(nbf):
		return domain.ReasonNotYetValid
	}
	return ""
}

// isATJWT reads typ as RFC 7515 section 4.1.9 says: a media type, compared
// case-insensitively, with "application/" optional.
func isATJWT(typ string) bool {
	typ = strings.ToLower(typ)
	return typ == "at+jwt" || typ == "application/at+jwt"
}

// headerAlg reads the alg of a compact token's header, to name an
// algorithm refusal; "" when the header does not parse.
func headerAlg(raw string) string {
	segment, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.Strict().DecodeString(segment)
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

func joseAlgs(algs []string) []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}

// audience is aud as a list; RFC 7519 allows a single string too.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' { // by the first byte: a failed decode costs an error
		var one string
		err := json.Unmarshal(b, &one)
		*a = audience{one}
		return err
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("aud must be a string or an array of strings: %w", err)
	}
	*a = many
	return nil
}

// verifyCall carries one Verify call through go-oidc to keySet and back:
// the typed outcome go-oidc's string errors would lose, and what the
// signature check learnt.
type verifyCall struct {
	payload []byte             // set once the signature verified
	kid     string             // the header's kid
	typ     string             // the header's typ
	key     *publicKey         // the key that verified it
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
