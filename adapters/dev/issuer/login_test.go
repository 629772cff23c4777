package issuer_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
)

const (
	webClient      = "web-app"
	otherWebClient = "other-web-app"
	cliClient      = "cli"
	// The redirect URIs are never dialled: tests read the Location header.
	webRedirect  = "http://127.0.0.1:1/callback"
	webRedirect2 = "http://127.0.0.1:1/callback?tab=2"

	alicePassword = "alice-password"
	bobPassword   = "bob-password"
	testState     = "st4te-value"
	testNonce     = "n0nce-value"
)

var testUsers = []issuer.User{
	{Name: "alice", Password: alicePassword, Role: issuer.Role{Name: "reader", Permissions: []string{"read:products"}}},
	{Name: "bob", Password: bobPassword, Role: issuer.Role{Name: "visitor"}},
}

// fakeClock is the issuer's clock in tests of expiry. It starts at the real
// time because go-oidc checks exp against the real clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func withClock(c *fakeClock) func(*issuer.Config) {
	return func(cfg *issuer.Config) { cfg.Now = c.Now }
}

// noRedirects is a client that shows redirects instead of following them,
// as the tests check where the issuer sends the browser.
var noRedirects = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func pkcePair(tb testing.TB) (verifier, challenge string) {
	tb.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func authorizeParams(challenge string) url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {webClient},
		"redirect_uri":          {webRedirect},
		"scope":                 {"openid profile read:products"},
		"state":                 {testState},
		"nonce":                 {testNonce},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"audience":              {audience},
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) oauthError(tb testing.TB) string {
	tb.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("error Content-Type = %q, want application/json; body %s", ct, r.body)
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		tb.Fatalf("decode error body %s: %v", r.body, err)
	}
	if e.Description == "" {
		tb.Errorf("error %q has no error_description", e.Error)
	}
	return e.Error
}

func do(tb testing.TB, req *http.Request) response {
	tb.Helper()
	resp, err := noRedirects.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func get(tb testing.TB, rawURL string) response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return do(tb, req)
}

func postForm(tb testing.TB, rawURL string, form url.Values, header ...string) response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(tb, req)
}

// logIn posts the login form for params with these credentials.
func logIn(tb testing.TB, base string, params url.Values, name, password string, header ...string) response {
	tb.Helper()
	form := url.Values{"name": {name}, "password": {password}}
	for k, v := range params {
		form[k] = v
	}
	return postForm(tb, base+"/authorize", form, header...)
}

// redirectQuery checks that r redirects to the registered URI and returns
// the query it added.
func redirectQuery(tb testing.TB, r response, redirectURI string) url.Values {
	tb.Helper()
	if r.status != http.StatusFound {
		tb.Fatalf("status = %d, want 302; body %s", r.status, r.body)
	}
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		tb.Fatalf("Location: %v", err)
	}
	want, _ := url.Parse(redirectURI)
	if loc.Scheme != want.Scheme || loc.Host != want.Host || loc.Path != want.Path {
		tb.Fatalf("redirected to %s, want %s", loc, redirectURI)
	}
	for k, vs := range want.Query() {
		if !slices.Equal(loc.Query()[k], vs) {
			tb.Fatalf("redirect lost the registered query %s=%q: %s", k, vs, loc)
		}
	}
	return loc.Query()
}

// codeFor logs params in as alice and returns the code.
func codeFor(tb testing.TB, base string, params url.Values) string {
	tb.Helper()
	q := redirectQuery(tb, logIn(tb, base, params, "alice", alicePassword), params.Get("redirect_uri"))
	if q.Get("state") != params.Get("state") || q.Get("code") == "" {
		tb.Fatalf("redirect query = %v, want a code and state %q", q, params.Get("state"))
	}
	return q.Get("code")
}

func exchangeFields(code, verifier string) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {webClient},
		"code":          {code},
		"code_verifier": {verifier},
		"redirect_uri":  {webRedirect},
	}
}

type userTokens struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

