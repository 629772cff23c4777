// Package oauthlogin gets a user's access token from an OpenID Connect
// issuer with the device authorization grant (RFC 8628), as `trustchain
// login` does: it finds the endpoints by discovery, shows the user where to
// log in, and waits while they do. It works with Auth0 and with the demo
// issuer, and stores nothing. Given a DPoP prover, it gets a token bound to
// the prover's key (RFC 9449).
package oauthlogin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/trustchain/trustchain/domain"
)

// defaultHTTPTimeout bounds each call to the issuer; the wait for the user
// is bounded by the device code's lifetime and the caller's context.
const defaultHTTPTimeout = 30 * time.Second

// Errors a caller can tell apart with errors.Is.
var (
	// ErrNoDeviceGrant: the issuer's discovery document names no
	// device_authorization_endpoint. On Auth0, enable the Device Code
	// grant for the application.
	ErrNoDeviceGrant = errors.New("the issuer does not offer the device authorization grant")
	// ErrAccessDenied: the user turned the login down.
	ErrAccessDenied = errors.New("the login was denied")
	// ErrExpired: the code expired before the user logged in.
	ErrExpired = errors.New("the login code expired")
	// ErrConfig: the Config is incomplete; the message says what is wrong.
	ErrConfig = errors.New("invalid login config")
)

// Config says whom to ask for a token, and for what.
type Config struct {
	// Issuer is the issuer exactly as in the tokens' iss, e.g.
	// https://<tenant>.auth0.com/ (Auth0's ends with a slash).
	Issuer string
	// ClientID is a public client allowed the device grant (on Auth0, a
	// Native application with the Device Code grant).
	ClientID string
	// Audience is the API the token is for; Auth0 issues a JWT access token
	// only when it is given.
	Audience string
	// Scopes asked for, e.g. openid profile read:products.
	Scopes []string
	// Prompt receives the address to open and the code to confirm.
	Prompt io.Writer
	// HTTPClient calls the issuer. Default: a client with a 30s timeout.
	HTTPClient *http.Client
	// DPoP, when set, sends a proof with every token request so that the
	// token is bound to the prover's key (RFC 9449), and refuses a token
	// that comes back unbound.
	DPoP Prover
}

func (c Config) validate() error {
	var errs []error
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("issuer %q must be an absolute http(s) URL", c.Issuer))
	} else if u.Scheme == "http" && !domain.IsLoopbackHost(u.Hostname()) {
		// As strict as the roles: a token fetched in clear text could be
		// read on the way.
		errs = append(errs, fmt.Errorf("issuer %q must use https (http only on loopback)", c.Issuer))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("client ID is required"))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("audience is required"))
	}
	if c.Prompt == nil {
		errs = append(errs, errors.New("a prompt writer is required"))
	}
	return errors.Join(errs...)
}

// Login runs the device authorization grant and returns the user's access
// token. It prints where to log in to cfg.Prompt, then polls the token
// endpoint as often as the issuer allows until the user has logged in,
// denied, or the code expired, or ctx ends; then it prints to cfg.Prompt
// one line naming the token's subject and scopes. Everything of the
// issuer's it prints, error texts included, is made terminal-safe.
func Login(ctx context.Context, cfg Config) (string, error) {
	token, err := login(ctx, cfg)
	if err != nil {
		return "", safeError{err}
	}
	if err := writeSummary(cfg.Prompt, token, cfg.Scopes); err != nil {
		return "", fmt.Errorf("show the login summary: %w", err)
	}
	return token, nil
}

func login(ctx context.Context, cfg Config) (string, error) {
	if err := cfg.validate(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrConfig, err)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: defaultHTTPTimeout}
	}
	// Both go-oidc and oauth2 take their HTTP client from the context.
	ctx = oidc.ClientContext(ctx, client)

	provider, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return "", fmt.Errorf("discover issuer %s: %w%s", cfg.Issuer, err, slashHint(cfg.Issuer, err))
	}
	endpoint := provider.Endpoint() // carries device_authorization_endpoint
	if endpoint.DeviceAuthURL == "" {
		return "", fmt.Errorf("issuer %s: %w", cfg.Issuer, ErrNoDeviceGrant)
	}
	if err := inClearOnlyOnLoopback(cfg.Issuer, endpoint.DeviceAuthURL, endpoint.TokenURL); err != nil {
		return "", fmt.Errorf("issuer %s: %w", cfg.Issuer, err)
	}
	if cfg.DPoP != nil {
		if err := checkDPoP(provider, cfg.DPoP); err != nil {
			return "", fmt.Errorf("issuer %s: %w", cfg.Issuer, err)
		}
		ctx = oidc.ClientContext(ctx, withProofs(client, cfg.DPoP, endpoint.TokenURL))
	}
	// A public client has no secret; its ID goes in the form body.
	endpoint.AuthStyle = oauth2.AuthStyleInParams
	oc := &oauth2.Config{ClientID: cfg.ClientID, Endpoint: endpoint, Scopes: cfg.Scopes}

	da, err := oc.DeviceAuth(ctx, oauth2.SetAuthURLParam("audience", cfg.Audience))
	if err != nil {
		return "", fmt.Errorf("request a device code: %w", err)
	}
	if err := writePrompt(cfg.Prompt, da); err != nil {
		return "", fmt.Errorf("show the login prompt: %w", err)
	}
	tok, err := oc.DeviceAccessToken(ctx, da)
	if err != nil {
		return "", fmt.Errorf("wait for the login: %w", classify(ctx, err))
	}
	if err := usable(tok, cfg.DPoP != nil); err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// usable checks the issuer's token answer before the token is printed or
