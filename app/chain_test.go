package app_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/trustchain/trustchain/adapters/devca"
	"github.com/trustchain/trustchain/adapters/devissuer"
	"github.com/trustchain/trustchain/adapters/memory"
	"github.com/trustchain/trustchain/adapters/relay"
	"github.com/trustchain/trustchain/adapters/spiffetls"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/logbuf"
	"github.com/trustchain/trustchain/ports"
)

const (
	audience = "https://trustchain.test/api"
	scope    = "read:products"
)

// chainOptions vary one test chain.
type chainOptions struct {
	peerAuth   string              // mtls (default), off, xfcc
	source     ports.ProductSource // B's store; default: the seed's Laptop
	timeoutA   time.Duration
	timeoutC   time.Duration
	exporter   sdktrace.SpanExporter
	configureB func(*app.Config)
	// spyB, when set, sees the headers of every request that reaches B
	// (through a reverse proxy in front of it; plain HTTP only).
	spyB func(http.Header)
}

// chain is the three roles running on loopback against a local issuer,
// built with the same app.New the binary uses.
type chain struct {
	t      testing.TB
	issuer *devissuer.Issuer
	ca     *devca.DevCA
	svc    map[string]*app.Service
	logs   map[string]*logbuf.Buffer
	stop   map[string]func()
}

func startChain(t testing.TB, o chainOptions) *chain {
	t.Helper()
	if o.peerAuth == "" {
		o.peerAuth = app.PeerAuthMTLS
	}
	if o.source == nil {
		o.source = memory.New(domain.SampleCatalogue()[0])
	}
	c := &chain{t: t, svc: map[string]*app.Service{}, logs: map[string]*logbuf.Buffer{}, stop: map[string]func(){}}

	ts := httptest.NewUnstartedServer(nil)
	iss, err := devissuer.New(devissuer.Config{
		URL: "http://" + ts.Listener.Addr().String(), Audience: audience,
		ClientID: "test-client", ClientSecret: "test-secret", Scopes: []string{scope},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = iss
	ts.Start()
	t.Cleanup(ts.Close)
	c.issuer = iss

	if o.peerAuth == app.PeerAuthMTLS {
		if c.ca, err = devca.NewDevCA(spiffeid.RequireTrustDomainFromString("cluster.local"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	scheme := "http"
	if c.ca != nil {
		scheme = "https"
	}
	upstream := ""
	for _, role := range []string{app.RoleB, app.RoleC, app.RoleA} {
		cfg := app.Defaults()
		cfg.Role = role
		cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
		cfg.OIDCIssuer, cfg.OIDCAudience, cfg.RequiredScope = iss.Issuer(), audience, scope
		cfg.Upstream = upstream
		cfg.PeerAuth = o.peerAuth
		cfg.ShutdownTimeout = 2 * time.Second
		switch role {
		case app.RoleA:
			cfg.UpstreamTimeout = o.timeoutA
			if o.peerAuth == app.PeerAuthXFCC {
				cfg.PeerAuth = app.PeerAuthOff // only C sits behind a (simulated) sidecar
			}
		case app.RoleC:
			cfg.UpstreamTimeout = o.timeoutC
		case app.RoleB:
			if o.peerAuth == app.PeerAuthXFCC {
				cfg.PeerAuth = app.PeerAuthOff // C's calls carry no sidecar header here
			}
			if o.configureB != nil {
				o.configureB(&cfg)
			}
		}
		logs := &logbuf.Buffer{}
		opts := app.Options{
			Logger:        slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("role", role),
			TraceExporter: o.exporter,
		}
		if role == app.RoleB && cfg.MySQLDSN == "" {
			opts.Source = o.source
		}
		if c.ca != nil {
			opts.Identity = c.identity(role)
		}
		svc, err := app.New(context.Background(), cfg, opts)
		if err != nil {
			t.Fatalf("role %s: %v", role, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		var once sync.Once
		c.stop[role] = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("role %s stopped with %v", role, err)
				}
			})
		}
		t.Cleanup(c.stop[role])
		if err := svc.WaitReady(context.Background(), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		c.svc[role], c.logs[role] = svc, logs
		upstream = scheme + "://" + svc.APIAddr()
		if role == app.RoleB && o.spyB != nil {
			upstream = spyOn(t, upstream, o.spyB)
		}
	}
	return c
}

// spyOn puts a recording reverse proxy in front of target.
func spyOn(t testing.TB, target string, spy func(http.Header)) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		spy(r.Header.Clone())
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

func (c *chain) identity(role string) *devca.MemorySource {
	c.t.Helper()
	id, err := spiffetls.ID("cluster.local", "default", "service-"+role)
	if err != nil {
		c.t.Fatal(err)
	}
	src, err := c.ca.Source(id)
	if err != nil {
		c.t.Fatal(err)
	}
	return src
}

func (c *chain) token(edit func(map[string]any)) string {
	c.t.Helper()
	claims := c.issuer.DefaultClaims("auth0|user123")
	if edit != nil {
		edit(claims)
	}
	tok, err := c.issuer.Mint(claims)
	if err != nil {
		c.t.Fatal(err)
	}
	return tok
}

// get calls a role's /products with client, which may carry a workload
// certificate.
func get(t testing.TB, client *http.Client, url, token string, header http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/products", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func (c *chain) url(role string) string {
	if c.ca != nil && role != app.RoleA {
		return "https://" + c.svc[role].APIAddr()
	}
	return "http://" + c.svc[role].APIAddr()
}

// clientAs returns a client presenting role's SVID, expecting target's.
func (c *chain) clientAs(role, target string) *http.Client {
	if c.ca == nil {
		return &http.Client{Timeout: 10 * time.Second}
	}
	id, _ := spiffetls.ID("cluster.local", "default", "service-"+target)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: spiffetls.ClientTLSConfig(c.identity(role), id)}}
}

var seedPrefix = regexp.MustCompile(`^\{"products":\[\{"id":1,"name":"Laptop","price":1000\}`)

var seedResponse = regexp.MustCompile(`^\{"products":\[\{"id":1,"name":"Laptop","price":1000\}\],"serviceA_metadata":"request processed at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"\}\n$`)

func TestChainServesTheSeedResponse(t *testing.T) {
	for _, mode := range []string{app.PeerAuthMTLS, app.PeerAuthOff} {
		t.Run(mode, func(t *testing.T) {
			c := startChain(t, chainOptions{peerAuth: mode})
			before := time.Now().UTC().Truncate(time.Second)
			status, header, body := get(t, http.DefaultClient, c.url(app.RoleA), c.token(nil), nil)
			if status != 200 || header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, body %s", status, body)
			}
			m := seedResponse.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("body is not the seed's shape:\n%s", body)
			}
			at, err := time.Parse(time.RFC3339, m[1])
			if err != nil || at.Before(before) || at.After(time.Now().UTC().Add(time.Second)) {
				t.Fatalf("serviceA_metadata time %s is not the processing time (%v)", m[1], err)
			}
		})
	}
}

