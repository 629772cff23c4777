package page_test

import (
	"crypto/sha256"
	"encoding/base64"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/dev/page"
)

func TestLoginCallAndClaims(t *testing.T) {
	ch := newChain(t)
	b := newBrowser(t)

	home := b.do(http.MethodGet, ch.pageURL+"/", nil)
	assertContains(t, home.body, "Not logged in", "Log in as alice", `id="login-bob"`)

	b.logIn(ch.pageURL, "alice", alicePassword)
	// The page called A on the way back from the login, before any button.
	if len(ch.a.seenTokens()) != 1 {
		t.Fatalf("after the login A saw %d tokens, want the page's own call", len(ch.a.seenTokens()))
	}
	home = b.do(http.MethodGet, ch.pageURL+"/", nil)
	assertContains(t, home.body, "Logged in as <strong id=\"subject\">auth0|alice</strong>",
		"<dt>sub</dt><dd>auth0|alice</dd>",
		"<dt>aud</dt><dd>"+audience+", "+strings.TrimSuffix(ch.issuer.Issuer(), "/")+"/userinfo</dd>",
		"<dt>scope</dt><dd>openid profile read:products</dd>",
		"<dt>permissions</dt><dd>read:products</dd>",
		"<dt>azp</dt><dd>"+uiClient+"</dd>",
		"<dt>exp</dt>", "200 OK", "<td>Laptop</td>")
	assertBox(t, home.body, "hop-a", "ok", "<dt>token</dt><dd>✓ valid</dd>", "<dt>answered</dt><dd>200</dd>")

	page := b.press(ch.pageURL, "token")
	assertContains(t, page.body, "Call A with your token", "200 OK", "<td>Laptop</td>", "<td>1000</td>", "request processed at")
	assertBox(t, page.body, "hop-a", "ok", "<dt>token</dt><dd>✓ valid</dd>")
	if len(ch.a.seenTokens()) != 2 {
		t.Fatalf("A saw %d tokens, want 2", len(ch.a.seenTokens()))
	}
	ch.a.assertNoToken(t, home.body+page.body)
	if c := b.cookie(ch.pageURL); c == nil || strings.Count(c.Value, ".") > 0 || len(c.Value) != 43 {
		t.Fatalf("the session cookie is not a bare random id: %v", c)
	}
}

// TestLoginShortcut: "Log in as bob" sends login_hint=bob, which the
// issuer's form fills in; a name that is not a shortcut is not passed on.
func TestLoginShortcut(t *testing.T) {
	ch := newChain(t)
	for _, tt := range []struct{ user, wantHint string }{{"bob", "bob"}, {"mallory", ""}} {
		b := newBrowser(t)
		r := b.do(http.MethodPost, ch.pageURL+"/login", url.Values{"user": {tt.user}})
		u, err := url.Parse(r.header.Get("Location"))
		if r.status != http.StatusSeeOther || err != nil || u.Query().Get("login_hint") != tt.wantHint {
			t.Fatalf("Log in as %s = %d to %q, want login_hint %q", tt.user, r.status, r.header.Get("Location"), tt.wantHint)
		}
		if tt.wantHint != "" {
			form := b.do(http.MethodGet, u.String(), nil)
			assertContains(t, form.body, `name="name" value="bob"`)
		}
	}
}

func TestCallsShowTheChainsRefusals(t *testing.T) {
	ch := newChain(t)
	tests := []struct {
		name, user, password, call string
		want                       []string
		box                        string // the box that must refuse
		boxWant                    []string
	}{
		{"no token", "", "", "none", []string{"Call A without a token", "401 Unauthorized", "invalid_token"},
			"hop-a", []string{"<dd>✗ no token</dd>", "<dd>401</dd>"}},
		{"user without read:products", "bob", bobPassword, "token", []string{"403 Forbidden", "insufficient_scope"},
			"hop-a", []string{"<dd>✗ lacks the permission</dd>", "<dd>403</dd>"}},
		{"expired token", "alice", alicePassword, "expired", []string{"Call A with an expired token", "401 Unauthorized"},
			"hop-a", []string{"<dd>✗ expired</dd>", "<dd>401</dd>"}},
		{"straight to B without a workload identity", "alice", alicePassword, "direct-b", []string{"Call B directly", "refused before any HTTP answer"},
			"hop-b", []string{"✗ refused in the TLS handshake: the page has no workload certificate", "B accepts only " + bCaller}},
		{"own token before logging in", "", "", "token", []string{"Log in first."}, "", nil},
		{"expired token before logging in", "", "", "expired", []string{"Log in first."}, "", nil},
		{"no such button", "", "", "drop-tables", []string{"There is no call"}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBrowser(t)
			if tt.user != "" {
				b.logIn(ch.pageURL, tt.user, tt.password)
			}
			page := b.press(ch.pageURL, tt.call)
			assertContains(t, html.UnescapeString(page.body), tt.want...)
			if tt.box != "" {
				assertBox(t, page.body, tt.box, "bad", tt.boxWant...)
			}
			assertNoRepeats(t, page.body)
			ch.a.assertNoToken(t, page.body)
		})
	}
}