// used: an access token there, in the form a bearer token takes (it goes
// onto the terminal and into an Authorization header, so anything else
// could be an escape sequence), and bound to the key when DPoP was asked.
func usable(tok *oauth2.Token, dpop bool) error {
	switch {
	case tok.AccessToken == "":
		return errors.New("wait for the login: the issuer answered without an access token")
	case !isB64Token(tok.AccessToken):
		return errors.New("wait for the login: the issuer's access token is not an RFC 6750 b64token")
	case dpop:
		return bound(tok.TokenType)
	}
	return nil
}

// inClearOnlyOnLoopback holds the endpoints discovery names to the
// issuer's own transport security, as the roles hold its jwks_uri: https,
// or http on loopback when the issuer itself is loopback http. An https
// issuer's discovery must not send the device code and the token in clear.
func inClearOnlyOnLoopback(issuer string, endpoints ...string) error {
	iss, _ := url.Parse(issuer) // validate has parsed it
	for _, e := range endpoints {
		u, err := url.Parse(e)
		switch {
		case err != nil || u.Host == "" || u.User != nil:
			return fmt.Errorf("endpoint %q is not an absolute URL", e)
		case u.Scheme == "https":
		case u.Scheme == "http" && iss.Scheme == "http" && domain.IsLoopbackHost(u.Hostname()):
		default:
			return fmt.Errorf("endpoint %q is not https: the device code and the token must not travel in clear", e)
		}
	}
	return nil
}

// isB64Token reports whether s is an RFC 6750 section 2.1 b64token, the
// form a bearer token takes: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
// "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// slashHint is the likely fix when discovery fails because the issuer
// names itself with a trailing slash the flag lacks (Auth0, Hydra).
func slashHint(issuer string, err error) string {
	var mismatch *oidc.IssuerMismatchError
	if !errors.As(err, &mismatch) || strings.HasSuffix(issuer, "/") {
		return ""
	}
	return fmt.Sprintf("; hint: the issuer names itself %q; give --oidc-issuer exactly that, trailing slash included", mismatch.Discovered)
}

func writePrompt(w io.Writer, da *oauth2.DeviceAuthResponse) error {
	where := da.VerificationURIComplete
	if where == "" {
		where = da.VerificationURI
	}
	_, err := fmt.Fprintf(w, "To log in, open this address in a browser and confirm the code:\n\n    %s\n\nYour code: %s\nWaiting for you to log in…\n",
		terminalSafe(where), terminalSafe(da.UserCode))
	return err
}

// classify names the device grant's final answers, keeping the original
// error in the chain.
func classify(ctx context.Context, err error) error {
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re) && re.ErrorCode == "access_denied":
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	case errors.As(err, &re) && re.ErrorCode == "expired_token":
		return fmt.Errorf("%w: %w", ErrExpired, err)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		// oauth2 stops polling at the code's expiry with its own deadline.
		return fmt.Errorf("%w: %w", ErrExpired, err)
	}
	return err
}

// The forms WriteToken can print a token in.
const (
	OutputToken = "token" // the token alone, for $(trustchain login)
	OutputEnv   = "env"   // export TOKEN=…, for eval "$(trustchain login --output env)"
)

// WriteToken prints token to w in the given output form.
func WriteToken(w io.Writer, output, token string) error {
	var err error
	switch output {
	case OutputToken:
		_, err = fmt.Fprintln(w, token)
	case OutputEnv:
		_, err = fmt.Fprintf(w, "export TOKEN=%s\n", shellQuote(token))
	default:
		return fmt.Errorf("output %q is not one of: %s, %s", output, OutputToken, OutputEnv)
	}
	return err
}

// shellQuote quotes s for a POSIX shell. A JWT needs no quoting, but a
// token is the issuer's to shape.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
