package app_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
	"github.com/trustchain/trustchain/adapters/dpop"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
)

func TestLoginDPoPFlags(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.pem")
	if _, err := dpop.CreateKey(open); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		set  func(*app.LoginConfig)
		want string
	}{
		"--dpop without --key":         {func(lc *app.LoginConfig) { lc.DPoP = true }, "is required with --dpop"},
		"--key without --dpop":         {func(lc *app.LoginConfig) { lc.Key = filepath.Join(dir, "k.pem") }, "is used only with --dpop"},
		"a key others can read":        {func(lc *app.LoginConfig) { lc.DPoP, lc.Key = true, open }, "mode"},
		"a key in a missing directory": {func(lc *app.LoginConfig) { lc.DPoP, lc.Key = true, filepath.Join(dir, "no", "k.pem") }, "no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			lc := app.LoginDefaults()
			lc.Issuer, lc.ClientID, lc.Audience = "http://127.0.0.1:1/", "cli", audience
			c.set(&lc)
			err := app.Login(t.Context(), lc, &strings.Builder{}, &strings.Builder{})
			var ce *app.ConfigError
			if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Flag != "key" || !strings.Contains(ce.Problems[0].Message, c.want) {
				t.Fatalf("Login = %v, want one problem with --key saying %q", err, c.want)
			}
		})
	}
}

// `trustchain login --dpop --key FILE` against the demo issuer with DPoP
// on: the key file is made with mode 0600 and is the only thing written,
// and the printed token, verified by go-oidc, is bound to that key.
func TestLoginDPoPMakesTheKeyAndGetsABoundToken(t *testing.T) {
	const password = "alice-password"
	iss := dpopIssuer(t, password)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "dpop.pem")
	prompt := &logbuf.Buffer{}
	var out strings.Builder
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	go func() {
		lc := app.LoginDefaults()
		lc.Issuer, lc.ClientID, lc.Audience, lc.DPoP, lc.Key = iss.Issuer(), "cli", audience, true, keyFile
		done <- app.Login(ctx, lc, &out, prompt)
	}()
	approve(t, ctx, prompt, password, done)
	if err := <-done; err != nil {
		t.Fatalf("login: %v\n%s", err, prompt)
	}

	info, err := os.Stat(keyFile)
	if err != nil || info.Mode() != 0o600 {
		t.Fatalf("key file: mode %v, %v; want -rw-------", info.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("login left %d files, want the key alone", len(entries))
	}
	key, err := dpop.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	jkt, _ := dpop.Thumbprint(key.Public())
	provider, err := oidc.NewProvider(ctx, iss.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := provider.Verifier(&oidc.Config{ClientID: audience}).Verify(ctx, strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("go-oidc refused the printed token: %v", err)
	}
	var claims struct {
		Cnf struct{ JKT string } `json:"cnf"`
	}
	if err := tok.Claims(&claims); err != nil || claims.Cnf.JKT != jkt {
		t.Fatalf("cnf.jkt = %q (%v), want the key file's thumbprint %q", claims.Cnf.JKT, err, jkt)
	}
}

// dpopIssuer runs the demo issuer with DPoP on, alice and a CLI client.
func dpopIssuer(t *testing.T, password string) *issuer.Issuer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v, err := dpop.New(dpop.Config{})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := issuer.New(issuer.Config{
		URL: "http://" + ln.Addr().String(), Audience: audience, ClientID: "c", ClientSecret: "s",
		Users:          []issuer.User{{Name: "alice", Password: password, Role: issuer.Role{Name: "reader", Permissions: []string{"read:products"}}}},
		PublicClients:  []issuer.PublicClient{{ID: "cli"}},
		DeviceInterval: time.Second,
		DPoP:           issuer.DPoP{Check: v.TokenRequestKey, Algorithms: dpop.AlgorithmNames()},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: iss, ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return iss
}

var activateAddress = regexp.MustCompile(`https?://\S+/activate\?user_code=\S+`)

// approve plays alice: once the prompt shows the address, she approves the
// code there.
func approve(t *testing.T, ctx context.Context, prompt *logbuf.Buffer, password string, done <-chan error) {
	t.Helper()
	var where string
	for where == "" {
		select {
		case err := <-done:
			t.Fatalf("login ended before asking the user: %v\n%s", err, prompt)
		case <-ctx.Done():
			t.Fatalf("no prompt: %s", prompt)
		case <-time.After(20 * time.Millisecond):
			where = activateAddress.FindString(prompt.String())
		}
	}
	u, err := url.Parse(where)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(u.Scheme+"://"+u.Host+u.Path, url.Values{
		"user_code": {u.Query().Get("user_code")}, "action": {"approve"}, "name": {"alice"}, "password": {password},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approve: %d", resp.StatusCode)
	}
}
