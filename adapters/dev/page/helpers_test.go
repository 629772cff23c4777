package page_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
	"github.com/trustchain/trustchain/adapters/dev/page"
	"github.com/trustchain/trustchain/internal/testkit/testclock"
)

const (
	audience      = "https://api.trustchain.test"
	uiClient      = "trustchain-demo-ui"
	readScope     = "read:products"
	alicePassword = "alice-password"
	// bCaller is the only caller the stand-in B would accept.
	bCaller     = "spiffe://cluster.local/ns/default/sa/service-c"
	bobPassword = "bob-password"
)

// chain is the page wired to real parts on loopback: the demo issuer, a
// stand-in A that verifies tokens with go-oidc, and a stand-in B that
// demands a client certificate.
type chain struct {
	issuer  *issuer.Issuer
	pageURL string
	page    *page.Page
	a       *standInA
	clock   *testclock.Offset
}

func newChain(tb testing.TB) *chain {
	tb.Helper()
	ch := &chain{clock: &testclock.Offset{}}

	pageSrv := httptest.NewUnstartedServer(nil)
	ch.pageURL = "http://" + pageSrv.Listener.Addr().String()

	issuerSrv := httptest.NewUnstartedServer(nil)
	iss, err := issuer.New(issuer.Config{
		URL:          "http://" + issuerSrv.Listener.Addr().String(),
		Audience:     audience,
		ClientID:     "machine",
		ClientSecret: "machine-secret",
		Users: []issuer.User{
			{Name: "alice", Password: alicePassword, Role: issuer.Role{Name: "reader", Permissions: []string{readScope}}},
			{Name: "bob", Password: bobPassword, Role: issuer.Role{Name: "visitor"}},
		},
		PublicClients: []issuer.PublicClient{{ID: uiClient, RedirectURIs: []string{ch.pageURL + "/callback"}}},
	})
	if err != nil {
		tb.Fatalf("issuer.New: %v", err)
	}
	ch.issuer = iss
	issuerSrv.Config.Handler = iss
	issuerSrv.Start()
	tb.Cleanup(issuerSrv.Close)

	ch.a = newStandInA(tb, iss)

	b := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `[]`)
	}))
	// Like B under native mTLS: no client certificate, no connection.
	b.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: x509.NewCertPool()}
	b.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	b.StartTLS()
	tb.Cleanup(b.Close)

	ch.page, err = page.New(page.Config{
		AURL:        ch.a.srv.URL,
		BURL:        b.URL,
		IssuerURL:   iss.Issuer(),
		ClientID:    uiClient,
		RedirectURL: ch.pageURL + "/callback",
		Audience:    audience,
		Scopes:      []string{"openid", "profile", readScope},
		LoginHint:   "Log in as alice (may read products) or bob (may not).",
		Shortcuts:   []string{"bob"},
		BCaller:     bCaller,
		BClient:     b.Client(), // trusts B's certificate, has none of its own
		Decisions:   ch.a,
		Expired:     expiredMinter{iss},
		Now:         ch.clock.Now,
	})
	if err != nil {
		tb.Fatalf("page.New: %v", err)
	}
	pageSrv.Config.Handler = ch.page
	pageSrv.Start()
	tb.Cleanup(pageSrv.Close)
	return ch
}

// expiredMinter is what the demo does for the expired-token button: the
// user's claims, minted with an exp in the past.
type expiredMinter struct{ iss *issuer.Issuer }

func (m expiredMinter) ExpiredToken(_ context.Context, sub string) (string, error) {
	claims, err := m.iss.UserClaims(sub, uiClient)
	if err != nil {
		return "", err
	}
	claims["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	claims["exp"] = time.Now().Add(-time.Hour).Unix()
	return m.iss.Mint(claims)
}

// standInA answers like the gateway: it verifies the bearer token with
// go-oidc against the issuer, wants read:products, answers the envelope,
// and remembers what it decided per X-Request-Id. It also remembers every
// token it saw, so tests can check that none reached the browser.
type standInA struct {
	srv      *httptest.Server
	verifier *oidc.IDTokenVerifier

	mu        sync.Mutex
	decisions map[string]page.HopDecision
	tokens    []string
}

var _ page.Decisions = (*standInA)(nil)

func newStandInA(tb testing.TB, iss *issuer.Issuer) *standInA {
	tb.Helper()
	provider, err := oidc.NewProvider(context.Background(), iss.Issuer())
	if err != nil {
		tb.Fatalf("discovery: %v", err)
	}
	a := &standInA{verifier: provider.Verifier(&oidc.Config{ClientID: audience}), decisions: map[string]page.HopDecision{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	tb.Cleanup(a.srv.Close)
	return a
}

func (a *standInA) serve(w http.ResponseWriter, r *http.Request) {
	status, check := a.check(r)
	a.mu.Lock()
	a.decisions[r.Header.Get("X-Request-Id")] = page.HopDecision{Role: "a", Status: status, Token: check}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch status {
	case http.StatusOK:
		fmt.Fprintf(w, `{"products":[{"id":1,"name":"Laptop","price":1000}],"serviceA_metadata":"request processed at %s"}`,
			time.Now().UTC().Format(time.RFC3339))
	case http.StatusForbidden:
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="read:products"`)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":"insufficient_scope","message":"the token lacks %s"}`, readScope)
	default:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":"invalid_token","message":"token %s"}`, check)
	}
}

func (a *standInA) check(r *http.Request) (int, string) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return http.StatusUnauthorized, "missing"
	}
	a.mu.Lock()
	a.tokens = append(a.tokens, raw)
	a.mu.Unlock()
	tok, err := a.verifier.Verify(r.Context(), raw)
	var expired *oidc.TokenExpiredError
	switch {
	case errors.As(err, &expired):
		return http.StatusUnauthorized, "expired"
	case err != nil:
		return http.StatusUnauthorized, "invalid"
	}
	var claims struct {
		Scope       string   `json:"scope"`
		Permissions []string `json:"permissions"`
	}
	if err := tok.Claims(&claims); err != nil {
		return http.StatusUnauthorized, "invalid"
	}
	if !slices.Contains(strings.Fields(claims.Scope), readScope) && !slices.Contains(claims.Permissions, readScope) {
		return http.StatusForbidden, "insufficient_scope"
	}
	return http.StatusOK, "ok"
}

