package issuer

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

const (
	pkceS256 = "S256"
	// maxFormBytes bounds a login form; a real one is well under 2 KiB.
	maxFormBytes = 16 << 10
)

// authorizeRequest is a validated /authorize request, read from the query
// (GET) or from the login form's hidden fields (POST).
type authorizeRequest struct {
	clientID    string
	redirectURI string
	state       string
	scope       string
	nonce       string
	challenge   string
	audience    string
}

// fields are what the login form carries back, so a POST is validated
// exactly like the GET that showed the form.
func (a authorizeRequest) fields() []formField {
	return []formField{
		{"response_type", "code"},
		{"client_id", a.clientID},
		{"redirect_uri", a.redirectURI},
		{"scope", a.scope},
		{"state", a.state},
		{"nonce", a.nonce},
		{"code_challenge", a.challenge},
		{"code_challenge_method", pkceS256},
		{"audience", a.audience},
	}
}

// authorizeError is a refused /authorize request. Until the client and its
// redirect URI are known good it is shown to the user as a page
// (RFC 6749 §4.1.2.1: never redirect to an unchecked URI); after that it
// goes back to the client in the redirect.
type authorizeError struct {
	code, description string
	redirect          bool
}

func (e *authorizeError) Error() string { return e.code + ": " + e.description }

func (iss *Issuer) parseAuthorize(v url.Values) (authorizeRequest, error) {
	req := authorizeRequest{
		clientID:    v.Get("client_id"),
		redirectURI: v.Get("redirect_uri"),
		state:       v.Get("state"),
		scope:       v.Get("scope"),
		nonce:       v.Get("nonce"),
		challenge:   v.Get("code_challenge"),
		audience:    v.Get("audience"),
	}
	client, ok := iss.clients[req.clientID]
	if !ok {
		return req, &authorizeError{code: "invalid_client", description: "Unknown client: " + req.clientID}
	}
	if !slices.Contains(client.RedirectURIs, req.redirectURI) {
		return req, &authorizeError{code: "invalid_request", description: "The redirect_uri is not registered for this client."}
	}
	fail := func(code, description string) (authorizeRequest, error) {
		return req, &authorizeError{code: code, description: description, redirect: true}
	}
	switch {
	case v.Get("response_type") != "code":
		return fail("unsupported_response_type", "Only response_type=code is supported.")
	case v.Get("code_challenge_method") != pkceS256:
		return fail("invalid_request", "PKCE is required with code_challenge_method=S256.")
	case !validPKCEValue(req.challenge) || len(req.challenge) != 43:
		return fail("invalid_request", "code_challenge must be the base64url SHA-256 of the verifier.")
	case req.audience != iss.cfg.Audience:
		return fail("access_denied", "Service not found: "+req.audience)
	}
	return req, nil
}

// validPKCEValue reports whether s has the length and alphabet of a PKCE
// code verifier (RFC 7636 §4.1); a S256 challenge is such a string too.
func validPKCEValue(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
			return false
		}
	}
	return true
}

func pkceMatches(verifier, challenge string) bool {
	if !validPKCEValue(verifier) {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

func (iss *Issuer) serveAuthorizeForm(w http.ResponseWriter, r *http.Request) {
	req, err := iss.parseAuthorize(r.URL.Query())
	if err != nil {
		iss.refuseAuthorize(w, r, req, err)
		return
	}
	// login_hint (OpenID Connect Core §3.1.2.1) fills in the name, as
	// Auth0's Universal Login does.
	renderPage(w, http.StatusOK, "login", loginPage{Audience: req.audience, Client: req.clientID, Fields: req.fields(), Name: r.URL.Query().Get("login_hint")})
}

func (iss *Issuer) serveAuthorizeLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		renderMessage(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	req, err := iss.parseAuthorize(r.PostForm)
	if err != nil {
		iss.refuseAuthorize(w, r, req, err)
		return
	}
	name := r.PostForm.Get("name")
	user, err := iss.authenticate(name, r.PostForm.Get("password"))
	if err != nil {
		status, message := refuseLogin(w, err)
		renderPage(w, status, "login", loginPage{
			Audience: req.audience, Client: req.clientID, Fields: req.fields(),
			Name: name, Error: message,
		})
		return
	}
	now := iss.cfg.Now()
	code, err := iss.pending.addCode(now, authCode{
		login: login{
			user: user, clientID: req.clientID, scope: grantedScopes(req.scope, user.Role),
			nonce: req.nonce, authTime: now,
		},
		redirectURI: req.redirectURI,
		challenge:   req.challenge,
		expires:     now.Add(codeTTL),
	})
	if err != nil {
		iss.refuseAuthorize(w, r, req, &authorizeError{code: "server_error", description: "Could not issue a code.", redirect: true})
		return
	}
	http.Redirect(w, r, withQuery(req.redirectURI, url.Values{"code": {code}, "state": {req.state}}), http.StatusFound)
}

func (iss *Issuer) refuseAuthorize(w http.ResponseWriter, r *http.Request, req authorizeRequest, err error) {
	var ae *authorizeError
	if !errors.As(err, &ae) || !ae.redirect {
		renderMessage(w, http.StatusBadRequest, "This login request is not valid", err.Error())
		return
	}
	q := url.Values{"error": {ae.code}, "error_description": {ae.description}, "state": {req.state}}
	http.Redirect(w, r, withQuery(req.redirectURI, q), http.StatusFound)
}

// withQuery adds q to a registered redirect URI, keeping any query it has
// and leaving out empty values (a client that sent no state gets none).
func withQuery(rawURL string, q url.Values) string {
	u, err := url.Parse(rawURL)
	if err != nil { // registered URIs were parsed at start-up
		return rawURL
	}
	merged := u.Query()
	for k, vs := range q {
		if len(vs) > 0 && vs[0] != "" {
			merged[k] = vs
		}
	}
	u.RawQuery = merged.Encode()
	return u.String()
}

// exchangeCode is the token endpoint's authorization_code grant.
func (iss *Issuer) exchangeCode(w http.ResponseWriter, req tokenRequest) {
	// The code is spent first: any exchange that names it, however it
	// fails, uses it up, so a failed one cannot be followed by a guess.
	var code authCode
	found := false
	if req.Code != "" {
		code, found = iss.pending.takeCode(iss.cfg.Now(), req.Code)
	}
	if !iss.publicClient(w, req) {
		return
	}
	if req.Code == "" || req.CodeVerifier == "" || req.RedirectURI == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "code, code_verifier and redirect_uri are required.")
		return
	}
	if req.Audience != "" && req.Audience != iss.cfg.Audience {
		writeAudienceError(w, req.Audience)
		return
	}
	switch {
	case !found:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Invalid, expired or already used authorization code.")
	case code.login.clientID != req.ClientID:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "The code was issued to another client.")
	case code.redirectURI != req.RedirectURI:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the one the code was issued for.")
	case !pkceMatches(req.CodeVerifier, code.challenge):
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "Failed to verify code_verifier.")
	default:
		iss.writeUserTokens(w, code.login, req.jkt)
	}
}