func TestCallbackRefusals(t *testing.T) {
	tests := []struct {
		name string
		// tamper alters the authorize request before the user logs in.
		tamper func(q url.Values)
		// answer alters the issuer's answer before the browser brings it
		// back, or replays it.
		answer func(t *testing.T, b *browser, callback string) string
		// wait is how long the user takes before coming back.
		wait         time.Duration
		wantStatus   int
		wantText     string
		wantLoggedIn bool // after the refused answer
	}{
		{"state of another login", nil, func(_ *testing.T, _ *browser, cb string) string {
			return withParam(cb, "state", "forged-state")
		}, 0, http.StatusBadRequest, "state mismatch", false},
		{"replayed answer", nil, func(t *testing.T, b *browser, cb string) string {
			if r := b.do(http.MethodGet, cb, nil); r.status != http.StatusSeeOther {
				t.Fatalf("first callback: %d %s", r.status, r.body)
			}
			return cb
		}, 0, http.StatusBadRequest, "state mismatch", true},
		{"nonce of another login", func(q url.Values) { q.Set("nonce", "someone-elses-nonce") }, nil,
			0, http.StatusBadGateway, "nonce", false},
		{"code bound to another PKCE verifier", func(q url.Values) {
			sum := sha256.Sum256([]byte("a verifier the page never made, long enough for PKCE"))
			q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
		}, nil, 0, http.StatusBadGateway, "invalid_grant", false},
		{"issuer refused the login", func(q url.Values) { q.Set("audience", "https://other.test") }, nil,
			0, http.StatusUnauthorized, "The issuer refused the login: access_denied", false},
		{"login left too long", nil, nil, 11 * time.Minute, http.StatusBadRequest, "took too long", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := newChain(t)
			b := newBrowser(t)
			authorize := b.startLogin(ch.pageURL)
			if tt.tamper != nil {
				q := authorize.Query()
				tt.tamper(q)
				authorize.RawQuery = q.Encode()
			}
			cb := b.logInAtIssuer(authorize, "alice", alicePassword)
			if tt.answer != nil {
				cb = tt.answer(t, b, cb)
			}
			ch.clock.Advance(tt.wait)
			r := b.do(http.MethodGet, cb, nil)
			if r.status != tt.wantStatus {
				t.Fatalf("callback = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			assertContains(t, html.UnescapeString(r.body), tt.wantText)
			home := b.do(http.MethodGet, ch.pageURL+"/", nil)
			if loggedIn := strings.Contains(home.body, "Logged in as"); loggedIn != tt.wantLoggedIn {
				t.Fatalf("logged in = %v after the refusal, want %v", loggedIn, tt.wantLoggedIn)
			}
		})
	}
}

func TestCallbackWithoutSession(t *testing.T) {
	ch := newChain(t)
	b := newBrowser(t)
	cb := b.logInAtIssuer(b.startLogin(ch.pageURL), "alice", alicePassword)
	stranger := newBrowser(t) // an answer carried to another browser
	r := stranger.do(http.MethodGet, cb, nil)
	if r.status != http.StatusBadRequest || strings.Contains(r.body, "Logged in as") {
		t.Fatalf("callback without the session = %d; body %s", r.status, r.body)
	}
}

func withParam(rawURL, key, value string) string {
	u, _ := url.Parse(rawURL)
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestCrossSitePostsAreRefused(t *testing.T) {
	ch := newChain(t)
	b := newBrowser(t)
	b.logIn(ch.pageURL, "alice", alicePassword)
	calls := len(ch.a.seenTokens())
	for _, path := range []string{"/login", "/call", "/logout"} {
		for _, header := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "http://evil.test"}} {
			t.Run(path+"/"+header[0], func(t *testing.T) {
				r := b.do(http.MethodPost, ch.pageURL+path, url.Values{"call": {"token"}}, header...)
				if r.status != http.StatusForbidden {
					t.Fatalf("status = %d, want 403", r.status)
				}
			})
		}
	}
	home := b.do(http.MethodGet, ch.pageURL+"/", nil)
	assertContains(t, home.body, "Logged in as")
	if got := len(ch.a.seenTokens()); got != calls {
		t.Fatalf("a cross-site POST made the page call A (%d calls, want %d)", got, calls)
	}
	// The page's own forms are same-origin and pass.
	page := b.do(http.MethodPost, ch.pageURL+"/call", url.Values{"call": {"token"}}, "Sec-Fetch-Site", "same-origin", "Origin", ch.pageURL)
	if page.status != http.StatusSeeOther {
		t.Fatalf("same-origin POST = %d, want 303", page.status)
	}
}

