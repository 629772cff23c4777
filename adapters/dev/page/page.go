// Package page serves the demo's web page: a person logs in at the issuer
// (authorization code with PKCE), the page calls the chain's gateway with
// their token, server side, and shows the answer, the chain drawn as boxes
// with each hop's verdict, the token's claims (never the token), and how
// the chain refuses a missing or expired token, a user without the
// permission, and a caller without a workload identity. It is plain HTML
// and CSS, with no script.
package page

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// HopDecision is what one hop of the chain decided about a request.
type HopDecision struct {
	Role   string // the hop: a, c or b
	Status int    // the status it answered
	Token  string // its token check: "ok" or the refusal reason, e.g. "expired"
	Peer   string // the caller's SPIFFE ID it checked, if it checks one
	Reason string // why it refused, if it did
	Proof  string // its DPoP proof check: "ok", the refusal reason, or "" for none
}

// Decisions looks up what each hop decided for the request sent with this
// X-Request-Id, in chain order. The demo reads them from the roles' logs.
type Decisions interface {
	Decisions(ctx context.Context, requestID string) []HopDecision
}

// Prover is one login's DPoP key (RFC 9449), held by the page.
type Prover interface {
	// TokenTransport sends a fresh proof with every POST to tokenURL.
	TokenTransport(base http.RoundTripper, tokenURL string) http.RoundTripper
	// Proof returns a fresh proof for a request with method to target,
	// bound to accessToken, carrying the server's nonce when not "".
	Proof(method, target, accessToken, nonce string) (string, error)
}

// ExpiredTokens mints an access token for the user with this sub that has
// already expired, so the page can show the chain refusing it.
type ExpiredTokens interface {
	ExpiredToken(ctx context.Context, sub string) (string, error)
}

const (
	defaultSessionTTL = 15 * time.Minute
	// loginTTL bounds the time between pressing Log in and coming back.
	loginTTL           = 10 * time.Minute
	defaultHTTPTimeout = 10 * time.Second
	cookieName         = "trustchain_demo_session"
	callbackPath       = "/callback"
	maxFormBytes       = 4 << 10
)

// Config sets the page up. AURL, BURL, IssuerURL, ClientID, RedirectURL and
// Audience are required.
type Config struct {
	AURL string // the gateway's base URL; the page calls AURL + /products
	BURL string // B's base URL, called directly to show the refusal
	// IssuerURL is the issuer exactly as in iss (with the trailing slash
	// Auth0 and the dev issuer write).
	IssuerURL string
	// ClientID is a public client registered with RedirectURL.
	ClientID string
	// RedirectURL is this page's own /callback, e.g.
	// http://127.0.0.1:8090/callback.
	RedirectURL string
	Audience    string // the API the access token is for
	// Scopes asked for at login; openid is always added. Add the API's,
	// e.g. read:products. Default: openid profile.
	Scopes []string
	// LoginHint is shown next to the Log in button, e.g. which demo users
	// exist and where their passwords are printed.
	LoginHint string
	// Shortcuts are user names offered as "Log in as <name>" buttons: the
	// login starts with login_hint=<name>, which the issuer's form fills
	// in.
	Shortcuts []string
	// PeerAuthOff says the hops do not check which workload calls them
	// (--peer-auth off): the page says so in a banner and does not claim
	// the checks.
	PeerAuthOff bool
	// BCaller is the workload identity B accepts as its caller, named when
	// B refuses the page's direct call.
	BCaller string
	// Store names what B reads, drawn as the chain's last box. Default
	// MySQL.
	Store string

	// AClient calls A; it must trust A's certificate. Default: a plain
	// client with a 15s timeout.
	AClient *http.Client
	// BClient calls B directly. It must carry no workload identity (no
	// client certificate) but trust B's server certificate, so that what
	// the page shows is B refusing the caller, not the page refusing B.
	// Default: AClient.
	BClient *http.Client
	// IssuerClient fetches discovery and keys and exchanges the code.
	// Default: a client with a 10s timeout.
	IssuerClient *http.Client

	Decisions Decisions     // optional: without it the page shows no hops
	Expired   ExpiredTokens // optional: without it there is no expired-token button
	// DPoP, when set, makes each login a key of its own, held here: the
	// token is bound to it and every call to A carries a fresh proof by
	// it. Without it tokens are Bearer tokens.
	DPoP func() (Prover, error)

	SessionTTL time.Duration    // default 15m
	Now        func() time.Time // default time.Now
}

