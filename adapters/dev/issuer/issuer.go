// Package issuer is a local OpenID Connect issuer shaped like Auth0: it
// serves discovery and a JWKS, issues RS256 access tokens with Auth0's
// claims to a machine client (client credentials), and logs configured users
// in through the authorization-code flow with PKCE and the device
// authorization grant. A token request with a DPoP proof gets a token bound
// to the proof's key (RFC 9449 §5). The demo command and the tests use it so
// that tokens are real and verified end to end; State lets the demo keep its
// key and secrets across restarts.
package issuer

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	defaultTokenTTL       = time.Hour
	defaultDeviceInterval = 5 * time.Second // Auth0's polling interval
	rsaKeyBits            = 2048
	// maxRequestBytes bounds a token request body; a real one is a few
	// hundred bytes.
	maxRequestBytes = 64 << 10

	grantClientCredentials = "client-credentials" // the gty claim Auth0 writes

	grantTypeClientCredentials = "client_credentials"
	grantTypeAuthorizationCode = "authorization_code"
	grantTypeDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
)

// Config describes the issuer, its machine client, and the users and public
// clients that can log in.
type Config struct {
	// URL is the issuer's base URL without a trailing slash, for example
	// http://127.0.0.1:8080.
	URL      string
	Audience string // the only API identifier tokens are issued for
	ClientID string
	// ClientSecret is the client's secret for the token endpoint.
	ClientSecret string
	Scopes       []string      // granted to the client, e.g. read:products
	TokenTTL     time.Duration // lifetime of issued tokens; default 1h

	// Users can log in through /authorize and /activate. Their role decides
	// the scope and permissions of their access tokens.
	Users []User
	// PublicClients are the browser and device clients: they have no
	// secret, so a login is bound to them by PKCE or by the device code.
	PublicClients []PublicClient
	// DeviceInterval is the least time between two polls of one device
	// code, in whole seconds. Default 5s, as on Auth0.
	DeviceInterval time.Duration
	// Now is the clock for token times and for the expiry of codes.
	// Default time.Now.
	Now func() time.Time
	// Key is the signing key, kept by the caller across restarts (see
	// State); nil makes a fresh one.
	Key *rsa.PrivateKey
	// DPoP, when its Check is set, binds the tokens of every grant to the
	// key of a DPoP proof sent with the token request (RFC 9449 §5).
	// Without it a DPoP header is ignored, as by a server that does not
	// know DPoP.
	DPoP DPoP
}

func (c Config) validate() error {
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("URL %q must be an absolute http(s) URL", c.URL))
	} else if strings.HasSuffix(c.URL, "/") {
		errs = append(errs, fmt.Errorf("URL %q must not end with a slash", c.URL))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("audience is required"))
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		errs = append(errs, errors.New("client ID and secret are required"))
	}
	if c.TokenTTL < 0 {
		errs = append(errs, errors.New("token TTL must not be negative"))
	}
	if c.DeviceInterval < 0 || c.DeviceInterval%time.Second != 0 {
		errs = append(errs, fmt.Errorf("device interval %v must be a non-negative whole number of seconds", c.DeviceInterval))
	}
	if (c.DPoP.Check == nil) != (len(c.DPoP.Algorithms) == 0) {
		errs = append(errs, errors.New("DPoP needs both a proof checker and its algorithms"))
	}
	errs = append(errs, validateUsers(c.Users)...)
	errs = append(errs, validatePublicClients(c.PublicClients, c.ClientID)...)
	return errors.Join(errs...)
}

// Issuer is the local issuer. It is an http.Handler and safe for concurrent
// use.
type Issuer struct {
	cfg     Config
	mux     *http.ServeMux
	users   map[string]User
	clients map[string]PublicClient
	pending *pending // authorization codes and device grants

	mu  sync.RWMutex
	key signingKey // the current and only published key
}

type signingKey struct {
	kid    string
	public *rsa.PublicKey
	signer jose.Signer
}

// New returns an issuer with a fresh RSA key.
func New(cfg Config) (*Issuer, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("dev issuer config: %w", err)
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = defaultTokenTTL
	}
	if cfg.DeviceInterval == 0 {
		cfg.DeviceInterval = defaultDeviceInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	priv := cfg.Key
	if priv == nil {
		var err error
		if priv, err = NewKey(); err != nil {
			return nil, err
		}
	}
	key, err := newSigningKey(priv)
	if err != nil {
		return nil, err
	}
	iss := &Issuer{
		cfg:     cfg,
		key:     key,
		mux:     http.NewServeMux(),
		users:   make(map[string]User, len(cfg.Users)),
		clients: make(map[string]PublicClient, len(cfg.PublicClients)),
		pending: newPending(),
	}
	for _, u := range cfg.Users {
		iss.users[u.Name] = u
	}
	for _, c := range cfg.PublicClients {
		iss.clients[c.ID] = c
	}
	// The login forms are posted by the issuer's own pages; refusing
	// cross-origin posts stops another site from logging a browser in.
	forms := http.NewCrossOriginProtection()
	iss.mux.HandleFunc("GET /.well-known/openid-configuration", iss.serveDiscovery)
	iss.mux.HandleFunc("GET /.well-known/jwks.json", iss.serveJWKS)
	iss.mux.HandleFunc("POST /oauth/token", iss.serveToken)
	iss.mux.HandleFunc("GET /authorize", iss.serveAuthorizeForm)
	iss.mux.Handle("POST /authorize", forms.Handler(http.HandlerFunc(iss.serveAuthorizeLogin)))
	iss.mux.HandleFunc("POST /oauth/device/code", iss.serveDeviceCode)
	iss.mux.HandleFunc("GET /activate", iss.serveActivateForm)
	iss.mux.Handle("POST /activate", forms.Handler(http.HandlerFunc(iss.serveActivate)))
	return iss, nil
}

