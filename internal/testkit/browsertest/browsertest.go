// Package browsertest runs headless Debian Chromium for tests that must see
// a page as a person does: real forms, real redirects, real cookies. When
// such a test fails it keeps a screenshot and the page's HTML.
package browsertest

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trustchain/trustchain/internal/testkit/logbuf"
)

// ExecPath is where Debian's chromium package installs the browser.
const ExecPath = "/usr/bin/chromium"

// ArtifactsEnv names the directory where failing tests leave their
// screenshots; unset, each failure gets a fresh directory under the system
// temporary directory. Either way the path is logged.
const ArtifactsEnv = "BROWSERTEST_ARTIFACTS"

// ScreenshotsEnv names a directory where Screenshot also copies its
// pictures, for people to look at (e.g. /work/screens).
const ScreenshotsEnv = "BROWSERTEST_SCREENSHOTS"

const (
	// browserTimeout bounds one test's whole use of the browser, so a hung
	// page fails the test instead of the package's deadline.
	browserTimeout = 3 * time.Minute
	// stepTimeout bounds one step; chromedp waits for a missing element
	// until its context ends.
	stepTimeout = 30 * time.Second
)

// New starts a fresh headless Chromium with its own profile and returns the
// context of its first tab, for chromedp actions. The browser stops when the
// test ends; if the test failed, a screenshot and the HTML of the page it
// was on are kept first. The test is skipped, saying why, only when
// Chromium is not installed.
func New(tb testing.TB) context.Context {
	tb.Helper()
	if _, err := os.Stat(ExecPath); err != nil {
		tb.Skipf("browser test skipped: no Chromium at %s (apt-get install -y chromium): %v", ExecPath, err)
	}
	// The profile directory is removed after the browser has exited:
	// cleanups run last-registered first.
	profile := tb.TempDir()
	output := &logbuf.Buffer{}
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(ExecPath),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox, // tests run as root, where the sandbox cannot start
		chromedp.DisableGPU,
		// On a closed network Chromium otherwise waits on Google's hosts.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(1280, 1024),
		chromedp.CombinedOutput(output),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	// chromedp logs protocol noise through these; a test's log is no place
	// for it, and t.Logf after the test ends would panic.
	quiet := func(string, ...any) {}
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(quiet), chromedp.WithErrorf(quiet))
	tb.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit
		cancelTimeout()
	})
	if err := chromedp.Do(tabCtx); err != nil {
		tb.Fatalf("start Chromium: %v\n%s", err, tail(output.String()))
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			keepArtifacts(tabCtx, tb)
			tb.Logf("Chromium output (tail):\n%s", tail(output.String()))
		}
	})
	return tabCtx
}

// Do runs the actions in order, failing the test with step and the error
// if one fails. Each helper here gives its step 30s.
func Do(ctx context.Context, tb testing.TB, step string, actions ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.Fatalf("%s: %v", step, err)
	}
}

// Submit clicks the element with this id (a submit button) and waits for
// the page it leads to, after any redirects; it returns that page's HTTP
// status.
func Submit(ctx context.Context, tb testing.TB, id string) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID(id)))
	if err != nil {
		tb.Fatalf("click #%s: %v", id, err)
	}
	return int(resp.Status)
}

// Text returns the text of the page as a person reads it (the body's
// innerText).
func Text(ctx context.Context, tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		tb.Fatalf("read the page's text: %v", err)
	}
	return text
}

// SeeText fails the test unless the page shows every one of wants; step
// names the moment in the failure.
func SeeText(ctx context.Context, tb testing.TB, step string, wants ...string) {
	tb.Helper()
	text := Text(ctx, tb)
	for _, want := range wants {
		if !strings.Contains(text, want) {
			tb.Fatalf("%s: the page does not show %q; it shows:\n%s", step, want, text)
		}
	}
}

// LogIn is a person logging in on the demo's page: press Log in (id
// login-button), see wantOnForm on the issuer's form, fill in name and
// password, submit (id login), and land back on the page.
func LogIn(ctx context.Context, tb testing.TB, name, password string, wantOnForm ...string) {
	tb.Helper()
	if status := Submit(ctx, tb, "login-button"); status != http.StatusOK {
		tb.Fatalf("the issuer's login form answered %d", status)
	}
	SeeText(ctx, tb, "the issuer's form", wantOnForm...)
	Do(ctx, tb, "fill the login form",
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("password"), password),
	)
	if status := Submit(ctx, tb, "login"); status != http.StatusOK {
		tb.Fatalf("back from the login, the page answered %d", status)
	}
}

// Location returns the address of the page the tab is on.
func Location(ctx context.Context, tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		tb.Fatalf("read the page's address: %v", err)
	}
	return loc
}

// ConsoleErrors starts collecting what the tab reports as an error from
// now on: console.error calls, uncaught exceptions, and browser log errors
// such as a failed load (a missing favicon) or a Content-Security-Policy
// violation. The returned func lists them so far.
func ConsoleErrors(ctx context.Context, tb testing.TB) func() []string {
	tb.Helper()
	var mu sync.Mutex
	var errs []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				errs = append(errs, m.String()+" ("+m.URL+")")
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(errs)
	}
}

// Screenshot shows the page at this viewport width (as a phone or a
// desktop would), takes a picture of the whole page, and returns the PNG's
// path under the test's temporary directory. With ScreenshotsEnv set, the
// PNG is copied there too, as name.png. It also fails the test if the page
// is wider than the viewport: nobody should have to scroll sideways.
func Screenshot(ctx context.Context, tb testing.TB, width int64, name string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 900)); err != nil {
		tb.Fatalf("set the viewport to %dpx: %v", width, err)
	}
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
	if err != nil {
		tb.Fatalf("measure the page: %v", err)
	}
	if overflow > 0 {
		tb.Errorf("at %dpx the page is %dpx wider than the viewport", width, overflow)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.Fatalf("screenshot at %dpx: %v", width, err)
	}
	path := filepath.Join(tb.TempDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.Fatal(err)
	}
	if dir := os.Getenv(ScreenshotsEnv); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		path = filepath.Join(dir, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			tb.Fatal(err)
		}
		tb.Logf("screenshot at %dpx: %s", width, path)
	}
	return path
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// keepArtifacts writes a screenshot and the HTML of the current page where
// they outlive the test, and logs where.
func keepArtifacts(ctx context.Context, tb testing.TB) {
	dir := os.Getenv(ArtifactsEnv)
	var err error
	if dir == "" {
		dir, err = os.MkdirTemp("", "browsertest-")
	} else {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		tb.Logf("keep browser artifacts: %v", err)
		return
	}
	// The test's own deadline may have passed; the browser is still up.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	base := filepath.Join(dir, unsafeName.ReplaceAllString(tb.Name(), "_"))
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
		tb.Logf("screenshot: %v", err)
	} else if err := os.WriteFile(base+".png", png, 0o644); err != nil {
		tb.Logf("screenshot: %v", err)
	} else {
		tb.Logf("screenshot of the failing page: %s", base+".png")
	}
	if html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); err == nil {
		if err := os.WriteFile(base+".html", []byte(html), 0o644); err == nil {
			tb.Logf("HTML of the failing page: %s", base+".html")
		}
	}
}

// tail is the last few KiB of Chromium's output, which is where a crash
// explains itself.
func tail(out string) string {
	const keep = 4 << 10
	if len(out) > keep {
		return "…" + out[len(out)-keep:]
	}
	if out == "" {
		return "(none)"
	}
	return out
}
