package browsertest_test

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trustchain/trustchain/internal/testkit/browsertest"
)

// TestBrowserSubmitsFormsAndFollowsRedirects drives a page with a form that
// posts, is redirected, and lands on a page answered with 403: the three
// things the login tests rely on.
func TestBrowserSubmitsFormsAndFollowsRedirects(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>form</title><form method="post" action="/submit">
<input id="who" name="who"><button id="go" type="submit">Go</button></form>`)
	})
	mux.HandleFunc("POST /submit", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/result?who="+r.PostFormValue("who"), http.StatusSeeOther)
	})
	mux.HandleFunc("GET /result", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<!doctype html><title>result</title><p>Refused, %s.</p>`, html.EscapeString(r.URL.Query().Get("who")))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := browsertest.New(t)
	browsertest.Do(ctx, t, "open the form",
		chromedp.Navigate(srv.URL),
		chromedp.SendKeys(chromedp.ID("who"), "alice"),
	)
	if status := browsertest.Submit(ctx, t, "go"); status != http.StatusForbidden {
		t.Fatalf("status after submit = %d, want 403", status)
	}
	if text := browsertest.Text(ctx, t); !strings.Contains(text, "Refused, alice.") {
		t.Fatalf("page text = %q", text)
	}
	if loc := browsertest.Location(ctx, t); loc != srv.URL+"/result?who=alice" {
		t.Fatalf("location = %q", loc)
	}
}

// TestConsoleErrorsAndScreenshot: ConsoleErrors catches a script's
// console.error and a failed load, and Screenshot writes a PNG and reports
// a page wider than the viewport.
func TestConsoleErrorsAndScreenshot(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>errors</title><link rel="icon" href="/missing.ico">
<script>console.error("broken on purpose")</script><p>hello</p>`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := browsertest.New(t)
	errs := browsertest.ConsoleErrors(ctx, t)
	browsertest.Do(ctx, t, "open the page", chromedp.Navigate(srv.URL))
	deadline := time.Now().Add(10 * time.Second)
	for len(errs()) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	got := strings.Join(errs(), "\n")
	if !strings.Contains(got, "broken on purpose") || !strings.Contains(got, "404") {
		t.Fatalf("console errors = %q, want the console.error and the favicon's 404", got)
	}
	path := browsertest.Screenshot(ctx, t, 390, "errors")
	if png, err := os.ReadFile(path); err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s: %v", path, err)
	}
}