func TestBadTokenStopsAtA(t *testing.T) {
	c := startChain(t, chainOptions{})
	bad := map[string]string{
		"expired":      c.token(func(m map[string]any) { m["exp"] = time.Now().Add(-time.Hour).Unix() }),
		"wrong aud":    c.token(func(m map[string]any) { m["aud"] = "https://other.api" }),
		"wrong iss":    c.token(func(m map[string]any) { m["iss"] = "https://evil.example/" }),
		"not a token":  "abc.def.ghi",
		"tampered sig": c.token(nil)[:40] + "x" + c.token(nil)[41:],
	}
	for name, tok := range bad {
		t.Run(name, func(t *testing.T) {
			status, header, body := get(t, http.DefaultClient, c.url(app.RoleA), tok, nil)
			if status != 401 || header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
				t.Fatalf("%d %q %s", status, header.Get("WWW-Authenticate"), body)
			}
		})
	}
	if n := strings.Count(c.logs[app.RoleC].String(), `"msg":"request"`); n != 0 {
		t.Fatalf("C saw %d requests; a bad token must stop at A", n)
	}
	status, header, _ := get(t, http.DefaultClient, c.url(app.RoleA), "", nil)
	if status != 401 || header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("missing token: %d %q", status, header.Get("WWW-Authenticate"))
	}
}

func TestEveryHopChecksTheToken(t *testing.T) {
	c := startChain(t, chainOptions{})
	expired := c.token(func(m map[string]any) { m["exp"] = time.Now().Add(-time.Minute).Unix() })
	noScope := c.token(func(m map[string]any) { m["scope"] = "openid"; m["permissions"] = []string{} })
	// The right workload calling each hop directly, so only the token layer
	// can refuse.
	for callee, caller := range map[string]string{app.RoleC: app.RoleA, app.RoleB: app.RoleC} {
		client := c.clientAs(caller, callee)
		if status, h, _ := get(t, client, c.url(callee), expired, nil); status != 401 || h.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
			t.Errorf("%s with an expired token: %d %q", callee, status, h.Get("WWW-Authenticate"))
		}
		if status, h, _ := get(t, client, c.url(callee), noScope, nil); status != 403 || !strings.HasPrefix(h.Get("WWW-Authenticate"), `Bearer error="insufficient_scope"`) {
			t.Errorf("%s without the scope: %d %q", callee, status, h.Get("WWW-Authenticate"))
		}
		if status, _, body := get(t, client, c.url(callee), c.token(nil), nil); status != 200 || !strings.HasPrefix(body, `[{"id":1`) {
			t.Errorf("%s with a good token from the right caller: %d %s", callee, status, body)
		}
	}
}