func decodeTokens(tb testing.TB, r response) userTokens {
	tb.Helper()
	if r.status != http.StatusOK {
		tb.Fatalf("token status = %d, want 200; body %s", r.status, r.body)
	}
	var toks userTokens
	if err := json.Unmarshal(r.body, &toks); err != nil {
		tb.Fatalf("decode tokens: %v", err)
	}
	if toks.AccessToken == "" || toks.TokenType != "Bearer" || toks.ExpiresIn != 600 {
		tb.Fatalf("token response: type %q expires_in %d, access token present %v", toks.TokenType, toks.ExpiresIn, toks.AccessToken != "")
	}
	return toks
}

type accessClaims struct {
	Sub         string   `json:"sub"`
	Aud         []string `json:"aud"`
	Scope       string   `json:"scope"`
	Permissions []string `json:"permissions"`
	Azp         string   `json:"azp"`
}

// verifiers returns go-oidc verifiers for access tokens (aud = the API) and
// for ID tokens of clientID, from the issuer's own discovery.
func verifiers(tb testing.TB, iss *issuer.Issuer, clientID string) (access, id *oidc.IDTokenVerifier) {
	tb.Helper()
	p, err := oidc.NewProvider(context.Background(), iss.Issuer())
	if err != nil {
		tb.Fatalf("discovery: %v", err)
	}
	return p.Verifier(&oidc.Config{ClientID: audience}), p.Verifier(&oidc.Config{ClientID: clientID})
}

func verifyAccess(tb testing.TB, v *oidc.IDTokenVerifier, raw string) accessClaims {
	tb.Helper()
	tok, err := v.Verify(context.Background(), raw)
	if err != nil {
		tb.Fatalf("verify access token: %v", err)
	}
	var c accessClaims
	if err := tok.Claims(&c); err != nil {
		tb.Fatalf("access claims: %v", err)
	}
	return c
}

