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

// issuerDoc is a discovery document for an issuer at self naming the
// given device and token endpoints; no device endpoint when device is "".
func issuerDoc(self, device, token string) string {
	deviceField := ""
	if device != "" {
		deviceField = fmt.Sprintf(`,"device_authorization_endpoint":%q`, device)
	}
	return fmt.Sprintf(`{"issuer":%q,"authorization_endpoint":%q,"token_endpoint":%q,"jwks_uri":%q%s}`,
		self+"/", self+"/authorize", token, self+"/jwks", deviceField)
}

// fakeIssuer is an issuer shaped by the test: its discovery document is
// doc(its own URL), and each other path is answered by the handler given
// for it (404 when none is), as JSON.
func fakeIssuer(tb testing.TB, useTLS bool, doc func(self string) string, handlers map[string]http.HandlerFunc) *httptest.Server {
	tb.Helper()
	var srv *httptest.Server
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/.well-known/openid-configuration" {
			fmt.Fprint(w, doc(srv.URL))
			return
		}
		if handle, ok := handlers[r.URL.Path]; ok {
			handle(w, r)
			return
		}
		http.NotFound(w, r)
	})
	if useTLS {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	tb.Cleanup(srv.Close)
	return srv
}

// withDeviceAndToken is the document of an issuer offering the device
// grant at /device and its token endpoint at /token.
func withDeviceAndToken(self string) string { return issuerDoc(self, self+"/device", self+"/token") }

// reply answers with status and body.
func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
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
	if !strings.HasSuffix(prompt.String(), "\nlogged in as auth0|alice; scopes openid profile read:products\n") {
		t.Errorf("the prompt does not end with the summary:\n%s", prompt)
	}
}

// TestLoginWarnsOfAMissingScope: alice may not write; asking for it gets a
// token without it, and a warning.
func TestLoginWarnsOfAMissingScope(t *testing.T) {
	iss, _ := newIssuer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	prompt := newPrompt()
	user := playUser(ctx, prompt, "approve", "alice", alicePassword)
	cfg := config(iss, prompt)
	cfg.Scopes = append(cfg.Scopes, "write:products")
	if _, err := oauthlogin.Login(ctx, cfg); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if err := <-user; err != nil {
		t.Fatalf("user: %v", err)
	}
	if want := "logged in as auth0|alice; scopes openid profile read:products (warning: the token does not grant write:products, asked with --scope)\n"; !strings.HasSuffix(prompt.String(), want) {
		t.Errorf("the prompt does not end with %q:\n%s", want, prompt)
	}
}

// TestLoginEscapesTheIssuersText: an issuer that writes terminal escape
// sequences in its user code, its address and its error description
// gets them printed as text, in the prompt and in the error.
func TestLoginEscapesTheIssuersText(t *testing.T) {
	srv := fakeIssuer(t, false, withDeviceAndToken, map[string]http.HandlerFunc{
		"/device": reply(http.StatusOK, `{"device_code":"dc","user_code":"AB\u001b[2JCD","verification_uri":"https://evil.example/\u001b]0;pwned\u0007\u202e","expires_in":60,"interval":1}`),
		"/token":  reply(http.StatusBadRequest, `{"error":"access_denied","error_description":"denied\u001b[31m\u009b2J"}`),
	})
	prompt := newPrompt()
	_, err := oauthlogin.Login(t.Context(), oauthlogin.Config{
		Issuer: srv.URL + "/", ClientID: cliClient, Audience: audience, Prompt: prompt,
	})
	if !errors.Is(err, oauthlogin.ErrAccessDenied) {
		t.Fatalf("Login = %v, want ErrAccessDenied", err)
	}
	for what, text := range map[string]string{"prompt": prompt.String(), "error": err.Error()} {
		if strings.ContainsAny(text, "\x1b\x07\u009b\u202e") {
			t.Errorf("the %s carries the issuer's control characters: %q", what, text)
		}
	}
	if !strings.Contains(prompt.String(), `Your code: AB\x1b[2JCD`) || !strings.Contains(err.Error(), `denied\x1b[31m\u009b2J`) {
		t.Errorf("the issuer's text is not shown escaped:\n%s\n%s", prompt, err)
	}

	// go-oidc puts a failed discovery's body in its error as it came.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, "down\x1b]0;pwned\x07\x1b[2J")
	}))
	defer broken.Close()
	_, err = oauthlogin.Login(t.Context(), oauthlogin.Config{Issuer: broken.URL + "/", ClientID: cliClient, Audience: audience, Prompt: newPrompt()})
	if err == nil || strings.ContainsAny(err.Error(), "\x1b\x07") || !strings.Contains(err.Error(), `down\x1b]0;pwned\a\x1b[2J`) {
		t.Errorf("Login = %q, want the issuer's body escaped", err)
	}
}