// NewKey generates an RSA signing key of the issuer's size.
func NewKey() (*rsa.PrivateKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return priv, nil
}

// newSigningKey signs with priv under a kid derived from the public key
// (its RFC 7638 thumbprint), so a kept key keeps its kid.
func newSigningKey(priv *rsa.PrivateKey) (signingKey, error) {
	thumb, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return signingKey{}, fmt.Errorf("key id: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(thumb)
	// Passing a JSONWebKey (not the bare key) makes go-jose put kid in the
	// protected header, which is how verifiers pick the key.
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return signingKey{}, fmt.Errorf("create signer: %w", err)
	}
	return signingKey{kid: kid, public: &priv.PublicKey, signer: signer}, nil
}

// Issuer is the issuer identifier: the URL with a trailing slash, as Auth0
// writes it. The iss claim and the discovery document carry exactly this.
func (iss *Issuer) Issuer() string { return iss.cfg.URL + "/" }

// ServeHTTP serves discovery, the JWKS, the token endpoint and the login
// pages.
func (iss *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) { iss.mux.ServeHTTP(w, r) }

// RotateKey replaces the signing key. The JWKS then publishes only the new
// key, so tokens signed by the old one stop verifying once a verifier
// refreshes.
func (iss *Issuer) RotateKey() error {
	priv, err := NewKey()
	if err != nil {
		return err
	}
	key, err := newSigningKey(priv)
	if err != nil {
		return err
	}
	iss.mu.Lock()
	iss.key = key
	iss.mu.Unlock()
	return nil
}

// DefaultClaims returns a valid, Auth0-shaped claim set for subject, issued
// now, for tests to alter before Mint.
func (iss *Issuer) DefaultClaims(subject string) map[string]any {
	now := iss.cfg.Now()
	return map[string]any{
		"iss":         iss.Issuer(),
		"sub":         subject,
		"aud":         []string{iss.cfg.Audience, iss.cfg.URL + "/userinfo"},
		"iat":         now.Unix(),
		"exp":         now.Add(iss.cfg.TokenTTL).Unix(),
		"scope":       strings.Join(iss.cfg.Scopes, " "),
		"permissions": append([]string{}, iss.cfg.Scopes...),
		"azp":         iss.cfg.ClientID,
		"gty":         grantClientCredentials,
	}
}

// Mint signs claims as they are with the current key, kid header set. It
// checks nothing, so tests can mint invalid tokens too.
func (iss *Issuer) Mint(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	iss.mu.RLock()
	signer := iss.key.signer
	iss.mu.RUnlock()
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return jws.CompactSerialize()
}

func (iss *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	base := iss.cfg.URL
	doc := map[string]any{
		"issuer":                                iss.Issuer(),
		"authorization_endpoint":                base + "/authorize",
		"token_endpoint":                        base + "/oauth/token",
		"device_authorization_endpoint":         base + "/oauth/device/code",
		"userinfo_endpoint":                     base + "/userinfo",
		"jwks_uri":                              base + "/.well-known/jwks.json",
		"grant_types_supported":                 []string{grantTypeClientCredentials, grantTypeAuthorizationCode, grantTypeDeviceCode},
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"code_challenge_methods_supported":      []string{pkceS256},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
		"scopes_supported":                      iss.scopesSupported(),
		"claims_supported":                      []string{"aud", "exp", "iat", "iss", "sub", "name", "nickname", "nonce", "azp"},
	}
	if iss.cfg.DPoP.Check != nil {
		doc["dpop_signing_alg_values_supported"] = iss.cfg.DPoP.Algorithms
	}
	writeJSON(w, http.StatusOK, doc)
}

func (iss *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	iss.mu.RLock()
	key := iss.key
	iss.mu.RUnlock()
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:       key.public,
		KeyID:     key.kid,
		Algorithm: string(jose.RS256),
		Use:       "sig",
	}}})
}