func (c Config) validate() error {
	var errs []error
	for _, u := range []struct{ name, value string }{
		{"A URL", c.AURL}, {"B URL", c.BURL}, {"issuer URL", c.IssuerURL}, {"redirect URL", c.RedirectURL},
	} {
		if p, err := url.Parse(u.value); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q must be an absolute http(s) URL", u.name, u.value))
		}
	}
	if p, err := url.Parse(c.RedirectURL); err == nil && p.Path != callbackPath {
		errs = append(errs, fmt.Errorf("redirect URL %q must end in %s, where the page takes the login back", c.RedirectURL, callbackPath))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("client ID is required"))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("audience is required"))
	}
	if c.SessionTTL < 0 {
		errs = append(errs, errors.New("session TTL must not be negative"))
	}
	return errors.Join(errs...)
}

// Page is the demo page, an http.Handler safe for concurrent use.
type Page struct {
	cfg          Config
	sessions     *sessions
	handler      http.Handler
	secure       bool   // cookies only over HTTPS, when the page is served so
	issuerOrigin string // where the login form posts the browser

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first use, so New needs no issuer yet
}

// New builds the page. It does not contact the issuer: discovery happens at
// the first login, so the demo can build the page before it starts serving.
func New(cfg Config) (*Page, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("demo page config: %w", err)
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = defaultSessionTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AClient == nil {
		cfg.AClient = &http.Client{Timeout: callTimeout}
	}
	if cfg.BClient == nil {
		cfg.BClient = cfg.AClient
	}
	if cfg.IssuerClient == nil {
		cfg.IssuerClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"openid", "profile"}
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	redirect, _ := url.Parse(cfg.RedirectURL) // validated
	issuer, _ := url.Parse(cfg.IssuerURL)
	p := &Page{
		cfg:          cfg,
		sessions:     newSessions(cfg.SessionTTL, cfg.Now),
		secure:       redirect.Scheme == "https",
		issuerOrigin: issuer.Scheme + "://" + issuer.Host,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.serveHome)
	mux.HandleFunc("GET /favicon.svg", serveFavicon)
	mux.HandleFunc("GET /favicon.ico", serveFavicon)
	mux.HandleFunc("POST /login", p.serveLogin)
	mux.HandleFunc("GET "+callbackPath, p.serveCallback)
	mux.HandleFunc("POST /call", p.serveCall)
	mux.HandleFunc("POST /logout", p.serveLogout)
	// Every state-changing form is a POST from the page itself; refusing
	// cross-origin POSTs (by Sec-Fetch-Site or Origin) is the CSRF guard.
	p.handler = http.NewCrossOriginProtection().Handler(mux)
	return p, nil
}

// ServeHTTP serves the page.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

// oidcProvider discovers the issuer once; a failed discovery is retried at
// the next login.
func (p *Page) oidcProvider(ctx context.Context) (*oidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.provider != nil {
		return p.provider, nil
	}
	prov, err := oidc.NewProvider(oidc.ClientContext(ctx, p.cfg.IssuerClient), p.cfg.IssuerURL)
	if err != nil {
		return nil, fmt.Errorf("discover issuer %s: %w", p.cfg.IssuerURL, err)
	}
	p.provider = prov
	return prov, nil
}

func (p *Page) oauth2Config(prov *oidc.Provider) *oauth2.Config {
	endpoint := prov.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInParams // a public client: no secret
	return &oauth2.Config{ClientID: p.cfg.ClientID, Endpoint: endpoint, RedirectURL: p.cfg.RedirectURL, Scopes: p.cfg.Scopes}
}

// sessionID returns the id of the browser's live session, if it has one.
func (p *Page) sessionID(r *http.Request) (string, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return "", false
	}
	_, ok := p.sessions.get(c.Value)
	return c.Value, ok
}

// ensureSession returns the browser's session id, starting a session if it
// has none.
func (p *Page) ensureSession(w http.ResponseWriter, r *http.Request) (string, error) {
	if id, ok := p.sessionID(r); ok {
		return id, nil
	}
	id, err := p.sessions.create()
	if err != nil {
		return "", err
	}
	p.setCookie(w, id)
	return id, nil
}

func (p *Page) setCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    id,
		Path:     "/",
		MaxAge:   int(p.cfg.SessionTTL / time.Second),
		HttpOnly: true,
		Secure:   p.secure,
		// Lax: sent on the top-level GET back from the issuer, never on a
		// cross-site POST.
		SameSite: http.SameSiteLaxMode,
	})
}