func TestAuthorizationCodeFlow(t *testing.T) {
	iss, srv := newServer(t)
	accessV, idV := verifiers(t, iss, webClient)
	tests := []struct {
		name, user, password string
		scope, redirectURI   string
		wantScope            string
		wantPermissions      []string
		wantIDToken          bool
	}{
		{"reader", "alice", alicePassword, "openid profile read:products", webRedirect, "openid profile read:products", []string{"read:products"}, true},
		{"visitor lacks read:products", "bob", bobPassword, "openid profile read:products", webRedirect, "openid profile", []string{}, true},
		{"unknown and unpermitted scopes are dropped", "alice", alicePassword, "openid write:products offline_access", webRedirect, "openid", []string{"read:products"}, true},
		{"no openid, no ID token", "alice", alicePassword, "read:products", webRedirect, "read:products", []string{"read:products"}, false},
		{"redirect URI with its own query", "alice", alicePassword, "openid", webRedirect2, "openid", []string{"read:products"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifier, challenge := pkcePair(t)
			params := authorizeParams(challenge)
			params.Set("scope", tt.scope)
			params.Set("redirect_uri", tt.redirectURI)

			form := get(t, srv.URL+"/authorize?"+params.Encode())
			if form.status != http.StatusOK || !strings.Contains(string(form.body), `value="`+challenge+`"`) {
				t.Fatalf("GET /authorize = %d, want 200 and a form carrying the challenge; body %s", form.status, form.body)
			}
			if form.header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("login form can be framed: X-Frame-Options %q", form.header.Get("X-Frame-Options"))
			}

			q := redirectQuery(t, logIn(t, srv.URL, params, tt.user, tt.password), tt.redirectURI)
			if q.Get("state") != testState || q.Get("code") == "" {
				t.Fatalf("redirect query %v, want a code and state %q", q, testState)
			}
			fields := exchangeFields(q.Get("code"), verifier)
			fields.Set("redirect_uri", tt.redirectURI)
			toks := decodeTokens(t, postForm(t, srv.URL+"/oauth/token", fields))
			if toks.Scope != tt.wantScope {
				t.Errorf("response scope = %q, want %q", toks.Scope, tt.wantScope)
			}

			c := verifyAccess(t, accessV, toks.AccessToken)
			if c.Sub != "auth0|"+tt.user || c.Azp != webClient || c.Scope != tt.wantScope {
				t.Errorf("access token sub %q azp %q scope %q", c.Sub, c.Azp, c.Scope)
			}
			if !slices.Equal(c.Aud, []string{audience, srv.URL + "/userinfo"}) {
				t.Errorf("access token aud = %q", c.Aud)
			}
			if !slices.Equal(c.Permissions, tt.wantPermissions) {
				t.Errorf("permissions = %q, want %q", c.Permissions, tt.wantPermissions)
			}

			if !tt.wantIDToken {
				if toks.IDToken != "" {
					t.Error("an ID token was issued without the openid scope")
				}
				return
			}
			idTok, err := idV.Verify(context.Background(), toks.IDToken)
			if err != nil {
				t.Fatalf("verify ID token: %v", err)
			}
			if idTok.Nonce != testNonce || idTok.Subject != "auth0|"+tt.user || !slices.Equal(idTok.Audience, []string{webClient}) {
				t.Errorf("ID token nonce %q sub %q aud %q", idTok.Nonce, idTok.Subject, idTok.Audience)
			}
			// An ID token is for the client, not the API.
			if _, err := accessV.Verify(context.Background(), toks.IDToken); err == nil {
				t.Error("the ID token verified as an access token for the API")
			}
		})
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	_, srv := newServer(t)
	_, challenge := pkcePair(t)
	tests := []struct {
		name   string
		mutate func(url.Values)
		// wantRedirectError is the error sent back to the client; empty
		// means the issuer must show a page and not redirect at all.
		wantRedirectError string
	}{
		{"unknown client", func(v url.Values) { v.Set("client_id", "nobody") }, ""},
		{"unregistered redirect URI", func(v url.Values) { v.Set("redirect_uri", "http://evil.test/callback") }, ""},
		{"redirect URI with a trailing slash", func(v url.Values) { v.Set("redirect_uri", webRedirect+"/") }, ""},
		{"redirect URI of another client", func(v url.Values) {
			v.Set("client_id", otherWebClient)
			v.Set("redirect_uri", webRedirect2)
		}, ""},
		{"no redirect URI", func(v url.Values) { v.Del("redirect_uri") }, ""},
		{"implicit flow", func(v url.Values) { v.Set("response_type", "token") }, "unsupported_response_type"},
		{"plain PKCE", func(v url.Values) {
			v.Set("code_challenge_method", "plain")
			v.Set("code_challenge", strings.Repeat("a", 43))
		}, "invalid_request"},
		{"no PKCE", func(v url.Values) {
			v.Del("code_challenge")
			v.Del("code_challenge_method")
		}, "invalid_request"},
		{"malformed challenge", func(v url.Values) { v.Set("code_challenge", "short") }, "invalid_request"},
		{"other API", func(v url.Values) { v.Set("audience", "https://other.test") }, "access_denied"},
		{"no API", func(v url.Values) { v.Del("audience") }, "access_denied"},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				params := authorizeParams(challenge)
				tt.mutate(params)
				var r response
				if method == http.MethodGet {
					r = get(t, srv.URL+"/authorize?"+params.Encode())
				} else {
					r = logIn(t, srv.URL, params, "alice", alicePassword)
				}
				if tt.wantRedirectError == "" {
					if r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
						t.Fatalf("status %d Location %q, want 400 and no redirect", r.status, r.header.Get("Location"))
					}
					if !strings.Contains(r.header.Get("Content-Type"), "text/html") {
						t.Fatalf("Content-Type %q, want an HTML page", r.header.Get("Content-Type"))
					}
					return
				}
				q := redirectQuery(t, r, params.Get("redirect_uri"))
				if q.Get("error") != tt.wantRedirectError || q.Get("error_description") == "" || q.Get("state") != testState {
					t.Fatalf("redirect query %v, want error %q with a description and the state", q, tt.wantRedirectError)
				}
				if q.Get("code") != "" {
					t.Fatal("a refused request got a code")
				}
			})
		}
	}
}