func TestSessionCookie(t *testing.T) {
	ch := newChain(t)
	b := newBrowser(t)
	r := b.do(http.MethodPost, ch.pageURL+"/login", url.Values{})
	setCookie := r.header.Get("Set-Cookie")
	for _, want := range []string{"trustchain_demo_session=", "Path=/", "Max-Age=900", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("Set-Cookie %q lacks %s", setCookie, want)
		}
	}
	if strings.Contains(setCookie, "Secure") {
		t.Errorf("a cookie for an http:// page is marked Secure, so the browser would drop it: %q", setCookie)
	}
	before := b.cookie(ch.pageURL).Value

	b.logIn(ch.pageURL, "alice", alicePassword)
	after := b.cookie(ch.pageURL).Value
	if after == before {
		t.Fatal("the session id did not change at login")
	}
	// Whoever knew the id from before the login gets nothing.
	r = newBrowser(t).do(http.MethodGet, ch.pageURL+"/", nil, "Cookie", "trustchain_demo_session="+before)
	if strings.Contains(r.body, "Logged in as") {
		t.Fatal("the pre-login session id shows the login")
	}

	ch.clock.Advance(14 * time.Minute)
	assertContains(t, b.do(http.MethodGet, ch.pageURL+"/", nil).body, "Logged in as")
	ch.clock.Advance(2 * time.Minute)
	assertContains(t, b.do(http.MethodGet, ch.pageURL+"/", nil).body, "Not logged in")

	b.logIn(ch.pageURL, "alice", alicePassword)
	loggedIn := b.cookie(ch.pageURL).Value
	r = b.do(http.MethodPost, ch.pageURL+"/logout", url.Values{})
	if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout = %d, Set-Cookie %q", r.status, r.header.Get("Set-Cookie"))
	}
	r = newBrowser(t).do(http.MethodGet, ch.pageURL+"/", nil, "Cookie", "trustchain_demo_session="+loggedIn)
	if strings.Contains(r.body, "Logged in as") {
		t.Fatal("the session outlived the logout")
	}
}

// TestAnonymousFloodSignsNoOneOut is issue 19's flood: 1,001 anonymous
// presses of Log in fill the anonymous store to its cap, and the signed-in
// user is still signed in.
func TestAnonymousFloodSignsNoOneOut(t *testing.T) {
	ch := newChain(t)
	alice := newBrowser(t)
	alice.logIn(ch.pageURL, "alice", alicePassword)
	for range 1001 {
		newBrowser(t).startLogin(ch.pageURL)
	}
	if anon, in := page.SessionCounts(ch.page); anon != 1000 || in != 1 {
		t.Fatalf("%d anonymous and %d signed-in sessions held, want the cap of 1000 and alice's", anon, in)
	}
	assertContains(t, alice.do(http.MethodGet, ch.pageURL+"/", nil).body, "Logged in as")
	// The newest anonymous sessions survive the eviction: a login started
	// now finishes.
	b := newBrowser(t)
	b.logIn(ch.pageURL, "bob", bobPassword)
	assertContains(t, b.do(http.MethodGet, ch.pageURL+"/", nil).body, "Logged in as")
}

