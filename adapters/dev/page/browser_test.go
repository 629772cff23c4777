package page_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/trustchain/trustchain/internal/testkit/browsertest"
)

// TestBrowserShowsTheChain is the page as a person uses it, in headless
// Chromium: log in through the issuer's real form, call A, press each
// refusal button, log in as the user without read:products. It asserts on
// the text on screen.
func TestBrowserShowsTheChain(t *testing.T) {
	ch := newChain(t)
	ctx := browsertest.New(t)

	browsertest.Do(ctx, t, "open the page", chromedp.Navigate(ch.pageURL))
	browsertest.SeeText(ctx, t, "before login", "Not logged in")

	browsertest.LogIn(ctx, t, "alice", alicePassword, "Log in", "to continue to "+uiClient)
	browsertest.SeeText(ctx, t, "after alice's login", "Logged in as auth0|alice", "sub\nauth0|alice", "read:products",
		"200 OK", "Laptop", "✓ valid") // the page called A by itself

	steps := []struct {
		button string
		want   []string
	}{
		{"call-token", []string{"Call A with your token", "200 OK", "Laptop", "request processed at", "✓ valid"}},
		{"call-none", []string{"Call A without a token", "401 Unauthorized", "✗ no token"}},
		{"call-expired", []string{"Call A with an expired token", "401 Unauthorized", "✗ expired"}},
		{"call-direct-b", []string{"Call B directly, without a workload identity", "refused before any HTTP answer",
			"the page has no workload certificate", "B accepts only " + bCaller}},
	}
	for _, s := range steps {
		if status := browsertest.Submit(ctx, t, s.button); status != http.StatusOK {
			t.Fatalf("%s: page status %d", s.button, status)
		}
		browsertest.SeeText(ctx, t, s.button, s.want...)
	}

	// The session lives in an HttpOnly cookie: no script can read it, and
	// no token is anywhere in the document.
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil || cookies != "" {
		t.Fatalf("document.cookie = %q, %v; want the session cookie hidden from scripts", cookies, err)
	}
	ch.a.assertNoToken(t, pageHTML(ctx, t))

	browsertest.Submit(ctx, t, "logout")
	browsertest.SeeText(ctx, t, "after logout", "Not logged in")
	browsertest.LogIn(ctx, t, "bob", bobPassword, "Log in", "to continue to "+uiClient)
	browsertest.SeeText(ctx, t, "after bob's login", "Logged in as auth0|bob", "403 Forbidden", "insufficient_scope", "✗ lacks the permission")
	ch.a.assertNoToken(t, pageHTML(ctx, t))
}

func pageHTML(ctx context.Context, t *testing.T) string {
	t.Helper()
	doc, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil {
		t.Fatalf("read the page's HTML: %v", err)
	}
	return doc
}