func TestAuthorizeLoginRefusals(t *testing.T) {
	_, srv := newServer(t)
	_, challenge := pkcePair(t)
	tests := []struct {
		name, user, password string
		header               []string
		wantStatus           int
		wantText             string
	}{
		{"wrong password", "alice", bobPassword, nil, http.StatusUnauthorized, "Wrong name or password."},
		{"unknown user", "mallory", alicePassword, nil, http.StatusUnauthorized, "Wrong name or password."},
		{"empty password", "alice", "", nil, http.StatusUnauthorized, "Wrong name or password."},
		{"posted from another site", "alice", alicePassword, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, ""},
		{"posted from another origin", "alice", alicePassword, []string{"Origin", "http://evil.test"}, http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := logIn(t, srv.URL, authorizeParams(challenge), tt.user, tt.password, tt.header...)
			if r.status != tt.wantStatus || r.header.Get("Location") != "" {
				t.Fatalf("status %d Location %q, want %d and no redirect", r.status, r.header.Get("Location"), tt.wantStatus)
			}
			if !strings.Contains(string(r.body), tt.wantText) {
				t.Fatalf("body lacks %q: %s", tt.wantText, r.body)
			}
		})
	}
}

func TestCodeExchangeErrors(t *testing.T) {
	clock := newClock()
	_, srv := newServer(t, withClock(clock))
	tokenURL := srv.URL + "/oauth/token"
	tests := []struct {
		name string
		// prepare alters the exchange and may act first (spend the code,
		// move the clock).
		prepare    func(t *testing.T, fields url.Values)
		wantStatus int
		wantError  string
	}{
		{"wrong verifier", func(t *testing.T, f url.Values) {
			other, _ := pkcePair(t)
			f.Set("code_verifier", other)
		}, http.StatusBadRequest, "invalid_grant"},
		{"challenge sent as verifier", func(_ *testing.T, f url.Values) {
			// what a client that used plain PKCE would send
			f.Set("code_verifier", challengeOf(f.Get("code_verifier")))
		}, http.StatusBadRequest, "invalid_grant"},
		{"replayed code", func(t *testing.T, f url.Values) {
			decodeTokens(t, postForm(t, tokenURL, f))
		}, http.StatusBadRequest, "invalid_grant"},
		{"code spent by a wrong verifier", func(t *testing.T, f url.Values) {
			wrong := url.Values{}
			for k, v := range f {
				wrong[k] = v
			}
			other, _ := pkcePair(t)
			wrong.Set("code_verifier", other)
			if r := postForm(t, tokenURL, wrong); r.oauthError(t) != "invalid_grant" {
				t.Fatalf("wrong verifier: %s", r.body)
			}
		}, http.StatusBadRequest, "invalid_grant"},
		{"other registered redirect URI", func(_ *testing.T, f url.Values) { f.Set("redirect_uri", webRedirect2) }, http.StatusBadRequest, "invalid_grant"},
		{"other client", func(_ *testing.T, f url.Values) { f.Set("client_id", otherWebClient) }, http.StatusBadRequest, "invalid_grant"},
		{"unknown client", func(_ *testing.T, f url.Values) { f.Set("client_id", "nobody") }, http.StatusUnauthorized, "invalid_client"},
		{"expired code", func(_ *testing.T, _ url.Values) { clock.Advance(61 * time.Second) }, http.StatusBadRequest, "invalid_grant"},
		{"unknown code", func(_ *testing.T, f url.Values) { f.Set("code", "not-a-code") }, http.StatusBadRequest, "invalid_grant"},
		{"no verifier", func(_ *testing.T, f url.Values) { f.Del("code_verifier") }, http.StatusBadRequest, "invalid_request"},
		{"machine client", func(_ *testing.T, f url.Values) { f.Set("client_id", clientID); f.Set("client_secret", clientSecret) }, http.StatusBadRequest, "unauthorized_client"},
		{"other API", func(_ *testing.T, f url.Values) { f.Set("audience", "https://other.test") }, http.StatusForbidden, "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifier, challenge := pkcePair(t)
			fields := exchangeFields(codeFor(t, srv.URL, authorizeParams(challenge)), verifier)
			tt.prepare(t, fields)
			r := postForm(t, tokenURL, fields)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			if got := r.oauthError(t); got != tt.wantError {
				t.Fatalf("error = %q, want %q", got, tt.wantError)
			}
		})
	}
}

