package issuer_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
)

const (
	audience     = "https://api.trustchain.test"
	clientID     = "client-123"
	clientSecret = "s3cret"
)

// newServer starts the issuer on a real loopback listener, so its URL is
// known before the issuer is built, as in the demo. Options adjust the
// config; the base one has the test users and public clients.
func newServer(tb testing.TB, opts ...func(*issuer.Config)) (*issuer.Issuer, *httptest.Server) {
	tb.Helper()
	srv := httptest.NewUnstartedServer(nil)
	cfg := issuer.Config{
		URL:          "http://" + srv.Listener.Addr().String(),
		Audience:     audience,
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Scopes:       []string{"read:products", "write:products"},
		TokenTTL:     10 * time.Minute,
		Users:        testUsers,
		PublicClients: []issuer.PublicClient{
			{ID: webClient, RedirectURIs: []string{webRedirect, webRedirect2}},
			{ID: otherWebClient, RedirectURIs: []string{webRedirect}},
			{ID: cliClient},
		},
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	iss, err := issuer.New(cfg)
	if err != nil {
		tb.Fatalf("issuer.New: %v", err)
	}
	srv.Config.Handler = iss
	srv.Start()
	tb.Cleanup(srv.Close)
	return iss, srv
}

func TestNewRejectsBadConfig(t *testing.T) {
	valid := issuer.Config{URL: "http://127.0.0.1:1", Audience: audience, ClientID: clientID, ClientSecret: clientSecret}
	tests := []struct {
		name   string
		mutate func(*issuer.Config)
	}{
		{"trailing slash", func(c *issuer.Config) { c.URL += "/" }},
		{"relative URL", func(c *issuer.Config) { c.URL = "/issuer" }},
		{"no audience", func(c *issuer.Config) { c.Audience = "" }},
		{"no client secret", func(c *issuer.Config) { c.ClientSecret = "" }},
		{"negative TTL", func(c *issuer.Config) { c.TokenTTL = -time.Second }},
		{"user without password", func(c *issuer.Config) { c.Users = []issuer.User{{Name: "carol"}} }},
		{"user named with a bar", func(c *issuer.Config) { c.Users = []issuer.User{{Name: "a|b", Password: "pw"}} }},
		{"user twice", func(c *issuer.Config) { c.Users = []issuer.User{testUsers[0], testUsers[0]} }},
		{"public client without ID", func(c *issuer.Config) { c.PublicClients = []issuer.PublicClient{{}} }},
		{"public client named like the machine client", func(c *issuer.Config) {
			c.PublicClients = []issuer.PublicClient{{ID: clientID}}
		}},
		{"relative redirect URI", func(c *issuer.Config) {
			c.PublicClients = []issuer.PublicClient{{ID: "web", RedirectURIs: []string{"/callback"}}}
		}},
		{"redirect URI with fragment", func(c *issuer.Config) {
			c.PublicClients = []issuer.PublicClient{{ID: "web", RedirectURIs: []string{"http://127.0.0.1/cb#x"}}}
		}},
		{"device interval not whole seconds", func(c *issuer.Config) { c.DeviceInterval = 1500 * time.Millisecond }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.mutate(&cfg)
			if _, err := issuer.New(cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
	if _, err := issuer.New(valid); err != nil {
		t.Fatalf("New refused a valid config: %v", err)
	}
	valid.Users = testUsers
	valid.PublicClients = []issuer.PublicClient{{ID: webClient, RedirectURIs: []string{webRedirect}}, {ID: cliClient}}
	valid.DeviceInterval = 2 * time.Second
	if _, err := issuer.New(valid); err != nil {
		t.Fatalf("New refused a valid config with users: %v", err)
	}
}

func TestTokenEndpoint(t *testing.T) {
	_, srv := newServer(t)
	good := map[string]string{
		"grant_type": "client_credentials", "client_id": clientID,
		"client_secret": clientSecret, "audience": audience,
	}
	with := func(k, v string) map[string]string {
		m := make(map[string]string, len(good))
		for gk, gv := range good {
			m[gk] = gv
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name       string
		fields     map[string]string
		wantStatus int
		wantError  string
	}{
		{"success", good, http.StatusOK, ""},
		{"wrong secret", with("client_secret", "nope"), http.StatusUnauthorized, "invalid_client"},
		{"wrong client", with("client_id", "other"), http.StatusUnauthorized, "invalid_client"},
		{"no secret", with("client_secret", ""), http.StatusUnauthorized, "invalid_client"},
		{"unknown grant", with("grant_type", "password"), http.StatusBadRequest, "unsupported_grant_type"},
		{"no grant", with("grant_type", ""), http.StatusBadRequest, "invalid_request"},
		{"machine client on a user grant", with("grant_type", "authorization_code"), http.StatusBadRequest, "unauthorized_client"},
		{"unknown audience", with("audience", "https://other.test"), http.StatusForbidden, "access_denied"},
	}
	for _, tt := range tests {
		for _, encoding := range []string{"json", "form"} {
			t.Run(tt.name+"/"+encoding, func(t *testing.T) {
				status, body := postToken(t, srv.URL, encoding, tt.fields)
				if status != tt.wantStatus {
					t.Fatalf("status = %d, want %d; body %s", status, tt.wantStatus, body)
				}
				if tt.wantError == "" {
					var resp struct {
						AccessToken string `json:"access_token"`
						TokenType   string `json:"token_type"`
						ExpiresIn   int    `json:"expires_in"`
						Scope       string `json:"scope"`
					}
					if err := json.Unmarshal(body, &resp); err != nil {
						t.Fatalf("decode: %v", err)
					}
					if resp.AccessToken == "" || resp.TokenType != "Bearer" || resp.ExpiresIn != 600 || resp.Scope != "read:products write:products" {
						t.Fatalf("unexpected success body %+v", resp)
					}
					return
				}
				var oauthErr map[string]string
				if err := json.Unmarshal(body, &oauthErr); err != nil {
					t.Fatalf("decode: %v", err)
				}
				if oauthErr["error"] != tt.wantError || oauthErr["error_description"] == "" {
					t.Fatalf("error body = %v, want error %q", oauthErr, tt.wantError)
				}
				if len(oauthErr) != 2 {
					t.Fatalf("error body = %v, want error and error_description only", oauthErr)
				}
			})
		}
	}
}

// TestTokenEndpointClientAuthentication: a client that fails HTTP Basic
// authentication gets 401 invalid_client with a Basic challenge (RFC 6749
// §5.2); one that sent its secret in the body gets no challenge; Basic
// credentials are form-decoded; two methods at once are invalid_request.
// Every answer is no-store.
func TestTokenEndpointClientAuthentication(t *testing.T) {
	_, srv := newServer(t)
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {audience}}
	tests := []struct {
		name          string
		fields        url.Values
		basicID       string
		basicSecret   string
		wantStatus    int
		wantError     string
		wantChallenge bool
	}{
		{"basic", form, url.QueryEscape(clientID), url.QueryEscape(clientSecret), http.StatusOK, "", false},
		{"basic, wrong secret", form, clientID, "nope", http.StatusUnauthorized, "invalid_client", true},
		{"basic, unknown client", form, "other", clientSecret, http.StatusUnauthorized, "invalid_client", true},
		{"body, wrong secret", url.Values{"grant_type": {"client_credentials"}, "audience": {audience}, "client_id": {clientID}, "client_secret": {"nope"}},
			"", "", http.StatusUnauthorized, "invalid_client", false},
		{"basic and a body secret", url.Values{"grant_type": {"client_credentials"}, "audience": {audience}, "client_secret": {clientSecret}},
			clientID, clientSecret, http.StatusBadRequest, "invalid_request", false},
		{"basic, unknown grant", url.Values{"grant_type": {"password"}}, clientID, clientSecret, http.StatusBadRequest, "unsupported_grant_type", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/oauth/token", strings.NewReader(tt.fields.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.basicID != "" {
				req.SetBasicAuth(tt.basicID, tt.basicSecret)
			}
			r := do(t, req)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			challenge := r.header.Get("WWW-Authenticate")
			if tt.wantChallenge != (challenge != "") || (tt.wantChallenge && !strings.HasPrefix(challenge, `Basic realm="`)) {
				t.Errorf("WWW-Authenticate = %q, want a Basic challenge: %v", challenge, tt.wantChallenge)
			}
			if tt.wantError != "" {
				if got := r.oauthError(t); got != tt.wantError {
					t.Fatalf("error = %q, want %q", got, tt.wantError)
				}
			}
		})
	}
}

func TestTokenEndpointCapsBody(t *testing.T) {
	_, srv := newServer(t)
	huge := strings.NewReader(`{"grant_type":"` + strings.Repeat("a", 1<<20) + `"}`)
	resp, err := http.Post(srv.URL+"/oauth/token", "application/json", huge)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400", resp.StatusCode)
	}
}

func TestIssuedTokenHasAuth0Claims(t *testing.T) {
	iss, srv := newServer(t)
	_, body := postToken(t, srv.URL, "json", map[string]string{
		"grant_type": "client_credentials", "client_id": clientID,
		"client_secret": clientSecret, "audience": audience,
	})
	var resp struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("decode: %v", err)
	}

	keys := fetchJWKS(t, srv.URL)
	if len(keys.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(keys.Keys))
	}
	jwk := keys.Keys[0]
	if jwk.Algorithm != "RS256" || jwk.Use != "sig" || jwk.KeyID == "" || !jwk.IsPublic() {
		t.Fatalf("JWK = alg %q use %q kid %q public %v", jwk.Algorithm, jwk.Use, jwk.KeyID, jwk.IsPublic())
	}

	jws, err := jose.ParseSignedCompact(resp.AccessToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	if got := jws.Signatures[0].Header.KeyID; got != jwk.KeyID {
		t.Fatalf("kid = %q, want %q", got, jwk.KeyID)
	}
	payload, err := jws.Verify(jwk.Key)
	if err != nil {
		t.Fatalf("verify with published key: %v", err)
	}
	var claims struct {
		Iss         string   `json:"iss"`
		Sub         string   `json:"sub"`
		Aud         []string `json:"aud"` // must be an array, as Auth0 sends it
		Iat         int64    `json:"iat"`
		Exp         int64    `json:"exp"`
		Scope       string   `json:"scope"`
		Permissions []string `json:"permissions"`
		Azp         string   `json:"azp"`
		Gty         string   `json:"gty"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("claims: %v", err)
	}
	if claims.Iss != srv.URL+"/" || claims.Iss != iss.Issuer() {
		t.Errorf("iss = %q, want %q", claims.Iss, srv.URL+"/")
	}
	if claims.Sub != clientID+"@clients" || claims.Azp != clientID || claims.Gty != "client-credentials" {
		t.Errorf("sub/azp/gty = %q/%q/%q", claims.Sub, claims.Azp, claims.Gty)
	}
	if !slices.Equal(claims.Aud, []string{audience, srv.URL + "/userinfo"}) {
		t.Errorf("aud = %q", claims.Aud)
	}
	if claims.Exp-claims.Iat != 600 {
		t.Errorf("exp - iat = %d, want 600", claims.Exp-claims.Iat)
	}
	if claims.Scope != "read:products write:products" || !slices.Equal(claims.Permissions, []string{"read:products", "write:products"}) {
		t.Errorf("scope %q permissions %q", claims.Scope, claims.Permissions)
	}
}

func TestDiscovery(t *testing.T) {
	iss, srv := newServer(t)
	resp, err := http.Get(srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer         string   `json:"issuer"`
		JWKSURI        string   `json:"jwks_uri"`
		TokenEndpoint  string   `json:"token_endpoint"`
		AuthEndpoint   string   `json:"authorization_endpoint"`
		DeviceEndpoint string   `json:"device_authorization_endpoint"`
		GrantTypes     []string `json:"grant_types_supported"`
		ResponseTypes  []string `json:"response_types_supported"`
		PKCEMethods    []string `json:"code_challenge_methods_supported"`
		Scopes         []string `json:"scopes_supported"`
		Algs           []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if doc.Issuer != iss.Issuer() || !strings.HasSuffix(doc.Issuer, "/") {
		t.Errorf("issuer = %q, want %q", doc.Issuer, iss.Issuer())
	}
	if doc.JWKSURI != srv.URL+"/.well-known/jwks.json" || doc.TokenEndpoint != srv.URL+"/oauth/token" {
		t.Errorf("jwks_uri %q token_endpoint %q", doc.JWKSURI, doc.TokenEndpoint)
	}
	if doc.AuthEndpoint != srv.URL+"/authorize" || doc.DeviceEndpoint != srv.URL+"/oauth/device/code" {
		t.Errorf("authorization_endpoint %q device_authorization_endpoint %q", doc.AuthEndpoint, doc.DeviceEndpoint)
	}
	wantGrants := []string{"client_credentials", "authorization_code", "urn:ietf:params:oauth:grant-type:device_code"}
	if !slices.Equal(doc.GrantTypes, wantGrants) {
		t.Errorf("grant_types_supported = %q, want %q", doc.GrantTypes, wantGrants)
	}
	if !slices.Equal(doc.ResponseTypes, []string{"code"}) || !slices.Equal(doc.PKCEMethods, []string{"S256"}) {
		t.Errorf("response_types_supported %q code_challenge_methods_supported %q", doc.ResponseTypes, doc.PKCEMethods)
	}
	for _, want := range []string{"openid", "profile", "read:products", "write:products"} {
		if !slices.Contains(doc.Scopes, want) {
			t.Errorf("scopes_supported %q lacks %q", doc.Scopes, want)
		}
	}
	if !slices.Equal(doc.Algs, []string{"RS256"}) {
		t.Errorf("algs = %q", doc.Algs)
	}
}

func TestRotateKeyPublishesOnlyTheNewKey(t *testing.T) {
	iss, srv := newServer(t)
	oldToken, err := iss.Mint(iss.DefaultClaims("user"))
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	oldKID := fetchJWKS(t, srv.URL).Keys[0].KeyID

	if err := iss.RotateKey(); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	keys := fetchJWKS(t, srv.URL)
	if len(keys.Keys) != 1 || keys.Keys[0].KeyID == oldKID {
		t.Fatalf("after rotation JWKS = %d keys, first kid %q (old %q)", len(keys.Keys), keys.Keys[0].KeyID, oldKID)
	}
	newToken, err := iss.Mint(iss.DefaultClaims("user"))
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	if got := headerKID(t, newToken); got != keys.Keys[0].KeyID {
		t.Fatalf("new token kid = %q, want %q", got, keys.Keys[0].KeyID)
	}
	if got := headerKID(t, oldToken); got != oldKID {
		t.Fatalf("old token kid = %q, want %q", got, oldKID)
	}
}

func postToken(tb testing.TB, base, encoding string, fields map[string]string) (int, []byte) {
	tb.Helper()
	var body io.Reader
	var contentType string
	switch encoding {
	case "json":
		b, err := json.Marshal(fields)
		if err != nil {
			tb.Fatal(err)
		}
		body, contentType = strings.NewReader(string(b)), "application/json"
	case "form":
		form := url.Values{}
		for k, v := range fields {
			form.Set(k, v)
		}
		body, contentType = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
	default:
		tb.Fatalf("unknown encoding %q", encoding)
	}
	resp, err := http.Post(base+"/oauth/token", contentType, body)
	if err != nil {
		tb.Fatalf("post token: %v", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("Content-Type = %q", ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	return resp.StatusCode, b
}

func fetchJWKS(tb testing.TB, base string) jose.JSONWebKeySet {
	tb.Helper()
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		tb.Fatalf("get jwks: %v", err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		tb.Fatalf("decode jwks: %v", err)
	}
	return set
}

func headerKID(tb testing.TB, token string) string {
	tb.Helper()
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		tb.Fatal("token has no header")
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		tb.Fatal(err)
	}
	var h struct {
		KID string `json:"kid"`
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		tb.Fatal(err)
	}
	if h.Typ != "JWT" {
		tb.Fatalf("typ header = %q, want JWT", h.Typ)
	}
	return h.KID
}