// recordingSource remembers what reached B's store.
type recordingSource struct {
	ports.ProductSource
	mu     sync.Mutex
	tokens []string
	header []string
}

func (r *recordingSource) ListProducts(ctx context.Context) ([]domain.Product, error) {
	rel, _ := relay.FromContext(ctx)
	r.mu.Lock()
	r.tokens = append(r.tokens, rel.Token())
	r.mu.Unlock()
	return r.ProductSource.ListProducts(ctx)
}

func TestBSeesTheClientsToken(t *testing.T) {
	src := &recordingSource{ProductSource: memory.New(domain.SampleCatalogue()...)}
	c := startChain(t, chainOptions{source: src})
	tok := c.token(nil)
	if status, _, body := get(t, http.DefaultClient, c.url(app.RoleA), tok, nil); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	if len(src.tokens) != 1 || src.tokens[0] != tok {
		t.Fatalf("B received %d tokens; want exactly the client's", len(src.tokens))
	}
}

func TestUpstreamRejectionPassesBackUnchanged(t *testing.T) {
	// B requires a scope that A and C do not: B's 403 must reach the
	// client as B wrote it.
	c := startChain(t, chainOptions{configureB: func(cfg *app.Config) { cfg.RequiredScope = "admin:products" }})
	status, h, body := get(t, http.DefaultClient, c.url(app.RoleA), c.token(nil), nil)
	if status != 403 || h.Get("WWW-Authenticate") != `Bearer error="insufficient_scope", scope="admin:products"` {
		t.Fatalf("%d %q %s", status, h.Get("WWW-Authenticate"), body)
	}
	if !strings.Contains(body, `"error":"insufficient_scope"`) {
		t.Fatalf("body = %s", body)
	}
}

func TestBStoppedGives502AtA(t *testing.T) {
	c := startChain(t, chainOptions{timeoutA: 3 * time.Second, timeoutC: 2 * time.Second})
	c.stop[app.RoleB]()
	start := time.Now()
	status, _, body := get(t, http.DefaultClient, c.url(app.RoleA), c.token(nil), nil)
	if status != 502 {
		t.Fatalf("status %d, want 502: %s", status, body)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %s, beyond A's 3s budget", took)
	}
}

// blockingSource never answers until its caller gives up.
type blockingSource struct {
	entered   chan struct{}
	cancelled chan struct{}
	once      sync.Once
}

func newBlockingSource() *blockingSource {
	return &blockingSource{entered: make(chan struct{}, 16), cancelled: make(chan struct{})}
}

func (b *blockingSource) ListProducts(ctx context.Context) ([]domain.Product, error) {
	b.entered <- struct{}{}
	<-ctx.Done()
	b.once.Do(func() { close(b.cancelled) })
	return nil, ctx.Err()
}

func TestSlowBGives504AtA(t *testing.T) {
	tests := []struct {
		name               string
		timeoutA, timeoutC time.Duration
	}{
		{"C's budget runs out first", 2 * time.Second, 300 * time.Millisecond},
		{"A's budget covers a misconfigured C", 300 * time.Millisecond, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newBlockingSource()
			c := startChain(t, chainOptions{source: src, timeoutA: tt.timeoutA, timeoutC: tt.timeoutC})
			status, _, body := get(t, http.DefaultClient, c.url(app.RoleA), c.token(nil), nil)
			if status != 504 {
				t.Fatalf("status %d, want 504: %s", status, body)
			}
			select {
			case <-src.cancelled:
			case <-time.After(5 * time.Second):
				t.Fatal("B's store call was not cancelled after the timeout")
			}
		})
	}
}

func TestClientGoneCancelsTheChainDownToTheStore(t *testing.T) {
	src := newBlockingSource()
	c := startChain(t, chainOptions{source: src})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url(app.RoleA)+"/products", nil)
	req.Header.Set("Authorization", "Bearer "+c.token(nil))
	go func() {
		<-src.entered
		cancel()
	}()
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("client error = %v", err)
	}
	select {
	case <-src.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the store call at B outlived the client")
	}
}