// TestEveryFailedExchangeSpendsTheCode: after an exchange that fails in
// any way (no verifier, another API, an unknown client, a wrong
// redirect), the right exchange of the same code is invalid_grant.
func TestEveryFailedExchangeSpendsTheCode(t *testing.T) {
	_, srv := newServer(t)
	tokenURL := srv.URL + "/oauth/token"
	for name, spoil := range map[string]func(url.Values){
		"no verifier":     func(f url.Values) { f.Del("code_verifier") },
		"no redirect_uri": func(f url.Values) { f.Del("redirect_uri") },
		"other API":       func(f url.Values) { f.Set("audience", "https://other.test") },
		"unknown client":  func(f url.Values) { f.Set("client_id", "nobody") },
		"other redirect":  func(f url.Values) { f.Set("redirect_uri", webRedirect2) },
	} {
		t.Run(name, func(t *testing.T) {
			verifier, challenge := pkcePair(t)
			fields := exchangeFields(codeFor(t, srv.URL, authorizeParams(challenge)), verifier)
			failed := url.Values{}
			for k, v := range fields {
				failed[k] = v
			}
			spoil(failed)
			if r := postForm(t, tokenURL, failed); r.status == http.StatusOK {
				t.Fatalf("the spoiled exchange succeeded: %s", r.body)
			}
			r := postForm(t, tokenURL, fields)
			if r.status != http.StatusBadRequest || r.oauthError(t) != "invalid_grant" {
				t.Fatalf("the right exchange after a failed one: %d %s, want 400 invalid_grant", r.status, r.body)
			}
		})
	}
}

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestAuthorizeFloodLocksNoOneOut is issue 19's flood: 1,000 logins through
// POST /authorize (with a demo password, which the demo prints) neither
// refuse the next login nor push out another user's code, and the store
// stays bounded: the flood's own oldest codes go.
func TestAuthorizeFloodLocksNoOneOut(t *testing.T) {
	_, srv := newServer(t)
	verifier, challenge := pkcePair(t)
	params := authorizeParams(challenge)
	bobQuery := redirectQuery(t, logIn(t, srv.URL, params, "bob", bobPassword), webRedirect)
	var first string
	for i := range 1000 {
		q := redirectQuery(t, logIn(t, srv.URL, params, "alice", alicePassword), webRedirect)
		if q.Get("error") != "" || q.Get("code") == "" {
			t.Fatalf("login %d of the flood was refused: %v", i+1, q)
		}
		if i == 0 {
			first = q.Get("code")
		}
	}
	if r := postForm(t, srv.URL+"/oauth/token", exchangeFields(first, verifier)); r.status != http.StatusBadRequest || r.oauthError(t) != "invalid_grant" {
		t.Fatalf("the flood's first code still works after 1,000 more: %d %s", r.status, r.body)
	}
	decodeTokens(t, postForm(t, srv.URL+"/oauth/token", exchangeFields(bobQuery.Get("code"), verifier)))
	decodeTokens(t, postForm(t, srv.URL+"/oauth/token", exchangeFields(codeFor(t, srv.URL, params), verifier)))
}