func (p *Page) serveHome(w http.ResponseWriter, r *http.Request) {
	var sess session
	if id, ok := p.sessionID(r); ok {
		sess, _ = p.sessions.get(id)
	}
	p.render(w, r, http.StatusOK, sess, "")
}

// serveLogin starts the authorization-code flow: a fresh state, nonce and
// PKCE verifier are kept in the session, and the browser goes to the
// issuer.
func (p *Page) serveLogin(w http.ResponseWriter, r *http.Request) {
	prov, err := p.oidcProvider(r.Context())
	if err != nil {
		p.render(w, r, http.StatusBadGateway, session{}, "The issuer cannot be reached: "+err.Error())
		return
	}
	id, err := p.ensureSession(w, r)
	if err != nil {
		p.render(w, r, http.StatusInternalServerError, session{}, err.Error())
		return
	}
	var pl pendingLogin
	if pl.state, err = randomString(32); err == nil {
		pl.nonce, err = randomString(32)
	}
	if p.cfg.DPoP != nil && err == nil {
		pl.prover, err = p.cfg.DPoP() // a key for this login alone
	}
	if err != nil {
		p.render(w, r, http.StatusInternalServerError, session{}, err.Error())
		return
	}
	pl.verifier = oauth2.GenerateVerifier()
	pl.started = p.cfg.Now()
	p.sessions.update(id, func(s *session) { s.pending = &pl })
	opts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(pl.verifier),
		oidc.Nonce(pl.nonce),
		oauth2.SetAuthURLParam("audience", p.cfg.Audience),
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if hint := r.PostFormValue("user"); slices.Contains(p.cfg.Shortcuts, hint) {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", hint))
	}
	authURL := p.oauth2Config(prov).AuthCodeURL(pl.state, opts...)
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// serveCallback finishes the login: the state must be the one this
// session sent, the code is exchanged with the PKCE verifier, the ID token
// must verify and carry the nonce, and the access token must verify for the
// API. Only then is the user logged in, under a new session id.
func (p *Page) serveCallback(w http.ResponseWriter, r *http.Request) {
	id, ok := p.sessionID(r)
	if !ok {
		p.render(w, r, http.StatusBadRequest, session{}, "Your session expired before the login finished. Log in again.")
		return
	}
	var pl *pendingLogin
	p.sessions.update(id, func(s *session) { pl, s.pending = s.pending, nil }) // a login is answered once
	sess, _ := p.sessions.get(id)
	q := r.URL.Query()
	if pl == nil || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(pl.state)) != 1 {
		p.render(w, r, http.StatusBadRequest, sess, "This login answer does not belong to a login started here (state mismatch). Log in again.")
		return
	}
	if p.cfg.Now().Sub(pl.started) > loginTTL {
		p.render(w, r, http.StatusBadRequest, sess, "The login took too long. Log in again.")
		return
	}
	if e := q.Get("error"); e != "" {
		p.render(w, r, http.StatusUnauthorized, sess, fmt.Sprintf("The issuer refused the login: %s (%s).", e, q.Get("error_description")))
		return
	}
	user, err := p.finishLogin(r.Context(), q.Get("code"), pl)
	if err != nil {
		p.render(w, r, http.StatusBadGateway, sess, "The login failed: "+err.Error())
		return
	}
	// What the person logged in for: the page calls A with the new token
	// before it shows itself.
	res := p.call(r.Context(), callWithToken, user)
	newID, err := p.sessions.rotate(id, func(s *session) {
		s.user, s.result = user, res
	})
	if err != nil {
		p.render(w, r, http.StatusInternalServerError, sess, err.Error())
		return
	}
	p.setCookie(w, newID)
	// Away from the address with the code in it.
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (p *Page) finishLogin(ctx context.Context, code string, pl *pendingLogin) (*loggedIn, error) {
	prov, err := p.oidcProvider(ctx)
	if err != nil {
		return nil, err
	}
	ctx = oidc.ClientContext(ctx, p.cfg.IssuerClient)
	exchangeCtx := ctx
	if pl.prover != nil {
		// The code is exchanged with a proof, so the token is bound to
		// this login's key (RFC 9449 §5).
		exchangeCtx = oidc.ClientContext(ctx, withTransport(p.cfg.IssuerClient, func(base http.RoundTripper) http.RoundTripper {
			return pl.prover.TokenTransport(base, prov.Endpoint().TokenURL)
		}))
	}
	tok, err := p.oauth2Config(prov).Exchange(exchangeCtx, code, oauth2.VerifierOption(pl.verifier))
	if err != nil {
		return nil, fmt.Errorf("exchange the code: %w", err)
	}
	if pl.prover != nil && !strings.EqualFold(tok.TokenType, "DPoP") {
		return nil, fmt.Errorf("the issuer did not bind the token to this session's key (token_type %q)", tok.TokenType)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, errors.New("the issuer sent no ID token")
	}
	idTok, err := prov.Verifier(&oidc.Config{ClientID: p.cfg.ClientID}).Verify(ctx, rawID)
	if err != nil {
		return nil, fmt.Errorf("verify the ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idTok.Nonce), []byte(pl.nonce)) != 1 {
		return nil, errors.New("the ID token's nonce is not this login's")
	}
	access, err := prov.Verifier(&oidc.Config{ClientID: p.cfg.Audience}).Verify(ctx, tok.AccessToken)
	if err != nil {
		return nil, fmt.Errorf("verify the access token: %w", err)
	}
	if access.Subject != idTok.Subject {
		return nil, errors.New("the access token is for another user than the ID token")
	}
	var claims map[string]any
	if err := access.Claims(&claims); err != nil {
		return nil, fmt.Errorf("read the access token's claims: %w", err)
	}
	return &loggedIn{accessToken: tok.AccessToken, sub: access.Subject, claims: claims, prover: pl.prover}, nil
}

// serveCall presses one of the page's buttons: it calls A (or B) server
// side, keeps the result in the session and shows the page again.
func (p *Page) serveCall(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	kind := r.PostFormValue("call")
	id, err := p.ensureSession(w, r)
	if err != nil {
		p.render(w, r, http.StatusInternalServerError, session{}, err.Error())
		return
	}
	sess, _ := p.sessions.get(id)
	res := p.call(r.Context(), kind, sess.user)
	p.sessions.update(id, func(s *session) { s.result = res })
	http.Redirect(w, r, "/#result", http.StatusSeeOther)
}

// call makes the call of one button and notes which it was.
func (p *Page) call(ctx context.Context, kind string, user *loggedIn) *callResult {
	res := p.callOnce(ctx, kind, user)
	res.Kind = kind
	return res
}

func (p *Page) callOnce(ctx context.Context, kind string, user *loggedIn) *callResult {
	aURL := strings.TrimSuffix(p.cfg.AURL, "/") + productsPath
	switch kind {
	case callWithToken:
		if user == nil {
			return &callResult{Label: "Call A with your token", Notice: "Log in first."}
		}
		if user.prover != nil {
			return call(ctx, p.cfg.AClient, "Call A with your token and a DPoP proof", aURL, user.accessToken, user.prover)
		}
		return call(ctx, p.cfg.AClient, "Call A with your token", aURL, user.accessToken, nil)
	case callReplay:
		// What a thief who copied the token can do: send it as Bearer,
		// with no key to prove.
		const label = "Replay your token without the key"
		if user == nil || user.prover == nil {
			return &callResult{Label: label, Notice: "Log in first; your token must be bound to a key."}
		}
		return call(ctx, p.cfg.AClient, label, aURL, user.accessToken, nil)
	case callNoToken:
		return call(ctx, p.cfg.AClient, "Call A without a token", aURL, "", nil)
	case callExpired:
		const label = "Call A with an expired token"
		if user == nil || p.cfg.Expired == nil {
			return &callResult{Label: label, Notice: "Log in first."}
		}
		token, err := p.cfg.Expired.ExpiredToken(ctx, user.sub)
		if err != nil {
			return &callResult{Label: label, Notice: "No expired token could be made: " + err.Error()}
		}
		return call(ctx, p.cfg.AClient, label, aURL, token, nil)
	case callDirectB:
		// With the user's own valid token: the token is not what B lacks.
		token := ""
		if user != nil {
			token = user.accessToken
		}
		return call(ctx, p.cfg.BClient, "Call B directly, without a workload identity",
			strings.TrimSuffix(p.cfg.BURL, "/")+productsPath, token, nil)
	}
	return &callResult{Label: "Unknown call", Notice: fmt.Sprintf("There is no call %q.", kind)}
}

func (p *Page) serveLogout(w http.ResponseWriter, r *http.Request) {
	if id, ok := p.sessionID(r); ok {
		p.sessions.delete(id)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