// TestOneUsersLoginsSignNoOneElseOut: bob, whose password the demo prints,
// logs in over and over; alice stays signed in, and bob holds at most 16
// sessions.
func TestOneUsersLoginsSignNoOneElseOut(t *testing.T) {
	ch := newChain(t)
	alice := newBrowser(t)
	alice.logIn(ch.pageURL, "alice", alicePassword)
	for range 40 {
		newBrowser(t).logIn(ch.pageURL, "bob", bobPassword)
	}
	if _, in := page.SessionCounts(ch.page); in != 17 {
		t.Fatalf("%d signed-in sessions, want bob's 16 and alice's", in)
	}
	assertContains(t, alice.do(http.MethodGet, ch.pageURL+"/", nil).body, "Logged in as")
}

func TestPageHeaders(t *testing.T) {
	ch := newChain(t)
	r := newBrowser(t).do(http.MethodGet, ch.pageURL+"/", nil)
	csp := r.header.Get("Content-Security-Policy")
	issuerOrigin := strings.TrimSuffix(ch.issuer.Issuer(), "/")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self' " + issuerOrigin} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "script-src") {
		t.Errorf("the page needs no script, yet CSP allows some: %q", csp)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("Cache-Control %q X-Frame-Options %q", r.header.Get("Cache-Control"), r.header.Get("X-Frame-Options"))
	}
	// The favicon comes from the page itself, which CSP allows for images
	// and nothing else.
	if !strings.Contains(csp, "img-src 'self'") {
		t.Errorf("Content-Security-Policy %q does not let the page's own favicon load", csp)
	}
	if icon := newBrowser(t).do(http.MethodGet, ch.pageURL+"/favicon.svg", nil); icon.status != http.StatusOK ||
		icon.header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(icon.body, "<svg") {
		t.Errorf("favicon = %d %q", icon.status, icon.header.Get("Content-Type"))
	}
	if r := newBrowser(t).do(http.MethodGet, ch.pageURL+"/nothing-here", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown path = %d, want 404", r.status)
	}
}

// TestPeerAuthOffIsHonest: with workload identity off, the page says so
// and stops claiming that C and B check their caller; with it on, it
// claims the checks and shows no banner.
func TestPeerAuthOffIsHonest(t *testing.T) {
	for _, off := range []bool{false, true} {
		p, err := page.New(page.Config{
			AURL: "https://127.0.0.1:8080", BURL: "https://127.0.0.1:8082", IssuerURL: "http://127.0.0.1:8081/",
			ClientID: uiClient, RedirectURL: "http://127.0.0.1:8090/callback", Audience: audience, PeerAuthOff: off,
		})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		body := rec.Body.String()
		banner := strings.Contains(body, `id="peer-auth-off"`)
		claims := strings.Contains(body, "C and B also check which workload calls them")
		if banner != off || claims == off {
			t.Errorf("peer auth off = %v: banner %v, claims the caller checks %v", off, banner, claims)
		}
		if off && !strings.Contains(body, "! not checked: workload identity is off") {
			t.Errorf("with peer auth off, the boxes of C and B do not say their caller is not checked")
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	valid := page.Config{
		AURL: "https://127.0.0.1:8080", BURL: "https://127.0.0.1:8082", IssuerURL: "http://127.0.0.1:8081/",
		ClientID: uiClient, RedirectURL: "http://127.0.0.1:8090/callback", Audience: audience,
	}
	tests := []struct {
		name   string
		mutate func(*page.Config)
	}{
		{"no A URL", func(c *page.Config) { c.AURL = "" }},
		{"relative B URL", func(c *page.Config) { c.BURL = "/b" }},
		{"no issuer", func(c *page.Config) { c.IssuerURL = "" }},
		{"no client", func(c *page.Config) { c.ClientID = "" }},
		{"no audience", func(c *page.Config) { c.Audience = "" }},
		{"redirect elsewhere than /callback", func(c *page.Config) { c.RedirectURL = "http://127.0.0.1:8090/cb" }},
		{"negative session TTL", func(c *page.Config) { c.SessionTTL = -time.Minute }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.mutate(&cfg)
			if _, err := page.New(cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
	if _, err := page.New(valid); err != nil {
		t.Fatalf("New refused a valid config: %v", err)
	}
}
