package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/app/demo"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
	"github.com/trustchain/trustchain/internal/testkit/mysqltest"
)

const roleA = domain.RoleA

var seedPrefix = regexp.MustCompile(`^\{"products":\[\{"id":1,"name":"Laptop","price":1000\}`)

// TestDemoOnMySQL runs `trustchain demo --mysql-dsn` as a person would:
// a token from the issuer's /oauth/token, then A.
func TestDemoOnMySQL(t *testing.T) {
	dsn := mysqltest.FreshSchema(t, mysqltest.StartEmbedded(t))
	d, out := startDemo(t, func(dc *demo.Config) { dc.MySQLDSN = dsn })
	status, body := get(t, "http://"+d.APIAddr(roleA)+"/products", demoToken(t, d))
	if status != 200 || !seedPrefix.MatchString(body) {
		t.Fatalf("A answered %d: %s", status, body)
	}
	if !strings.Contains(out.String(), d.ClientSecret()) || !strings.Contains(out.String(), "MySQL") {
		t.Fatalf("instructions do not match the demo:\n%s", out.String())
	}
}

// startDemo runs `trustchain demo` in-process on free ports and waits until
// it has printed its instructions. It stops when the test ends.
func startDemo(t *testing.T, edit func(*demo.Config)) (*demo.Demo, *logbuf.Buffer) {
	t.Helper()
	d, out, stop := runDemo(t, edit)
	t.Cleanup(stop)
	return d, out
}

// runDemo is startDemo for a test that stops the demo itself, with stop;
// stop waits for every role to shut down.
func runDemo(t *testing.T, edit func(*demo.Config)) (d *demo.Demo, out *logbuf.Buffer, stop func()) {
	t.Helper()
	dc := demo.Defaults()
	dc.Listen, dc.UIListen, dc.LogLevel = "127.0.0.1:0", "127.0.0.1:0", "error"
	if edit != nil {
		edit(&dc)
	}
	return runDemoWith(t, dc, app.Deps{Stdout: io.Discard, Stderr: io.Discard})
}

// runDemoWith is runDemo with the whole config and the process's streams
// given.
func runDemoWith(t *testing.T, dc demo.Config, deps app.Deps) (d *demo.Demo, out *logbuf.Buffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := demo.New(ctx, dc, deps)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	out = &logbuf.Buffer{}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, out) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("demo stopped with %v", err)
			}
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "Press Ctrl-C") {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("demo did not print its instructions:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d, out, stop
}

// demoToken gets a machine's token from the demo's issuer, as its
// instructions show: the client-credentials grant.
func demoToken(t *testing.T, d *demo.Demo) string {
	t.Helper()
	form := strings.NewReader(`{"grant_type":"client_credentials","client_id":"trustchain-demo","client_secret":"` + d.ClientSecret() + `","audience":"https://trustchain.example/api"}`)
	resp, err := http.Post(d.IssuerURL()+"/oauth/token", "application/json", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || tok.AccessToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("token endpoint: %d %+v %v", resp.StatusCode, tok, err)
	}
	return tok.AccessToken
}

func get(t testing.TB, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestDemoRestartKeepsState: with --state-dir, a second run has the first
// one's issuer URL, passwords and client secret, so the printed commands
// still work, and a token from the first run still verifies at A.
func TestDemoRestartKeepsState(t *testing.T) {
	dir := t.TempDir() + "/state"
	withState := func(dc *demo.Config) { dc.StateDir = dir }
	d1, out1, stop1 := runDemo(t, withState)
	token := demoToken(t, d1)
	issuer1, secret1, users1 := d1.IssuerURL(), d1.ClientSecret(), d1.Users()
	stop1()

	d2, out2 := startDemo(t, withState)
	if d2.IssuerURL() != issuer1 || d2.ClientSecret() != secret1 {
		t.Fatalf("issuer %s then %s, same secret %v", issuer1, d2.IssuerURL(), d2.ClientSecret() == secret1)
	}
	for i, u := range d2.Users() {
		if u.Password != users1[i].Password {
			t.Errorf("%s's password changed across the restart", u.Name)
		}
	}
	loginLine := regexp.MustCompile(`(?m)^  eval .* login .*$`)
	if l1, l2 := loginLine.FindString(out1.String()), loginLine.FindString(out2.String()); l1 == "" || l1 != l2 {
		t.Errorf("the printed login line changed:\n%s\n%s", l1, l2)
	} else if !strings.Contains(l1, `"$(go run . login `) {
		t.Errorf("a test binary lives in the build cache, as `go run`'s does, yet the login line is:\n%s", l1)
	}
	if status, body := get(t, "http://"+d2.APIAddr(roleA)+"/products", token); status != 200 || !seedPrefix.MatchString(body) {
		t.Fatalf("A after the restart answered the old token with %d: %s", status, body)
	}
}

// TestDemoMovesATakenDefault: `trustchain demo` with no flag on a machine
// where 8080 (and perhaps 8090) is taken comes up on the next free ports
// and says so; a port chosen with a flag is never moved.
func TestDemoMovesATakenDefault(t *testing.T) {
	def := demo.Defaults()
	if ln, err := net.Listen("tcp", def.Listen); err == nil { // else taken already
		t.Cleanup(func() { ln.Close() })
	}
	dc := def
	dc.LogLevel = "error"
	d, out, stop := runDemoWith(t, dc, app.Deps{Stdout: io.Discard, Stderr: io.Discard})
	t.Cleanup(stop)
	if d.APIAddr(roleA) == def.Listen {
		t.Fatalf("A listens on the taken %s", def.Listen)
	}
	if want := "note: " + def.Listen + " is in use, so --listen took " + d.APIAddr(roleA); !strings.Contains(out.String(), want) {
		t.Errorf("instructions do not say %q:\n%s", want, out.String())
	}
	if status, _ := get(t, "http://"+d.APIAddr(roleA)+"/products", demoToken(t, d)); status != 200 {
		t.Errorf("A on its moved port answered %d", status)
	}

	dc.From = map[string]string{"listen": "--listen"}
	_, err := demo.New(context.Background(), dc, app.Deps{Stdout: io.Discard, Stderr: io.Discard})
	var cfgErr *app.ConfigError
	if !errors.As(err, &cfgErr) || cfgErr.Problems[0].Flag != "listen" || !strings.Contains(err.Error(), "is in use: choose another address") {
		t.Fatalf("a taken --listen gave %v, want a problem naming --listen", err)
	}
}

// TestDemoLogsEveryRequest: at the demo's default level, each hop logs the
// request with its id, so an id the page shows can be found.
func TestDemoLogsEveryRequest(t *testing.T) {
	logs := &logbuf.Buffer{}
	dc := demo.Defaults()
	dc.Listen, dc.UIListen = "127.0.0.1:0", "127.0.0.1:0"
	d, _, stop := runDemoWith(t, dc, app.Deps{Stdout: io.Discard, Stderr: logs})
	t.Cleanup(stop)
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.APIAddr(roleA)+"/products", nil)
	req.Header.Set("Authorization", "Bearer "+demoToken(t, d))
	req.Header.Set("X-Request-Id", "find-me-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, role := range []string{"a", "c", "b"} {
		line := regexp.MustCompile(`(?m)^.*msg=request .*role=` + role + `\b.*$|^.*role=` + role + ` .*msg=request .*$`)
		found := false
		for _, l := range line.FindAllString(logs.String(), -1) {
			found = found || strings.Contains(l, "find-me-0123456789")
		}
		if !found {
			t.Errorf("no info line from %s with the request id in:\n%s", role, logs.String())
		}
	}
}
