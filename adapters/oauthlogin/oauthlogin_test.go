package oauthlogin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
	"github.com/trustchain/trustchain/adapters/oauthlogin"
	"github.com/trustchain/trustchain/internal/testkit/testclock"
)

const (
	audience      = "https://api.trustchain.test"
	cliClient     = "trustchain-cli"
	alicePassword = "alice-password"
)

// newIssuer runs the demo issuer on loopback with alice, who may read
// products, and the CLI's public client, polled every second; opts adjust
// the config.
func newIssuer(tb testing.TB, opts ...func(*issuer.Config)) (*issuer.Issuer, *testclock.Offset) {
	tb.Helper()
	clock := &testclock.Offset{}
	srv := httptest.NewUnstartedServer(nil)
	cfg := issuer.Config{
		URL:          "http://" + srv.Listener.Addr().String(),
		Audience:     audience,
		ClientID:     "machine",
		ClientSecret: "machine-secret",
		Users: []issuer.User{
			{Name: "alice", Password: alicePassword, Role: issuer.Role{Name: "reader", Permissions: []string{"read:products"}}},
		},
		PublicClients:  []issuer.PublicClient{{ID: cliClient}},
		DeviceInterval: time.Second,
		Now:            clock.Now,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	iss, err := issuer.New(cfg)
	if err != nil {
		tb.Fatalf("issuer.New: %v", err)
	}
	srv.Config.Handler = iss
	srv.Start()
	tb.Cleanup(srv.Close)
	return iss, clock
}

func config(iss *issuer.Issuer, prompt *promptReader) oauthlogin.Config {
	return oauthlogin.Config{
		Issuer:   iss.Issuer(),
		ClientID: cliClient,
		Audience: audience,
		Scopes:   []string{"openid", "profile", "read:products"},
		Prompt:   prompt,
	}
}

// promptReader is the terminal: it keeps what Login printed and hands the
// address it showed to the test playing the user.
type promptReader struct {
	mu   sync.Mutex
	text bytes.Buffer
	urls chan string
}

var activateURL = regexp.MustCompile(`https?://\S+/activate\?user_code=\S+`)

func newPrompt() *promptReader { return &promptReader{urls: make(chan string, 1)} }

func (p *promptReader) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.text.Write(b)
	if u := activateURL.FindString(p.text.String()); u != "" {
		select {
		case p.urls <- u:
		default:
		}
	}
	return len(b), nil
}

func (p *promptReader) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.text.String()
}

// playUser waits for the prompt, opens the address and submits the form
// with the given action, as a person in a browser would. It reports its
// error on the returned channel, since it runs beside Login.
func playUser(ctx context.Context, prompt *promptReader, action, name, password string) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			var where string
			select {
			case where = <-prompt.urls:
			case <-ctx.Done():
				return ctx.Err()
			}
			u, err := url.Parse(where)
			if err != nil {
				return err
			}
			resp, err := http.Get(where)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %d", u.Path, resp.StatusCode)
			}
			form := url.Values{"user_code": {u.Query().Get("user_code")}, "action": {action}, "name": {name}, "password": {password}}
			resp, err = http.PostForm(u.Scheme+"://"+u.Host+u.Path, form)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("POST %s: %d", u.Path, resp.StatusCode)
			}
			return nil
		}()
	}()
	return done
}

func TestLoginEndToEnd(t *testing.T) {
	iss, _ := newIssuer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	prompt := newPrompt()
	user := playUser(ctx, prompt, "approve", "alice", alicePassword)

	token, err := oauthlogin.Login(ctx, config(iss, prompt))
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if err := <-user; err != nil {
		t.Fatalf("user: %v", err)
	}

	provider, err := oidc.NewProvider(ctx, iss.Issuer())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	verified, err := provider.Verifier(&oidc.Config{ClientID: audience}).Verify(ctx, token)
	if err != nil {
		t.Fatalf("verify the token: %v", err)
	}
	var claims struct {
		Scope       string   `json:"scope"`
		Permissions []string `json:"permissions"`
		Azp         string   `json:"azp"`
	}
	if err := verified.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if verified.Subject != "auth0|alice" || claims.Azp != cliClient || !slices.Contains(strings.Fields(claims.Scope), "read:products") {
		t.Errorf("token sub %q azp %q scope %q", verified.Subject, claims.Azp, claims.Scope)
	}
	if !slices.Contains(verified.Audience, audience) {
		t.Errorf("token aud %q lacks %q", verified.Audience, audience)
	}
	code := regexp.MustCompile(`Your code: ([A-Z]{4}-[A-Z]{4})`).FindStringSubmatch(prompt.String())
	if code == nil || !strings.Contains(prompt.String(), "user_code="+code[1]) {
		t.Errorf("the prompt does not show the address and the code:\n%s", prompt)
	}
	if strings.Contains(prompt.String(), token) {
		t.Error("the prompt shows the token")
	}
}