func TestWorkloadIdentityMTLS(t *testing.T) {
	c := startChain(t, chainOptions{})
	tok := c.token(nil)
	tests := []struct {
		name, caller, callee string
		allowed              bool
	}{
		{"A may call C", app.RoleA, app.RoleC, true},
		{"C may call B", app.RoleC, app.RoleB, true},
		{"B may not call C", app.RoleB, app.RoleC, false},
		{"A may not call B", app.RoleA, app.RoleB, false},
		{"C may not call C", app.RoleC, app.RoleC, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, c.url(tt.callee)+"/products", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := c.clientAs(tt.caller, tt.callee).Do(req)
			if tt.allowed {
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("a valid token from the wrong workload got %d", resp.StatusCode)
			}
		})
	}
	t.Run("no client certificate", func(t *testing.T) {
		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		for _, role := range []string{app.RoleB, app.RoleC} {
			req, _ := http.NewRequest(http.MethodGet, c.url(role)+"/products", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if resp, err := insecure.Do(req); err == nil {
				resp.Body.Close()
				t.Fatalf("%s answered %d to a caller without a certificate", role, resp.StatusCode)
			}
		}
	})
	t.Run("plaintext", func(t *testing.T) {
		if resp, err := http.Get("http://" + c.svc[app.RoleC].APIAddr() + "/products"); err == nil {
			defer resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Fatal("C served plaintext HTTP")
			}
		}
	})
}

func TestWorkloadIdentityXFCC(t *testing.T) {
	c := startChain(t, chainOptions{peerAuth: app.PeerAuthXFCC})
	tok := c.token(nil)
	xfcc := func(by, uri string) http.Header {
		return http.Header{"X-Forwarded-Client-Cert": {`By=spiffe://cluster.local/ns/default/sa/` + by + `;Hash=abc;URI=spiffe://cluster.local/ns/default/sa/` + uri}}
	}
	tests := []struct {
		name       string
		header     http.Header
		token      string
		wantStatus int
	}{
		{"A's identity, good token", xfcc("service-c", "service-a"), tok, 200},
		{"A's identity, bad token", xfcc("service-c", "service-a"), "bad.token.x", 401},
		{"B's identity, good token", xfcc("service-c", "service-b"), tok, 403},
		{"no header", nil, tok, 403},
		{"element written for another workload", xfcc("service-b", "service-a"), tok, 403},
		{"spoofed first element", http.Header{"X-Forwarded-Client-Cert": {
			`By=spiffe://cluster.local/ns/default/sa/service-c;URI=spiffe://cluster.local/ns/default/sa/service-a,` +
				`By=spiffe://cluster.local/ns/default/sa/service-c;URI=spiffe://cluster.local/ns/default/sa/service-b`}}, tok, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := get(t, http.DefaultClient, c.url(app.RoleC), tt.token, tt.header)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tt.wantStatus, body)
			}
		})
	}
	if !strings.Contains(c.logs[app.RoleC].String(), `caller \"spiffe://cluster.local/ns/default/sa/service-b\"`) {
		t.Error("the refusal log does not name the presented identity")
	}
}

func TestNoTokenInAnyLog(t *testing.T) {
	c := startChain(t, chainOptions{})
	good := c.token(nil)
	bad := c.token(func(m map[string]any) { m["aud"] = "x" })
	get(t, http.DefaultClient, c.url(app.RoleA), good, nil)
	get(t, http.DefaultClient, c.url(app.RoleA), bad, nil)
	for role, logs := range c.logs {
		out := logs.String()
		for _, tok := range []string{good, bad} {
			sig := tok[strings.LastIndexByte(tok, '.')+1:]
			if strings.Contains(out, sig) {
				t.Errorf("role %s logged a token", role)
			}
		}
	}
	var rejected int
	for _, line := range strings.Split(c.logs[app.RoleA].String(), "\n") {
		if strings.Contains(line, `"status":401`) && strings.Contains(line, `"reason":"wrong_audience"`) {
			rejected++
		}
	}
	if rejected != 1 {
		t.Errorf("want one rejection line with its reason at A, got %d:\n%s", rejected, c.logs[app.RoleA])
	}
}

func TestGatewayRefusesAnUpstreamWithTheWrongIdentity(t *testing.T) {
	c := startChain(t, chainOptions{})
	// A second A whose upstream is really B: B presents service-b where A
	// expects service-c, so A must not send it the user's token.
	cfg := app.Defaults()
	cfg.Role, cfg.PeerAuth = app.RoleA, app.PeerAuthMTLS
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.OIDCIssuer, cfg.OIDCAudience = c.issuer.Issuer(), audience
	cfg.Upstream = c.url(app.RoleB)
	logs := &logbuf.Buffer{}
	svc, err := app.New(context.Background(), cfg, app.Options{Identity: c.identity(app.RoleA), Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := svc.WaitReady(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	status, _, body := get(t, http.DefaultClient, "http://"+svc.APIAddr(), c.token(nil), nil)
	if status != 502 {
		t.Fatalf("status %d, want 502: %s", status, body)
	}
	if !strings.Contains(logs.String(), "service-b") {
		t.Errorf("the refusal does not name the identity B presented:\n%s", logs)
	}
}
