package demo_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/internal/testkit/browsertest"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
)

// TestBrowserLogsInAndSeesTheChain is the demo as a person meets it, in
// headless Chromium, against the real chain (A, C and B over mTLS): log in
// at the issuer's form, call A, see the catalogue and every hop's decision,
// then each refusal.
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

	browsertest.Do(ctx, t, "open the page", chromedp.Navigate(d.UIURL()))
	browsertest.SeeText(ctx, t, "before login", "Not logged in")
	browsertest.LogIn(ctx, t, "alice", passwords["alice"])
	browsertest.SeeText(ctx, t, "after alice's login", "Logged in as auth0|alice", "read:products", "cnf", "jkt")

	for _, s := range []struct {
		button string
		want   []string
	}{
		{"call-token", []string{"200 OK", "Laptop", "Mechanical Keyboard", "request processed at",
			"with your token and a DPoP proof", "A checked the DPoP proof: ok; A checked the token: ok", "C checked the token: ok", "B checked the token: ok", "spiffe://cluster.local/ns/default/sa/service-a", "spiffe://cluster.local/ns/default/sa/service-c"}},
		{"call-replay", []string{"401 Unauthorized", "A checked the token: bound_as_bearer", `error="invalid_token"`}},
		{"call-none", []string{"401 Unauthorized", "A checked the token: missing"}},
		{"call-expired", []string{"401 Unauthorized", "A checked the token: expired"}},
		{"call-direct-b", []string{"Refused before any HTTP answer"}},
	} {
		if status := browsertest.Submit(ctx, t, s.button); status != http.StatusOK {
			t.Fatalf("%s: page status %d", s.button, status)
		}
		browsertest.SeeText(ctx, t, s.button, s.want...)
	}

	browsertest.Submit(ctx, t, "logout")
	browsertest.SeeText(ctx, t, "after logout", "Not logged in")
	browsertest.LogIn(ctx, t, "bob", passwords["bob"])
	browsertest.Submit(ctx, t, "call-token")
	browsertest.SeeText(ctx, t, "bob calls A", "403 Forbidden", "insufficient_scope")
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