func TestLoginEnds(t *testing.T) {
	tests := []struct {
		name string
		// act plays the user (or the world) once the prompt is shown.
		act     func(ctx context.Context, prompt *promptReader, clock *testclock.Offset, cancel context.CancelFunc) <-chan error
		wantErr error
	}{
		{"user denies", func(ctx context.Context, p *promptReader, _ *testclock.Offset, _ context.CancelFunc) <-chan error {
			return playUser(ctx, p, "deny", "", "")
		}, oauthlogin.ErrAccessDenied},
		{"code expires", func(ctx context.Context, p *promptReader, clock *testclock.Offset, _ context.CancelFunc) <-chan error {
			return afterPrompt(ctx, p, func() { clock.Advance(16 * time.Minute) })
		}, oauthlogin.ErrExpired},
		{"caller gives up", func(ctx context.Context, p *promptReader, _ *testclock.Offset, cancel context.CancelFunc) <-chan error {
			return afterPrompt(ctx, p, cancel)
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, clock := newIssuer(t)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			prompt := newPrompt()
			acted := tt.act(ctx, prompt, clock, cancel)
			start := time.Now()
			token, err := oauthlogin.Login(ctx, config(iss, prompt))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Login = %v, want %v", err, tt.wantErr)
			}
			if token != "" {
				t.Fatal("Login returned a token with its error")
			}
			if err := <-acted; err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("acting: %v", err)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Fatalf("Login took %v to stop", took)
			}
		})
	}
}

// afterPrompt runs f once the prompt has been shown.
func afterPrompt(ctx context.Context, prompt *promptReader, f func()) <-chan error {
	done := make(chan error, 1)
	go func() {
		select {
		case <-prompt.urls:
			f()
			done <- nil
		case <-ctx.Done():
			done <- ctx.Err()
		}
	}()
	return done
}

func TestLoginRefusedByIssuer(t *testing.T) {
	iss, _ := newIssuer(t)
	tests := []struct {
		name     string
		mutate   func(*oauthlogin.Config)
		wantCode string
	}{
		{"unknown client", func(c *oauthlogin.Config) { c.ClientID = "nobody" }, "invalid_client"},
		{"other API", func(c *oauthlogin.Config) { c.Audience = "https://other.test" }, "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(iss, newPrompt())
			tt.mutate(&cfg)
			_, err := oauthlogin.Login(t.Context(), cfg)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != tt.wantCode {
				t.Fatalf("Login = %v, want the issuer's %q", err, tt.wantCode)
			}
			if errors.Is(err, oauthlogin.ErrAccessDenied) {
				t.Fatal("a refused device-code request was reported as a user's denial")
			}
		})
	}
}

func TestLoginNeedsTheDeviceGrant(t *testing.T) {
	// An issuer whose discovery names no device endpoint: not every
	// OpenID provider offers the grant.
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":%q,"token_endpoint":%q,"jwks_uri":%q}`,
			srv.URL+"/", srv.URL+"/authorize", srv.URL+"/oauth/token", srv.URL+"/jwks")
	}))
	defer srv.Close()
	_, err := oauthlogin.Login(t.Context(), oauthlogin.Config{
		Issuer: srv.URL + "/", ClientID: cliClient, Audience: audience, Prompt: newPrompt(),
	})
	if !errors.Is(err, oauthlogin.ErrNoDeviceGrant) {
		t.Fatalf("Login = %v, want ErrNoDeviceGrant", err)
	}
}

func TestLoginRejectsBadConfig(t *testing.T) {
	valid := oauthlogin.Config{Issuer: "https://tenant.example/", ClientID: cliClient, Audience: audience, Prompt: newPrompt()}
	tests := []struct {
		name   string
		mutate func(*oauthlogin.Config)
	}{
		{"no issuer", func(c *oauthlogin.Config) { c.Issuer = "" }},
		{"relative issuer", func(c *oauthlogin.Config) { c.Issuer = "tenant.example" }},
		{"no client", func(c *oauthlogin.Config) { c.ClientID = "" }},
		{"no audience", func(c *oauthlogin.Config) { c.Audience = "" }},
		{"no prompt", func(c *oauthlogin.Config) { c.Prompt = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.mutate(&cfg)
			// A valid config would dial the issuer; these must fail first.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := oauthlogin.Login(ctx, cfg)
			if !errors.Is(err, oauthlogin.ErrConfig) {
				t.Fatalf("Login = %v, want a config error", err)
			}
		})
	}
}

func TestWriteToken(t *testing.T) {
	tests := []struct {
		output, token, want string
		wantErr             bool
	}{
		{oauthlogin.OutputToken, "aaa.bbb.ccc", "aaa.bbb.ccc\n", false},
		{oauthlogin.OutputEnv, "aaa.bbb.ccc", "export TOKEN='aaa.bbb.ccc'\n", false},
		{oauthlogin.OutputEnv, "it's", `export TOKEN='it'\''s'` + "\n", false},
		{"json", "aaa.bbb.ccc", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.output+"/"+tt.token, func(t *testing.T) {
			var out bytes.Buffer
			err := oauthlogin.WriteToken(&out, tt.output, tt.token)
			if (err != nil) != tt.wantErr || out.String() != tt.want {
				t.Fatalf("WriteToken = %q, %v; want %q, error %v", out.String(), err, tt.want, tt.wantErr)
			}
		})
	}
}
