package demo_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/app/demo"
	"github.com/trustchain/trustchain/internal/testkit/browsertest"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
)

// TestBrowserLogsInAndSeesTheChain is the demo as a person meets it, in
// headless Chromium, against the real chain (A, C and B over mTLS): log in
// at the issuer's form, and the page has already called A: the catalogue
// and every hop's verdict drawn as the chain. Then each refusal, and bob by
// the shortcut. It takes the screenshots at 390 and 1280 px (copied to
// $BROWSERTEST_SCREENSHOTS when set), finds no horizontal scrolling and no
// console error.
func TestBrowserLogsInAndSeesTheChain(t *testing.T) {
	d, out := startDemo(t, nil)
	if !strings.Contains(out.String(), d.UIURL()) {
		t.Fatalf("the demo does not print its page's URL:\n%s", out.String())
	}
	passwords := map[string]string{}
	for _, u := range d.Users() {
		if !strings.Contains(out.String(), u.Password) {
			t.Fatalf("the demo does not print %s's password", u.Name)
		}
		passwords[u.Name] = u.Password
	}
	ctx := browsertest.New(t)
	consoleErrors := browsertest.ConsoleErrors(ctx, t)

	browsertest.Do(ctx, t, "open the page", chromedp.Navigate(d.UIURL()))
	browsertest.SeeText(ctx, t, "before login", "Not logged in", "Log in as bob")
	if banner := countOf(ctx, t, "#peer-auth-off"); banner != 0 {
		t.Fatal("the page says workload identity is off, with --peer-auth mtls")
	}
	browsertest.Screenshot(ctx, t, 1280, "page-1280-start")
	browsertest.LogIn(ctx, t, "alice", passwords["alice"])
	// No button pressed: the page called A on the way back from the login.
	browsertest.SeeText(ctx, t, "after alice's login", "Logged in as auth0|alice", "read:products", "200 OK", "Laptop", "request processed at")
	for id, want := range map[string][]string{
		"hop-a": {"ok", "DPoP proof", "✓ valid, by the token's key", "✓ valid", "none: A is the edge", "200"},
		"hop-c": {"ok", "✓ valid", "✓ service-a", "200"},
		"hop-b": {"ok", "✓ valid", "✓ service-c", "200"},
		"store": {"ok", "✓ read the products"},
		"user":  {"ok", "your token + a DPoP proof by this session's key"},
	} {
		seeBox(ctx, t, "after alice's login", id, want...)
	}
	browsertest.Screenshot(ctx, t, 390, "page-390")
	browsertest.Screenshot(ctx, t, 1280, "page-1280")
	// The page holds the key; the token is bound to it. Replayed without
	// the key, A refuses it and the page shows A's challenge.
	browsertest.SeeText(ctx, t, "alice's claims", "cnf", "jkt")
	browsertest.Submit(ctx, t, "call-replay")
	browsertest.SeeText(ctx, t, "call-replay", "401 Unauthorized", `WWW-Authenticate: Bearer error="invalid_token", DPoP algs="ES256 PS256 RS256 EdDSA"`)
	browsertest.Screenshot(ctx, t, 1280, "page-1280-replay")

	for _, s := range []struct {
		button string
		boxes  map[string][]string
	}{
		// A thief with the token but not the key: A refuses it (RFC 9449 §7.2).
		{"call-replay", map[string][]string{"hop-a": {"bad", "✗ bound to a key, sent without a proof", "401"}, "hop-c": {"idle", "not reached"},
			"user": {"bad", "your token as Bearer, without the key"}}},
		{"call-none", map[string][]string{"hop-a": {"bad", "✗ no token", "401"}, "hop-c": {"idle", "not reached"}}},
		{"call-expired", map[string][]string{"hop-a": {"bad", "✗ expired", "401"}}},
		{"call-direct-b", map[string][]string{
			"hop-a": {"idle", "skipped"},
			"hop-b": {"bad", "refused in the TLS handshake: the page has no workload certificate", "B accepts only spiffe://cluster.local/ns/default/sa/service-c"},
		}},
	} {
		if status := browsertest.Submit(ctx, t, s.button); status != http.StatusOK {
			t.Fatalf("%s: page status %d", s.button, status)
		}
		for id, want := range s.boxes {
			seeBox(ctx, t, s.button, id, want...)
		}
	}
	browsertest.Screenshot(ctx, t, 390, "page-390-direct-b")

	// bob by the shortcut: the issuer's form has his name filled in.
	browsertest.Submit(ctx, t, "logout")
	browsertest.SeeText(ctx, t, "after logout", "Not logged in")
	browsertest.Submit(ctx, t, "login-bob")
	if name, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("name").value`)); err != nil || name != "bob" {
		t.Fatalf("the issuer's form after Log in as bob has name %q (%v), want bob", name, err)
	}
	browsertest.Do(ctx, t, "type bob's password", chromedp.SendKeys(chromedp.ID("password"), passwords["bob"]))
	browsertest.Submit(ctx, t, "login")
	browsertest.SeeText(ctx, t, "bob, on the way back", "Logged in as auth0|bob", "403 Forbidden", "insufficient_scope")
	seeBox(ctx, t, "bob", "hop-a", "bad", "✗ lacks the permission", "403")
	browsertest.Screenshot(ctx, t, 1280, "page-1280-bob")

	if errs := consoleErrors(); len(errs) > 0 {
		t.Fatalf("the browser reported errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestBrowserPeerAuthOff: with --peer-auth off the page says so, does not
// claim that C and B check the caller, and draws the unchecked callers in
// amber; calling B directly succeeds.
func TestBrowserPeerAuthOff(t *testing.T) {
	d, _ := startDemo(t, func(dc *demo.Config) { dc.PeerAuth = app.PeerAuthOff })
	ctx := browsertest.New(t)
	browsertest.Do(ctx, t, "open the page", chromedp.Navigate(d.UIURL()))
	browsertest.SeeText(ctx, t, "the banner", "Workload identity is off", "calling B directly succeeds")
	if text := browsertest.Text(ctx, t); strings.Contains(text, "C and B also check which workload calls them") {
		t.Fatalf("with --peer-auth off the page still claims the callers are checked:\n%s", text)
	}
	seeBox(ctx, t, "before a call", "hop-b", "idle", "! not checked: workload identity is off")
	browsertest.Submit(ctx, t, "call-direct-b")
	browsertest.SeeText(ctx, t, "B directly", "401 Unauthorized")
	browsertest.LogIn(ctx, t, "alice", passwordOf(d, "alice"))
	browsertest.Submit(ctx, t, "call-direct-b")
	browsertest.SeeText(ctx, t, "B directly with alice's token", "200 OK")
	seeBox(ctx, t, "B directly with alice's token", "hop-b", "warn", "✓ valid", "! not checked: workload identity is off", "200")
	browsertest.Submit(ctx, t, "call-token")
	seeBox(ctx, t, "through the chain", "hop-c", "warn", "! not checked: workload identity is off")
	browsertest.Screenshot(ctx, t, 390, "page-390-peer-auth-off")
}

func passwordOf(d *demo.Demo, name string) string {
	for _, u := range d.Users() {
		if u.Name == name {
			return u.Password
		}
	}
	return ""
}

// seeBox fails unless the chain's box with this id has the verdict (its
// first want, a class) and shows each of the other wants.
func seeBox(ctx context.Context, t *testing.T, step, id string, want ...string) {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => { const b = document.getElementById(`+strconv.Quote(id)+`); return b ? [b.className, b.textContent] : ["", ""]; })()`))
	if err != nil {
		t.Fatalf("%s: read box %s: %v", step, id, err)
	}
	if got[0] != "box "+want[0] {
		t.Fatalf("%s: box %s is %q, want %q; it shows: %s", step, id, got[0], "box "+want[0], got[1])
	}
	for _, w := range want[1:] {
		if !strings.Contains(got[1], w) {
			t.Fatalf("%s: box %s does not show %q; it shows: %s", step, id, w, got[1])
		}
	}
}

