package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
	"github.com/trustchain/trustchain/adapters/dev/spiffeca"
	"github.com/trustchain/trustchain/adapters/memory"
	"github.com/trustchain/trustchain/adapters/spiffetls"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/logbuf"
	"github.com/trustchain/trustchain/ports"
)

const (
	audience = "https://trustchain.test/api"
	scope    = "read:products"
)

// Short names for the roles.
const (
	roleA = domain.RoleA
	roleB = domain.RoleB
	roleC = domain.RoleC
)

// chainOptions vary one test chain.
type chainOptions struct {
	peerAuth  string              // mtls (default), off
	source    ports.ProductSource // B's store; default: the seed's Laptop
	mysqlDSN  string              // B on MySQL instead
	exporter  sdktrace.SpanExporter
	configure func(role domain.Role, cfg *app.Config)
	// spyB, when set, sees the headers of every request that reaches B
	// (through a reverse proxy in front of it; plain HTTP only).
	spyB func(http.Header)
	// logLevel is the chain's log level; nil means debug, so tests can
	// read every line.
	logLevel slog.Leveler
	// quiet sends the logs nowhere, as benchmarks want.
	quiet bool
	// workloadAPI, when set, gives each role with mtls this Workload API
	// address (--spiffe-socket) instead of an SVID from the chain's CA
	// handed over in memory; the agent there should use ca.
	workloadAPI func(ca *spiffeca.DevCA, role domain.Role) string
}

// chain is the three roles running on loopback against a local issuer,
// built by app.NewChain, the builder the demo uses.
type chain struct {
	t      testing.TB
	issuer *issuer.Issuer
	ca     *spiffeca.DevCA
	c      *app.Chain
	logs   map[domain.Role]*logbuf.Buffer
	stop   func()
}

func startChain(t testing.TB, o chainOptions) *chain {
	t.Helper()
	if o.peerAuth == "" {
		o.peerAuth = app.PeerAuthMTLS
	}
	if o.source == nil && o.mysqlDSN == "" {
		o.source = memory.New(domain.SampleCatalogue()[0])
	}
	c := &chain{t: t, logs: map[domain.Role]*logbuf.Buffer{}}
	for _, h := range domain.Chain() {
		c.logs[h.Role] = &logbuf.Buffer{}
	}

	ts := httptest.NewUnstartedServer(nil)
	iss, err := issuer.New(issuer.Config{
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

	cc := app.ChainConfig{
		Issuer: iss.Issuer(), Audience: audience, Scope: scope,
		PeerAuth: o.peerAuth, Store: o.source, MySQLDSN: o.mysqlDSN,
		Deps: func(role domain.Role) app.Deps {
			var out io.Writer = c.logs[role]
			if o.quiet {
				out = io.Discard
			}
			var level slog.Leveler = slog.LevelDebug
			if o.logLevel != nil {
				level = o.logLevel
			}
			return app.Deps{
				Logger:        slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level})).With("role", role),
				TraceExporter: o.exporter,
			}
		},
		Configure: func(role domain.Role, cfg *app.Config) {
			cfg.ShutdownTimeout = 10 * time.Second
			if o.workloadAPI != nil && cfg.PeerAuth == app.PeerAuthMTLS {
				cfg.SPIFFESocket = o.workloadAPI(c.ca, role)
			}
			if o.configure != nil {
				o.configure(role, cfg)
			}
		},
	}
	if o.peerAuth == app.PeerAuthMTLS {
		if c.ca, err = spiffeca.NewDevCA(spiffeid.RequireTrustDomainFromString("cluster.local"), time.Hour); err != nil {
			t.Fatal(err)
		}
		cc.Identity = func(id spiffeid.ID) (spiffetls.Source, error) { return c.ca.Source(id) }
		if o.workloadAPI != nil {
			cc.Identity = nil
		}
	}
	if o.spyB != nil {
		cc.Upstream = func(role domain.Role, target string) string {
			if role == roleB {
				return spyOn(t, target, o.spyB)
			}
			return target
		}
	}
	c.c, err = app.NewChain(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.c.Run(ctx) }()
	stopped := false
	c.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("chain stopped with %v", err)
		}
	}
	t.Cleanup(c.stop)
	if err := c.c.WaitReady(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
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

func (c *chain) svc(role domain.Role) *app.Service { return c.c.Service(role) }

func (c *chain) url(role domain.Role) string { return c.c.URL(role) }

func (c *chain) identity(role domain.Role) *spiffeca.MemorySource {
	c.t.Helper()
	h, _ := domain.HopOf(role)
	id, err := spiffetls.ID("cluster.local", "default", h.ServiceAccount)
	if err != nil {
		c.t.Fatal(err)
	}
	src, err := c.ca.Source(id)
	if err != nil {
		c.t.Fatal(err)
	}
	return src
}

// clientAs returns a client presenting role's SVID, expecting target's.
func (c *chain) clientAs(role, target domain.Role) *http.Client {
	if c.ca == nil {
		return &http.Client{Timeout: 10 * time.Second}
	}
	h, _ := domain.HopOf(target)
	id, _ := spiffetls.ID("cluster.local", "default", h.ServiceAccount)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: spiffetls.ClientTLSConfig(c.identity(role), id)}}
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

// get calls base+path with client, which may carry a workload certificate.
func get(t testing.TB, client *http.Client, url, token string, header http.Header) (int, http.Header, string) {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
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

// runService runs svc until the test ends. It returns the cancel that plays
// SIGTERM and a channel closed once Run has returned; an error from Run
// fails the test.
func runService(t testing.TB, svc *app.Service) (context.CancelFunc, <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := svc.Run(ctx); err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return cancel, done
}