// TestPasswordAttemptsAreLimited: five wrong passwords in a minute lock the
// user out for a minute (429 with Retry-After), even with the right
// password, on both login forms; other users are not affected, guesses
// during the lockout do not extend it, and unknown names share one limit.
func TestPasswordAttemptsAreLimited(t *testing.T) {
	clock := newClock()
	_, srv := newServer(t, withClock(clock))
	_, challenge := pkcePair(t)
	params := authorizeParams(challenge)
	for i := range 5 {
		if r := logIn(t, srv.URL, params, "alice", "guess"); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i+1, r.status)
		}
		clock.Advance(10 * time.Second)
	}
	r := logIn(t, srv.URL, params, "alice", alicePassword)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "50" || !strings.Contains(string(r.body), "Too many wrong passwords") {
		t.Fatalf("right password after 5 wrong ones: %d Retry-After %q, want 429 and the 50s left of a minute from the fifth", r.status, r.header.Get("Retry-After"))
	}
	dc := startDevice(t, srv.URL)
	if r := activate(t, srv.URL, dc.UserCode, "approve", "alice", alicePassword); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("device approval during the lockout: %d, want 429", r.status)
	}
	redirectQuery(t, logIn(t, srv.URL, params, "bob", bobPassword), webRedirect) // bob is not locked out
	for range 1000 {
		logIn(t, srv.URL, params, "alice", "guess")
	}
	clock.Advance(50 * time.Second)
	codeFor(t, srv.URL, params) // the 1,000 guesses during the lockout did not extend it

	for i := range 5 {
		if r := logIn(t, srv.URL, params, fmt.Sprintf("nobody%d", i), "guess"); r.status != http.StatusUnauthorized {
			t.Fatalf("unknown name %d: %d", i, r.status)
		}
	}
	if r := logIn(t, srv.URL, params, "someone-else", "guess"); r.status != http.StatusTooManyRequests {
		t.Fatalf("a sixth unknown name: %d, want 429: unknown names share one limit", r.status)
	}
	redirectQuery(t, logIn(t, srv.URL, params, "alice", alicePassword), webRedirect)
}

func TestDemoUsers(t *testing.T) {
	users, err := issuer.DemoUsers("read:products")
	if err != nil {
		t.Fatal(err)
	}
	again, err := issuer.DemoUsers("read:products")
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].Name != issuer.DemoReader || users[1].Name != issuer.DemoVisitor {
		t.Fatalf("demo users = %v", users)
	}
	if !slices.Equal(users[0].Role.Permissions, []string{"read:products"}) || len(users[1].Role.Permissions) != 0 {
		t.Fatalf("roles = %+v, %+v", users[0].Role, users[1].Role)
	}
	shape := regexp.MustCompile(`^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$`)
	seen := map[string]bool{}
	for _, u := range append(users, again...) {
		if !shape.MatchString(u.Password) || seen[u.Password] {
			t.Fatalf("password of %s is malformed or repeated", u.Name)
		}
		seen[u.Password] = true
		for _, printed := range []string{fmt.Sprint(u), fmt.Sprintf("%v %+v %s", u, u, u)} {
			if strings.Contains(printed, u.Password) {
				t.Fatalf("printing a user shows the password: %s", printed)
			}
		}
	}
	if _, err := issuer.New(issuer.Config{
		URL: "http://127.0.0.1:1", Audience: audience, ClientID: clientID, ClientSecret: clientSecret, Users: users,
	}); err != nil {
		t.Fatalf("demo users are not a valid config: %v", err)
	}
}

func TestUserClaims(t *testing.T) {
	iss, srv := newServer(t)
	claims, err := iss.UserClaims("auth0|alice", webClient)
	if err != nil {
		t.Fatalf("UserClaims: %v", err)
	}
	claims["exp"] = time.Now().Add(-time.Minute).Unix()
	expired, err := iss.Mint(claims)
	if err != nil {
		t.Fatal(err)
	}
	accessV, _ := verifiers(t, iss, webClient)
	var expErr *oidc.TokenExpiredError
	if _, err := accessV.Verify(context.Background(), expired); !errors.As(err, &expErr) {
		t.Fatalf("verify expired user token: %v, want TokenExpiredError", err)
	}
	claims["exp"] = time.Now().Add(time.Minute).Unix()
	valid, err := iss.Mint(claims)
	if err != nil {
		t.Fatal(err)
	}
	c := verifyAccess(t, accessV, valid)
	if c.Sub != "auth0|alice" || c.Scope != "read:products" || c.Azp != webClient || !slices.Equal(c.Aud, []string{audience, srv.URL + "/userinfo"}) {
		t.Fatalf("user claims = %+v", c)
	}
	for _, sub := range []string{"auth0|mallory", "alice", "google-oauth2|alice"} {
		if _, err := iss.UserClaims(sub, webClient); err == nil {
			t.Errorf("UserClaims(%q) found a user", sub)
		}
	}
}