func countOf(ctx context.Context, t *testing.T, selector string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(selector)+`).length`))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// promptWriter catches the address `trustchain login` asks the user to open.
type promptWriter struct {
	logbuf.Buffer
	url chan string
}

var activateURL = regexp.MustCompile(`https?://\S+/activate\?user_code=\S+`)

func (p *promptWriter) Write(b []byte) (int, error) {
	n, err := p.Buffer.Write(b)
	if u := activateURL.FindString(p.String()); u != "" {
		select {
		case p.url <- u:
		default:
		}
	}
	return n, err
}

// TestLoginCommandAgainstTheDemo runs `trustchain login` against the demo's
// issuer while a person, in Chromium, opens the printed address and logs
// in; the token it prints is then accepted by A.
func TestLoginCommandAgainstTheDemo(t *testing.T) {
	d, _ := startDemo(t, nil)
	ctx := browsertest.New(t)
	var password string
	for _, u := range d.Users() {
		if u.Name == "alice" {
			password = u.Password
		}
	}
	prompt := &promptWriter{url: make(chan string, 1)}
	var out strings.Builder
	loginErr := make(chan error, 1)
	loginCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		lc := app.LoginDefaults()
		lc.Issuer, lc.ClientID, lc.Audience, lc.Output = d.IssuerURL()+"/", "trustchain-cli", "https://trustchain.example/api", "env"
		loginErr <- app.Login(loginCtx, lc, &out, prompt)
	}()
	var where string
	select {
	case where = <-prompt.url:
	case err := <-loginErr:
		t.Fatalf("login ended before asking the user: %v\n%s", err, prompt.String())
	}
	browsertest.Do(ctx, t, "open the printed address", chromedp.Navigate(where))
	browsertest.Do(ctx, t, "log in as alice",
		chromedp.SendKeys(chromedp.ID("name"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), password),
	)
	browsertest.Submit(ctx, t, "approve")
	if err := <-loginErr; err != nil {
		t.Fatalf("login: %v\nprompt:\n%s", err, prompt.String())
	}
	token, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "export TOKEN=")
	if !ok {
		t.Fatalf("--output env printed %q", out.String())
	}
	token = strings.Trim(token, "'")
	status, body := get(t, "http://"+d.APIAddr(roleA)+"/products", token)
	if status != 200 || !seedPrefix.MatchString(body) {
		t.Fatalf("A answered the logged-in user's token with %d: %s", status, body)
	}
}