// TestLoginRefusesATokenThatIsNoBearerToken: an access token with an
// escape sequence in it is refused, not printed.
func TestLoginRefusesATokenThatIsNoBearerToken(t *testing.T) {
	srv := fakeIssuer(t, false, withDeviceAndToken, map[string]http.HandlerFunc{
		"/device": reply(http.StatusOK, `{"device_code":"dc","user_code":"ABCD-EFGH","verification_uri":"http://127.0.0.1/activate","expires_in":60,"interval":1}`),
		"/token":  reply(http.StatusOK, `{"access_token":"eyJh.e30.c2ln\u001b]0;pwned\u0007","token_type":"Bearer","expires_in":60}`),
	})
	var out bytes.Buffer
	token, err := oauthlogin.Login(t.Context(), oauthlogin.Config{
		Issuer: srv.URL + "/", ClientID: cliClient, Audience: audience, Prompt: &out,
	})
	if err == nil || token != "" || !strings.Contains(err.Error(), "not an RFC 6750 b64token") {
		t.Fatalf("Login = %q, %v; want a refusal of the token", token, err)
	}
	if strings.ContainsAny(out.String()+err.Error(), "\x1b\x07") {
		t.Errorf("the issuer's control characters were printed: %q %q", out.String(), err)
	}
}

// TestLoginHintsAtTheTrailingSlash: the demo issuer, like Auth0 and
// Hydra, names itself with a trailing slash; without it discovery fails
// on iss, with a hint.
func TestLoginHintsAtTheTrailingSlash(t *testing.T) {
	iss, _ := newIssuer(t)
	cfg := config(iss, newPrompt())
	cfg.Issuer = strings.TrimSuffix(iss.Issuer(), "/")
	_, err := oauthlogin.Login(t.Context(), cfg)
	var mismatch *oidc.IssuerMismatchError
	if !errors.As(err, &mismatch) || !strings.Contains(err.Error(), fmt.Sprintf("hint: the issuer names itself %q", iss.Issuer())) {
		t.Fatalf("Login = %v, want an iss mismatch with a hint", err)
	}
	cfg.Issuer = iss.Issuer() + "other/"
	if _, err := oauthlogin.Login(t.Context(), cfg); err == nil || strings.Contains(err.Error(), "hint") {
		t.Fatalf("Login = %v, want an error without the slash hint", err)
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
	srv := fakeIssuer(t, false, func(self string) string { return issuerDoc(self, "", self+"/oauth/token") }, nil)
	_, err := oauthlogin.Login(t.Context(), oauthlogin.Config{
		Issuer: srv.URL + "/", ClientID: cliClient, Audience: audience, Prompt: newPrompt(),
	})
	if !errors.Is(err, oauthlogin.ErrNoDeviceGrant) {
		t.Fatalf("Login = %v, want ErrNoDeviceGrant", err)
	}
}

// TestLoginKeepsTheIssuersTransport: the device and token endpoints that
// discovery names must be https, or loopback http under a loopback http
// issuer; otherwise nothing is sent to them.
func TestLoginKeepsTheIssuersTransport(t *testing.T) {
	inClear := func(u string) string { return strings.Replace(u, "https://", "http://", 1) }
	tests := []struct {
		name   string
		useTLS bool
		doc    func(self string) string
	}{
		{"https issuer, http token endpoint", true,
			func(self string) string { return issuerDoc(self, self+"/device", inClear(self)+"/token") }},
		{"https issuer, http device endpoint", true,
			func(self string) string { return issuerDoc(self, inClear(self)+"/device", self+"/token") }},
		{"loopback issuer, token endpoint in clear off loopback", false,
			func(self string) string { return issuerDoc(self, self+"/device", "http://issuer.example/token") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached := func(w http.ResponseWriter, r *http.Request) { t.Errorf("%s reached", r.URL.Path) }
			srv := fakeIssuer(t, tt.useTLS, tt.doc, map[string]http.HandlerFunc{"/device": reached, "/token": reached})
			_, err := oauthlogin.Login(t.Context(), oauthlogin.Config{
				Issuer: srv.URL + "/", ClientID: cliClient, Audience: audience, Prompt: newPrompt(), HTTPClient: srv.Client(),
			})
			if err == nil || !strings.Contains(err.Error(), "must not travel in clear") {
				t.Fatalf("Login = %v, want a refusal of the clear-text endpoint", err)
			}
		})
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
		{"http off loopback", func(c *oauthlogin.Config) { c.Issuer = "http://tenant.example/" }},
		{"http on a name that resolves anywhere", func(c *oauthlogin.Config) { c.Issuer = "http://127.0.0.1.nip.io/" }},
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