// tokenRequest is a token or device-code request, read from JSON or a form
// as Auth0 accepts both.
type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Audience     string `json:"audience"`
	Scope        string `json:"scope"`
	Code         string `json:"code"`
	CodeVerifier string `json:"code_verifier"`
	RedirectURI  string `json:"redirect_uri"`
	DeviceCode   string `json:"device_code"`
	// basicAuth records that the client authenticated with HTTP Basic, so
	// a refusal names that scheme in its challenge (RFC 6749 §5.2).
	basicAuth bool

	jkt string // the thumbprint of the DPoP key to bind the token to, or ""
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token,omitempty"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// serveToken answers the token endpoint with RFC 6749 §5.2's errors:
// invalid_request for a malformed request, unsupported_grant_type for a
// grant this issuer does not know, invalid_client (401) for a client that
// fails to authenticate, unauthorized_client for a grant the client may
// not use, and invalid_grant for a code that is not good.
func (iss *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
	req, err := readTokenRequest(r)
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	var ok bool
	if req.jkt, ok = iss.proofKey(w, r); !ok {
		return
	}
	switch req.GrantType {
	case grantTypeClientCredentials:
		iss.clientCredentials(w, req)
	case grantTypeAuthorizationCode:
		iss.exchangeCode(w, req)
	case grantTypeDeviceCode:
		iss.exchangeDeviceCode(w, req)
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required.")
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "This issuer does not support that grant type.")
	}
}

func (iss *Issuer) clientCredentials(w http.ResponseWriter, req tokenRequest) {
	// The client is authenticated first, so a bad secret never reveals
	// which audiences exist.
	if !iss.clientMatches(req.ClientID, req.ClientSecret) {
		writeClientError(w, req)
		return
	}
	if req.Audience != iss.cfg.Audience {
		writeAudienceError(w, req.Audience)
		return
	}
	claims := iss.DefaultClaims(req.ClientID + "@clients")
	tokenType := bind(claims, req.jkt)
	token, err := iss.Mint(claims)
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "could not sign the token")
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: token,
		TokenType:   tokenType,
		ExpiresIn:   int64(iss.cfg.TokenTTL / time.Second),
		Scope:       claims["scope"].(string),
	})
}

// publicClient reports whether req comes from a registered public client,
// answering the refusal when it does not: the machine client may not use
// the user grants (unauthorized_client), anyone else is unknown
// (invalid_client).
func (iss *Issuer) publicClient(w http.ResponseWriter, req tokenRequest) bool {
	if _, ok := iss.clients[req.ClientID]; ok {
		return true
	}
	if iss.clientMatches(req.ClientID, req.ClientSecret) {
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", "The client may not use this grant type.")
		return false
	}
	writeClientError(w, req)
	return false
}

// writeClientError answers a client that failed to authenticate: 401
// invalid_client, with a Basic challenge when it tried Basic, as RFC 6749
// §5.2 requires.
func writeClientError(w http.ResponseWriter, req tokenRequest) {
	if req.basicAuth {
		w.Header().Set("WWW-Authenticate", `Basic realm="trustchain demo issuer", charset="UTF-8"`)
	}
	writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
}

func readTokenRequest(r *http.Request) (tokenRequest, error) {
	var req tokenRequest
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType == "application/json" {
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			return tokenRequest{}, errors.New("request body is not valid JSON")
		}
	} else {
		if err := r.ParseForm(); err != nil {
			return tokenRequest{}, errors.New("request body is not a valid form")
		}
		f := r.PostForm
		req = tokenRequest{
			GrantType:    f.Get("grant_type"),
			ClientID:     f.Get("client_id"),
			ClientSecret: f.Get("client_secret"),
			Audience:     f.Get("audience"),
			Scope:        f.Get("scope"),
			Code:         f.Get("code"),
			CodeVerifier: f.Get("code_verifier"),
			RedirectURI:  f.Get("redirect_uri"),
			DeviceCode:   f.Get("device_code"),
		}
	}
	// The credentials may also come as HTTP Basic (client_secret_basic),
	// form-encoded first (RFC 6749 §2.3.1); using two methods at once is
	// a malformed request.
	if rawID, rawSecret, ok := r.BasicAuth(); ok {
		id, errID := url.QueryUnescape(rawID)
		secret, errSecret := url.QueryUnescape(rawSecret)
		if errID != nil || errSecret != nil {
			return tokenRequest{}, errors.New("the Basic credentials are not form-encoded")
		}
		if req.ClientSecret != "" || (req.ClientID != "" && req.ClientID != id) {
			return tokenRequest{}, errors.New("the client authenticated in more than one way")
		}
		req.ClientID, req.ClientSecret, req.basicAuth = id, secret, true
	}
	return req, nil
}

func (iss *Issuer) clientMatches(id, secret string) bool {
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(iss.cfg.ClientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(iss.cfg.ClientSecret))
	return idOK&secretOK == 1
}

// writeAudienceError answers a request for an API this issuer does not
// serve the way Auth0 does.
func writeAudienceError(w http.ResponseWriter, audience string) {
	writeOAuthError(w, http.StatusForbidden, "access_denied", "Service not found: "+audience)
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