func (a *standInA) Decisions(_ context.Context, requestID string) []page.HopDecision {
	a.mu.Lock()
	defer a.mu.Unlock()
	if d, ok := a.decisions[requestID]; ok {
		return []page.HopDecision{d}
	}
	return nil
}

func (a *standInA) seenTokens() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.tokens)
}

// assertNoToken fails if any token A saw appears in the page.
func (a *standInA) assertNoToken(tb testing.TB, page string) {
	tb.Helper()
	for _, tok := range a.seenTokens() {
		if strings.Contains(page, tok) {
			tb.Fatal("a raw token reached the browser")
		}
		// Even the signature alone would be a leak.
		if sig := tok[strings.LastIndex(tok, ".")+1:]; strings.Contains(page, sig) {
			tb.Fatal("a token's signature reached the browser")
		}
	}
}

// browser is an HTTP client with a cookie jar that shows redirects
// instead of following them.
type browser struct {
	tb     testing.TB
	client *http.Client
}

func newBrowser(tb testing.TB) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &browser{tb: tb, client: &http.Client{
		Jar:           jar,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, rawURL string, form url.Values, header ...string) response {
	b.tb.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		b.tb.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.tb.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.tb.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

// startLogin presses Log in and returns the authorize request the page
// sent the browser to.
func (b *browser) startLogin(pageURL string) *url.URL {
	b.tb.Helper()
	r := b.do(http.MethodPost, pageURL+"/login", url.Values{})
	if r.status != http.StatusSeeOther {
		b.tb.Fatalf("POST /login = %d, want 303; body %s", r.status, r.body)
	}
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		b.tb.Fatal(err)
	}
	return u
}

// logInAtIssuer posts the issuer's login form for the authorize request
// and returns the callback address the issuer sends the browser back to.
func (b *browser) logInAtIssuer(authorize *url.URL, name, password string) string {
	b.tb.Helper()
	form := authorize.Query()
	form.Set("name", name)
	form.Set("password", password)
	r := b.do(http.MethodPost, authorize.Scheme+"://"+authorize.Host+authorize.Path, form)
	if r.status != http.StatusFound {
		b.tb.Fatalf("POST /authorize = %d, want 302; body %s", r.status, r.body)
	}
	return r.header.Get("Location")
}

// logIn runs the whole login and checks that it lands on the page.
func (b *browser) logIn(pageURL, name, password string) {
	b.tb.Helper()
	r := b.do(http.MethodGet, b.logInAtIssuer(b.startLogin(pageURL), name, password), nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
		b.tb.Fatalf("callback = %d to %q, want 303 to /; body %s", r.status, r.header.Get("Location"), r.body)
	}
}

// press presses a call button and returns the page it leads to.
func (b *browser) press(pageURL, call string) response {
	b.tb.Helper()
	r := b.do(http.MethodPost, pageURL+"/call", url.Values{"call": {call}})
	if r.status != http.StatusSeeOther {
		b.tb.Fatalf("POST /call = %d, want 303; body %s", r.status, r.body)
	}
	return b.do(http.MethodGet, pageURL+"/", nil)
}

func (b *browser) cookie(pageURL string) *http.Cookie {
	u, _ := url.Parse(pageURL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "trustchain_demo_session" {
			return c
		}
	}
	return nil
}

func assertContains(tb testing.TB, page string, wants ...string) {
	tb.Helper()
	for _, want := range wants {
		if !strings.Contains(page, want) {
			tb.Fatalf("the page lacks %q:\n%s", want, page)
		}
	}
}

// assertBox fails unless the page draws the chain's box with this id with
// the verdict (its CSS class) and every one of wants in it.
func assertBox(tb testing.TB, page, id, verdict string, wants ...string) {
	tb.Helper()
	m := regexp.MustCompile(`<li class="box (\w+)" id="` + regexp.QuoteMeta(id) + `">(?s:(.*?))</li>`).FindStringSubmatch(page)
	if m == nil {
		tb.Fatalf("the page draws no box %s:\n%s", id, page)
	}
	if m[1] != verdict {
		tb.Fatalf("box %s is %s, want %s:\n%s", id, m[1], verdict, m[2])
	}
	for _, want := range wants {
		if !strings.Contains(html.UnescapeString(m[2]), want) {
			tb.Fatalf("box %s lacks %q:\n%s", id, want, m[2])
		}
	}
}

// wordThenParenthesis finds "word (word …)", where a word repeats itself
// in brackets, as "missing (missing)" once did.
var wordThenParenthesis = regexp.MustCompile(`(\w+) \((\w+)`)

// assertNoRepeats fails if the page's text says a word and at once again
// in brackets.
func assertNoRepeats(tb testing.TB, page string) {
	tb.Helper()
	for _, m := range wordThenParenthesis.FindAllStringSubmatch(html.UnescapeString(page), -1) {
		if m[1] == m[2] {
			tb.Fatalf("the page repeats itself: %q", m[0])
		}
	}
}
