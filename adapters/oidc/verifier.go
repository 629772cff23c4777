// Package oidc verifies Auth0 RS256 access tokens with go-oidc, behind a JWKS
// cache that bounds how often forged or unknown tokens can make it call the
// issuer. It implements ports.TokenVerifier.
package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	defaultMinRefreshInterval = 30 * time.Second

	// maxTokenBytes refuses oversized tokens before any parsing. Auth0
	// access tokens are around 1 KiB; 16 KiB leaves room for hundreds of
	// permissions.
	maxTokenBytes = 16 << 10

	// nbfLeeway mirrors go-oidc, which accepts a token up to five minutes
	// before its nbf to absorb clock skew. exp gets no leeway and iat is not
	// checked at all. We only need the value to name the refusal.
	nbfLeeway = 5 * time.Minute

	initialBackoff = 250 * time.Millisecond
	maxBackoff     = 30 * time.Second
)

// allowedAlgs is the whole algorithm policy: Auth0 signs access tokens with
// RS256, and accepting anything else only opens doors (none, HS256 keyed
// with the public key, a key of another type under a known kid).
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256}

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
	// Logger receives discovery and refresh problems. Default: discard.
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
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("audience is required"))
	}
	if c.HTTPTimeout < 0 || c.RefreshInterval < 0 || c.MinRefreshInterval < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.MaxResponseBytes < 0 {
		errs = append(errs, errors.New("max response bytes must not be negative"))
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
// domain.ErrVerifierNotReady until Run has loaded the issuer's keys.
type Verifier struct {
	cfg     Config
	client  *http.Client
	started atomic.Bool
	ready   atomic.Pointer[loaded]
}

// loaded is what Run publishes once discovery and the first JWKS succeed.
type loaded struct {
	keys     *keySet
	verifier *oidc.IDTokenVerifier
}

// New validates cfg. It does no network I/O; Run does.
func New(cfg Config) (*Verifier, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("oidc config: %w", err)
	}
	cfg = cfg.withDefaults()
	return &Verifier{
		cfg:    cfg,
		client: newHTTPClient(cfg.HTTPClient, cfg.HTTPTimeout, cfg.MaxResponseBytes),
	}, nil
}

// Run discovers the issuer and loads its keys, retrying with backoff until
// both succeed, then refreshes the keys every RefreshInterval. It blocks
// until ctx is done and then returns nil. A failed refresh keeps the keys
// already loaded, so an issuer outage does not lock out valid tokens.
func (v *Verifier) Run(ctx context.Context) error {
	if !v.started.CompareAndSwap(false, true) {
		return errors.New("oidc: Run called twice")
	}
	var jwksURL string
	if !v.retry(ctx, "discover issuer", func() error {
		var err error
		jwksURL, err = v.discover(ctx)
		return err
	}) {
		return nil
	}
	keys := &keySet{
		jwksURL:     jwksURL,
		client:      v.client,
		timeout:     v.cfg.HTTPTimeout,
		minInterval: v.cfg.MinRefreshInterval,
		now:         v.cfg.Now,
		onRefresh:   v.cfg.OnRefresh,
		base:        ctx,
	}
	if !v.retry(ctx, "load JWKS", func() error { return keys.refresh(ctx) }) {
		return nil
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

	ticker := time.NewTicker(v.cfg.RefreshInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if err := keys.refresh(ctx); err != nil && ctx.Err() == nil {
				v.cfg.Logger.Warn("JWKS refresh failed; keeping the keys already loaded", "issuer", v.cfg.Issuer, "error", err)
			}
		}
	}
}

