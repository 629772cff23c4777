package demo_test

import (
	"context"
	"encoding/json"
	"io"
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
	ctx, cancel := context.WithCancel(context.Background())
	d, err := demo.New(ctx, dc, app.Deps{Stdout: io.Discard, Stderr: io.Discard})
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
