// Package devissuer is a local OpenID Connect issuer shaped like Auth0: it
// serves discovery, a JWKS and the client-credentials token endpoint, and
// signs RS256 access tokens with Auth0's claims. The demo command and the
// tests use it so that tokens are real and verified end to end.
package devissuer

import (
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
	defaultTokenTTL = time.Hour
	rsaKeyBits      = 2048
	// maxRequestBytes bounds a token request body; a real one is a few
	// hundred bytes.
	maxRequestBytes = 64 << 10

	grantClientCredentials = "client-credentials"
)

// Config describes the issuer and its one client.
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
	return errors.Join(errs...)
}

// Issuer is the local issuer. It is an http.Handler and safe for concurrent
// use.
type Issuer struct {
	cfg Config
	mux *http.ServeMux

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
		return nil, fmt.Errorf("devissuer config: %w", err)
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = defaultTokenTTL
	}
	key, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	iss := &Issuer{cfg: cfg, key: key, mux: http.NewServeMux()}
	iss.mux.HandleFunc("GET /.well-known/openid-configuration", iss.serveDiscovery)
	iss.mux.HandleFunc("GET /.well-known/jwks.json", iss.serveJWKS)
	iss.mux.HandleFunc("POST /oauth/token", iss.serveToken)
	return iss, nil
}

func newSigningKey() (signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return signingKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	kidBytes := make([]byte, 16)
	if _, err := rand.Read(kidBytes); err != nil {
		return signingKey{}, fmt.Errorf("generate key id: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(kidBytes)
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

// ServeHTTP serves discovery, the JWKS and the token endpoint.
func (iss *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) { iss.mux.ServeHTTP(w, r) }

// RotateKey replaces the signing key. The JWKS then publishes only the new
// key, so tokens signed by the old one stop verifying once a verifier
// refreshes.
func (iss *Issuer) RotateKey() error {
	key, err := newSigningKey()
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
	now := time.Now()
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
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss.Issuer(),
		"authorization_endpoint":                base + "/authorize",
		"token_endpoint":                        base + "/oauth/token",
		"userinfo_endpoint":                     base + "/userinfo",
		"jwks_uri":                              base + "/.well-known/jwks.json",
		"grant_types_supported":                 []string{"client_credentials"},
		"response_types_supported":              []string{"code", "token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                      iss.cfg.Scopes,
	})
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

// tokenRequest is the client-credentials request, read from JSON or a form
// as Auth0 accepts both.
type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Audience     string `json:"audience"`
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

func (iss *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
	req, err := readTokenRequest(r)
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	// Auth0 authenticates the client first, so a bad secret never reveals
	// which grants or audiences exist.
	if !iss.clientMatches(req.ClientID, req.ClientSecret) {
		writeOAuthError(w, http.StatusUnauthorized, "access_denied", "Unauthorized")
		return
	}
	if req.GrantType != "client_credentials" {
		writeOAuthError(w, http.StatusForbidden, "unsupported_grant_type",
			fmt.Sprintf("Grant type '%s' not allowed for the client.", req.GrantType))
		return
	}
	if req.Audience != iss.cfg.Audience {
		writeOAuthError(w, http.StatusForbidden, "access_denied", "Service not found: "+req.Audience)
		return
	}
	claims := iss.DefaultClaims(req.ClientID + "@clients")
	token, err := iss.Mint(claims)
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "could not sign the token")
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: token,
		TokenType:   "Bearer",
		ExpiresIn:   int64(iss.cfg.TokenTTL / time.Second),
		Scope:       claims["scope"].(string),
	})
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
		req = tokenRequest{
			GrantType:    r.PostForm.Get("grant_type"),
			ClientID:     r.PostForm.Get("client_id"),
			ClientSecret: r.PostForm.Get("client_secret"),
			Audience:     r.PostForm.Get("audience"),
		}
	}
	// Auth0 also takes the credentials as HTTP Basic (client_secret_basic).
	if id, secret, ok := r.BasicAuth(); ok && req.ClientID == "" && req.ClientSecret == "" {
		req.ClientID, req.ClientSecret = id, secret
	}
	return req, nil
}

func (iss *Issuer) clientMatches(id, secret string) bool {
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(iss.cfg.ClientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(iss.cfg.ClientSecret))
	return idOK&secretOK == 1
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