// retry calls step until it succeeds (true) or ctx is done (false), with
// jittered exponential backoff so restarting replicas do not hammer the
// issuer in step.
func (v *Verifier) retry(ctx context.Context, what string, step func() error) bool {
	backoff := initialBackoff
	for attempt := 1; ; attempt++ {
		err := step()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		v.cfg.Logger.Warn("oidc startup step failed; retrying", "step", what, "attempt", attempt, "retry_in", wait, "error", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// discover reads the issuer's discovery document and returns its jwks_uri.
// It is done here rather than by oidc.NewProvider so that a failure never
// puts the (possibly large) response body into an error.
func (v *Verifier) discover(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.HTTPTimeout)
	defer cancel()
	wellKnown := strings.TrimSuffix(v.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, wellKnown, nil)
	if err != nil {
		return "", fmt.Errorf("discover %s: %w", wellKnown, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("discover %s: %w", wellKnown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("discover %s: status %s", wellKnown, resp.Status)
	}
	var doc oidc.ProviderConfig
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return "", fmt.Errorf("discover %s: decode: %w", wellKnown, err)
	}
	// Exact match, as go-oidc's NewProvider requires: a missing trailing
	// slash is a different issuer and every token would fail its iss check.
	if doc.IssuerURL != v.cfg.Issuer {
		return "", fmt.Errorf("discover %s: issuer is %q, configured %q", wellKnown, doc.IssuerURL, v.cfg.Issuer)
	}
	if u, err := url.Parse(doc.JWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("discover %s: jwks_uri %q is not an absolute http(s) URL", wellKnown, doc.JWKSURL)
	}
	return doc.JWKSURL, nil
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
// honoured with go-oidc's five minutes of skew, iat unchecked. Every refusal
// is a *domain.TokenError; neither it nor anything logged contains raw.
func (v *Verifier) Verify(ctx context.Context, raw string) (domain.Principal, error) {
	l := v.ready.Load()
	if l == nil {
		return domain.Principal{}, fmt.Errorf("verify token: %w", domain.ErrVerifierNotReady)
	}
	if len(raw) > maxTokenBytes {
		return refuse(domain.ReasonMalformed, fmt.Errorf("token is %d bytes, more than %d", len(raw), maxTokenBytes))
	}
	// Parsing here, before go-oidc, names algorithm refusals precisely and
	// rejects the JSON serialization go-oidc would also accept.
	jws, err := jose.ParseSignedCompact(raw, allowedAlgs)
	if err != nil {
		if algErr := (*jose.ErrUnexpectedSignatureAlgorithm)(nil); errors.As(err, &algErr) {
			return refuse(domain.ReasonBadAlgorithm, err)
		}
		return refuse(domain.ReasonMalformed, err)
	}

	call := &verifyCall{jws: jws}
	_, oidcErr := l.verifier.Verify(withCall(ctx, call), raw)
	if call.refusal != nil {
		return domain.Principal{}, call.refusal
	}
	if call.payload == nil {
		// go-oidc refused before asking for the signature.
		return refuse(domain.ReasonMalformed, oidcErr)
	}
	var c claims
	if err := json.Unmarshal(call.payload, &c); err != nil {
		return refuse(domain.ReasonMalformed, fmt.Errorf("decode claims: %w", err))
	}
	if refusal := v.classify(c, oidcErr); refusal != nil {
		return domain.Principal{}, refusal
	}
	if c.Subject == "" {
		return refuse(domain.ReasonMalformed, errors.New("token has no sub claim"))
	}
	return domain.NewPrincipal(c.Subject, c.scopes()), nil
}

// classify names go-oidc's verdict on a correctly signed token. go-oidc
// returns untyped errors except for expiry, so the reason is found by
// checking the claims in go-oidc's own order. iss, aud and exp presence are
// checked even when go-oidc accepts: they are our contract, go-oidc is lax
// about iss for one issuer (Google), and it calls a missing exp "expired".
func (v *Verifier) classify(c claims, oidcErr error) *domain.TokenError {
	var expired *oidc.TokenExpiredError
	switch {
	case c.Issuer != v.cfg.Issuer:
		return &domain.TokenError{Reason: domain.ReasonWrongIssuer, Err: fmt.Errorf("iss is %q, want %q", c.Issuer, v.cfg.Issuer)}
	case !slices.Contains(c.Audience, v.cfg.Audience):
		return &domain.TokenError{Reason: domain.ReasonWrongAudience, Err: fmt.Errorf("aud %q does not contain %q", []string(c.Audience), v.cfg.Audience)}
	case len(c.Expiry) == 0 || string(c.Expiry) == "null":
		return &domain.TokenError{Reason: domain.ReasonMissingExpiry, Err: errors.New("token has no exp claim")}
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
// the token already parsed, and the typed outcome go-oidc's string errors
// would lose.
type verifyCall struct {
	jws     *jose.JSONWebSignature
	payload []byte             // set once the signature verified
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
