// Package demo wires `trustchain demo` and `trustchain certs`: the whole
// chain in one process behind a local Auth0 look-alike, its web page, and a
// development CA. It builds the chain with app.NewChain, as the tests do,
// and is the only importer of the adapters/dev packages. The production
// build (-tags nodemo) leaves it out.
package demo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/sync/errgroup"

	"github.com/trustchain/trustchain/adapters/dev/issuer"
	"github.com/trustchain/trustchain/adapters/dev/page"
	"github.com/trustchain/trustchain/adapters/dev/spiffeca"
	"github.com/trustchain/trustchain/adapters/dpop"
	"github.com/trustchain/trustchain/adapters/httpapi/server"
	"github.com/trustchain/trustchain/adapters/memory"
	"github.com/trustchain/trustchain/adapters/spiffetls"
	"github.com/trustchain/trustchain/adapters/telemetry"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/domain"
)

// Config configures `trustchain demo`; main derives its flags from the
// tags, as for app.Config.
type Config struct {
	Listen   string `flag:"listen" usage:"A's address (the one you curl); when the default is taken, the next free port"`
	UIListen string `flag:"ui-listen" usage:"address of the demo's web page, where a person logs in and calls the chain; when the default is taken, the next free port"`
	// The other listeners: port 0 is any free port.
	IssuerListen string `flag:"issuer-listen" usage:"the local issuer's address (port 0: any free port, kept in --state-dir when set)"`
	CListen      string `flag:"c-listen" usage:"C's API address"`
	BListen      string `flag:"b-listen" usage:"B's API address"`
	AAdminListen string `flag:"a-admin-listen" usage:"A's admin address (/metrics, /readyz)"`
	CAdminListen string `flag:"c-admin-listen" usage:"C's admin address"`
	BAdminListen string `flag:"b-admin-listen" usage:"B's admin address"`
	StateDir     string `flag:"state-dir" usage:"keep the issuer's key and address, the users' passwords and the client secret in this directory (0700) across restarts, so tokens and the printed commands keep working; off when empty"`
	MySQLDSN     string `flag:"mysql-dsn" env:"MYSQL_DSN" usage:"serve B from this MySQL (migrated and seeded first) instead of memory"`
	PeerAuth     string `flag:"peer-auth" usage:"workload identity between the hops: mtls or off"`
	Trace        bool   `flag:"trace" usage:"print each request's finished spans"`
	LogLevel     string `flag:"log-level" usage:"log level of the services"`

	OTLPEndpoint       string `flag:"otlp-endpoint" env:"OTEL_EXPORTER_OTLP_ENDPOINT" usage:"export every role's traces to this OTLP collector"`
	OTLPTracesEndpoint string `flag:"otlp-traces-endpoint" env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" usage:"OTLP traces URL, used as it is"`
	OTLPProtocol       string `flag:"otlp-protocol" env:"OTEL_EXPORTER_OTLP_PROTOCOL" usage:"http/protobuf or grpc"`

	// From says where each setting that was given came from: "--flag" for
	// the command line, "VAR (from the environment)" for the environment.
	// A setting not in it has its default, and the demo may move a taken
	// default port.
	From map[string]string `flag:"-"`
}

// Defaults returns the demo's flag defaults.
func Defaults() Config {
	const anyPort = "127.0.0.1:0"
	return Config{
		Listen: "127.0.0.1:8080", UIListen: "127.0.0.1:8090",
		IssuerListen: anyPort, CListen: anyPort, BListen: anyPort,
		AAdminListen: anyPort, CAdminListen: anyPort, BAdminListen: anyPort,
		PeerAuth: app.PeerAuthMTLS, LogLevel: "info", OTLPProtocol: telemetry.ProtocolHTTP,
	}
}

// source names where a setting came from, for error messages.
func (dc Config) source(flag string) string {
	if from := dc.From[flag]; from != "" {
		return from
	}
	return "--" + flag
}

// listeners are the flags of each role's API and admin addresses.
var listeners = map[domain.Role][2]string{
	domain.RoleA: {"listen", "a-admin-listen"},
	domain.RoleC: {"c-listen", "c-admin-listen"},
	domain.RoleB: {"b-listen", "b-admin-listen"},
}

// addr returns the address flag names.
func (dc *Config) addr(flag string) *string {
	return map[string]*string{
		"listen": &dc.Listen, "ui-listen": &dc.UIListen, "issuer-listen": &dc.IssuerListen,
		"c-listen": &dc.CListen, "b-listen": &dc.BListen,
		"a-admin-listen": &dc.AAdminListen, "c-admin-listen": &dc.CAdminListen, "b-admin-listen": &dc.BAdminListen,
	}[flag]
}

// Demo identities: what a local Auth0 tenant would be configured with. The
// machine client uses the client-credentials grant; the page and `trustchain
// login` are public clients, as an Auth0 Single Page and Native app are.
const (
	demoAudience  = "https://trustchain.example/api"
	demoClientID  = "trustchain-demo"
	demoUIClient  = "trustchain-demo-ui"
	demoCLIClient = "trustchain-cli"
	demoScope     = "read:products"
)

// Demo is the whole chain in one process: a local Auth0 look-alike and the
// roles on loopback, wired by the same chain builder the tests use.
type Demo struct {
	dc           Config
	issuer       *issuer.Issuer
	ca           *spiffeca.DevCA // nil unless --peer-auth=mtls
	issuerServer *server.Server
	uiServer     *server.Server
	chain        *app.Chain
	clientSecret string
	users        []issuer.User
	state        *issuer.State // nil without --state-dir
	moves        []string      // taken default ports, and where they went
	self         string        // how printed commands run this binary
}

// New starts nothing yet but binds every port, so the printed
// instructions carry real addresses.
func New(ctx context.Context, dc Config, deps app.Deps) (_ *Demo, err error) {
	level, err := dc.validate()
	if err != nil {
		return nil, err
	}
	decisions := newHopDecisions()
	logFor := func(role domain.Role) *slog.Logger {
		log := deps.Logger
		if log == nil {
			log, _ = telemetry.NewLogger(deps.Stderr, telemetry.LogText, level, string(role))
		} else {
			log = log.With(slog.String("role", string(role)))
		}
		return slog.New(decisions.handler(role, log.Handler()))
	}

	d := &Demo{dc: dc, self: invocation()}
	defer func() {
		if err != nil {
			d.close(ctx)
		}
	}()
	if dc.StateDir != "" {
		if d.state, err = issuer.OpenState(dc.StateDir); err != nil {
			return nil, err
		}
	}
	if d.moves, err = d.dc.claimAddrs(d.state); err != nil {
		return nil, err
	}
	if err = d.startIssuer(logFor); err != nil {
		return nil, err
	}
	cc, err := d.chainConfig(ctx, deps, logFor)
	if err != nil {
		return nil, err
	}
	if d.chain, err = app.NewChain(ctx, cc); err != nil {
		return nil, err
	}
	page, err := d.newPage(decisions)
	if err != nil {
		return nil, err
	}
	d.uiServer.SetHandler(page)
	return d, nil
}

// validate checks what the demo's own flags can get wrong and returns the
// log level.
func (dc Config) validate() (slog.Level, error) {
	if dc.PeerAuth != app.PeerAuthMTLS && dc.PeerAuth != app.PeerAuthOff {
		return 0, &app.ConfigError{Problems: []app.Problem{{Flag: "peer-auth", Message: fmt.Sprintf("%q is not one of: mtls, off", dc.PeerAuth)}}}
	}
	level, err := telemetry.ParseLevel(dc.LogLevel)
	if err != nil {
		return 0, &app.ConfigError{Problems: []app.Problem{{Flag: "log-level", Message: err.Error()}}}
	}
	return level, nil
}

// startIssuer binds the issuer's and the page's ports (each must know the
// other's URL before it is configured) and builds the local issuer with the
// demo users and clients.
func (d *Demo) startIssuer(logFor func(domain.Role) *slog.Logger) (err error) {
	if d.users, err = issuer.DemoUsers(demoScope); err != nil {
		return err
	}
	key, err := d.keep()
	if err != nil {
		return err
	}
	if d.issuerServer, err = server.NewServer("issuer", d.dc.IssuerListen, nil, server.DefaultLimits(0), nil, logFor("issuer")); err != nil {
		return err
	}
	if d.state != nil {
		if err := d.state.Set("issuer-listen", d.issuerServer.Addr()); err != nil {
			return err
		}
	}
	if d.uiServer, err = server.NewServer("ui", d.dc.UIListen, nil, server.DefaultLimits(0), nil, logFor("ui")); err != nil {
		return err
	}
	// The issuer checks proofs at its token endpoint with a replay store
	// of its own, apart from A's.
	proofs, err := dpop.New(dpop.Config{})
	if err != nil {
		return err
	}
	d.issuer, err = issuer.New(issuer.Config{
		DPoP:         issuer.DPoP{Check: proofs.TokenRequestKey, Algorithms: dpop.AlgorithmNames()},
		URL:          "http://" + d.issuerServer.Addr(),
		Key:          key,
		Audience:     demoAudience,
		ClientID:     demoClientID,
		ClientSecret: d.clientSecret,
		Scopes:       []string{demoScope},
		Users:        d.users,
		PublicClients: []issuer.PublicClient{
			{ID: demoUIClient, RedirectURIs: []string{d.UIURL() + "/callback"}},
			{ID: demoCLIClient},
		},
	})
	if err != nil {
		return err
	}
	d.issuerServer.SetHandler(d.issuer)
	return nil
}

// keep fills in the client secret and the users' passwords, and returns
// the signing key: fresh ones, or with --state-dir the ones kept there
// (made and kept on the first run). A nil key makes the issuer a fresh one.
func (d *Demo) keep() (*rsa.PrivateKey, error) {
	if d.state == nil {
		d.clientSecret = randomHex(16)
		return nil, nil
	}
	var err error
	if d.clientSecret, err = d.state.Value("client-secret", func() (string, error) { return randomHex(16), nil }); err != nil {
		return nil, err
	}
	for i := range d.users {
		fresh := d.users[i].Password
		if d.users[i].Password, err = d.state.Value("password."+d.users[i].Name, func() (string, error) { return fresh, nil }); err != nil {
			return nil, err
		}
	}
	return d.state.Key()
}

// chainConfig is the chain the demo runs: its issuer, a development CA for
// mtls, and B's store (memory, or the given MySQL, migrated and seeded).
func (d *Demo) chainConfig(ctx context.Context, deps app.Deps, logFor func(domain.Role) *slog.Logger) (app.ChainConfig, error) {
	dc := d.dc
	cc := app.ChainConfig{
		Issuer: d.issuer.Issuer(), Audience: demoAudience, Scope: demoScope,
		PeerAuth: dc.PeerAuth, EdgeListen: dc.Listen, MySQLDSN: dc.MySQLDSN,
		Deps: func(role domain.Role) app.Deps {
			rd := deps
			rd.Logger = logFor(role)
			if dc.Trace {
				rd.TraceStdout = deps.Stdout
			}
			return rd
		},
		Configure: func(role domain.Role, cfg *app.Config) {
			cfg.Listen, cfg.AdminListen = *dc.addr(listeners[role][0]), *dc.addr(listeners[role][1])
			cfg.OTLPEndpoint, cfg.OTLPTracesEndpoint, cfg.OTLPProtocol = dc.OTLPEndpoint, dc.OTLPTracesEndpoint, dc.OTLPProtocol
			// Handed over in code, as a command line would: the SDK gets
			// them as options, not from the environment.
			if cfg.CommandLine == nil {
				cfg.CommandLine = map[string]bool{}
			}
			cfg.CommandLine["otlp-endpoint"], cfg.CommandLine["otlp-traces-endpoint"] = true, true
		},
	}
	var err error
	if dc.PeerAuth == app.PeerAuthMTLS {
		if d.ca, err = spiffeca.NewDevCA(spiffeid.RequireTrustDomainFromString(app.Defaults().TrustDomain), 24*time.Hour); err != nil {
			return cc, err
		}
		cc.Identity = func(id spiffeid.ID) (spiffetls.Source, error) { return d.ca.Source(id) }
	}
	if dc.MySQLDSN == "" {
		cc.Store = memory.New(domain.SampleCatalogue()...)
		return cc, nil
	}
	ops := app.MigrateConfig{MySQLDSN: dc.MySQLDSN, Timeout: app.DefaultOpsTimeout}
	err = app.Migrate(ctx, ops, app.MigrateUp, io.Discard)
	if err == nil {
		err = app.Seed(ctx, ops, io.Discard)
	}
	if err != nil {
		// Say where the DSN came from: a MYSQL_DSN left in the shell
		// moves the demo onto MySQL without a word on the command line.
		return cc, fmt.Errorf("prepare the MySQL from %s for B: %w", dc.source("mysql-dsn"), err)
	}
	return cc, nil
}

// newPage is the demo's web page: log in as a demo user, call A, see what
// each hop decided.
func (d *Demo) newPage(decisions *hopDecisions) (*page.Page, error) {
	var bClient *http.Client
	var bCaller string
	if d.ca != nil {
		// The page calls B as a caller with no workload identity: it
		// trusts B's certificate but presents none of its own.
		b, _ := domain.HopOf(domain.RoleB)
		c, _ := domain.HopOf(b.CalledBy)
		def := app.Defaults()
		id, err := spiffetls.ID(def.TrustDomain, def.Namespace, b.ServiceAccount)
		if err != nil {
			return nil, err
		}
		caller, err := spiffetls.ID(def.TrustDomain, def.Namespace, c.ServiceAccount)
		if err != nil {
			return nil, err
		}
		bCaller = caller.String()
		bClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: spiffetls.AnonymousClientTLSConfig(d.ca.Bundle(), id)}}
	}
	store := "Memory"
	if d.dc.MySQLDSN != "" {
		store = "MySQL"
	}
	// C and B take a bound token only from a caller proven by workload
	// identity; with it off, a bound token would not get past C, so the
	// page's tokens are Bearer tokens then.
	var sessionKeys func() (page.Prover, error)
	if d.dc.PeerAuth != app.PeerAuthOff {
		sessionKeys = sessionKey
	}
	return page.New(page.Config{
		AURL:        d.chain.URL(domain.RoleA),
		BURL:        d.chain.URL(domain.RoleB),
		IssuerURL:   d.issuer.Issuer(),
		ClientID:    demoUIClient,
		RedirectURL: d.UIURL() + "/callback",
		Audience:    demoAudience,
		Scopes:      []string{"openid", "profile", demoScope},
		LoginHint:   d.userHint(),
		Shortcuts:   []string{issuer.DemoReader, issuer.DemoVisitor},
		PeerAuthOff: d.dc.PeerAuth == app.PeerAuthOff,
		BCaller:     bCaller,
		Store:       store,
		BClient:     bClient,
		Decisions:   decisions,
		Expired:     expiredTokens{d.issuer},
		DPoP:        sessionKeys,
	})
}

// sessionKey is a fresh ES256 key for one login on the page, held by the
// page for that session alone.
func sessionKey() (page.Prover, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make a DPoP key: %w", err)
	}
	return dpop.NewProver(key), nil
}

// expiredTokens mints, for the page's "expired token" button, a token that
// is the user's own in every way but its exp.
type expiredTokens struct{ iss *issuer.Issuer }

func (e expiredTokens) ExpiredToken(_ context.Context, sub string) (string, error) {
	claims, err := e.iss.UserClaims(sub, demoUIClient)
	if err != nil {
		return "", err
	}
	claims["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	claims["exp"] = time.Now().Add(-time.Hour).Unix()
	return e.iss.Mint(claims)
}

func (d *Demo) userHint() string {
	var parts []string
	for _, u := range d.users {
		what := "may read products"
		if len(u.Role.Permissions) == 0 {
			what = "may not: the chain answers 403"
		}
		parts = append(parts, fmt.Sprintf("%s / %s (%s)", u.Name, u.Password, what))
	}
	return "Demo users: " + strings.Join(parts, "; ")
}

// Run runs the demo until ctx ends, after printing how to call it.
func Run(ctx context.Context, dc Config, deps app.Deps) error {
	d, err := New(ctx, dc, deps)
	if err != nil {
		return err
	}
	return d.Run(ctx, deps.Stdout)
}

// Run serves everything until ctx ends.
func (d *Demo) Run(ctx context.Context, out io.Writer) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.issuerServer.Run(gctx, time.Second) })
	g.Go(func() error { return d.uiServer.Run(gctx, time.Second) })
	g.Go(func() error { return d.chain.Run(gctx) })
	g.Go(func() error {
		// Every role has loaded the issuer's keys before the first pasted
		// curl; a failure here stops the demo.
		if err := d.chain.WaitReady(gctx, 20*time.Second); err != nil {
			return err
		}
		d.printInstructions(out)
		return nil
	})
	return g.Wait()
}

func (d *Demo) close(ctx context.Context) {
	if d.chain != nil {
		d.chain.Close(ctx)
	}
	for _, s := range []*server.Server{d.issuerServer, d.uiServer} {
		if s != nil {
			_ = s.Close()
		}
	}
}

// IssuerURL, UIURL, APIAddr, AdminAddr, ClientSecret and Users expose the
// demo to tests.
func (d *Demo) IssuerURL() string                 { return "http://" + d.issuerServer.Addr() }
func (d *Demo) UIURL() string                     { return "http://" + d.uiServer.Addr() }
func (d *Demo) Users() []issuer.User              { return d.users }
func (d *Demo) APIAddr(role domain.Role) string   { return d.chain.Service(role).APIAddr() }
func (d *Demo) AdminAddr(role domain.Role) string { return d.chain.Service(role).AdminAddr() }
func (d *Demo) ClientSecret() string              { return d.clientSecret }

func (d *Demo) printInstructions(out io.Writer) {
	a := d.chain.URL(domain.RoleA)
	store := "in-memory sample catalogue"
	if d.dc.MySQLDSN != "" {
		store = "MySQL from " + d.dc.source("mysql-dsn") + ", migrated and seeded"
	}
	tokenCmd := fmt.Sprintf(`TOKEN=$(curl -s -X POST %s/oauth/token -H 'content-type: application/json' -d '{"grant_type":"client_credentials","client_id":"%s","client_secret":"%s","audience":"%s"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')`,
		d.IssuerURL(), demoClientID, d.clientSecret, demoAudience)

	var b strings.Builder
	fmt.Fprintf(&b, "trustchain demo is running (workload identity between hops: %s)\n\n", d.dc.PeerAuth)
	for _, m := range d.moves {
		fmt.Fprintf(&b, "  note: %s\n", m)
	}
	if len(d.moves) > 0 {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "  page    %s   log in as a user and watch the chain decide\n", d.UIURL())
	fmt.Fprintf(&b, "  issuer  %s   local Auth0 look-alike (login, device code, client credentials, JWKS)\n", d.issuer.Issuer())
	for _, h := range domain.Chain() {
		what := "checks the token, calls " + strings.ToUpper(string(h.Calls))
		switch {
		case h.ReadsStore():
			what = "checks the token and the caller, reads the " + store
		case !h.IsEdge():
			what = "checks the token and the caller, calls " + strings.ToUpper(string(h.Calls))
		}
		fmt.Fprintf(&b, "  %s       %s   %s\n", strings.ToUpper(string(h.Role)), d.chain.URL(h.Role), what)
		fmt.Fprintf(&b, "          admin http://%s  (/metrics, /readyz)\n", d.chain.Service(h.Role).AdminAddr())
	}
	fmt.Fprintf(&b, "\nDemo users (log in on the page, or with trustchain login):\n\n")
	for _, u := range d.users {
		what := "has read:products"
		if len(u.Role.Permissions) == 0 {
			what = "has no permission: A answers 403"
		}
		fmt.Fprintf(&b, "  %-6s password %s   %s\n", u.Name, u.Password, what)
	}
	if d.state != nil {
		fmt.Fprintf(&b, "\n  (kept in %s: the key, the issuer's address, these passwords and the client secret outlive a restart)\n", d.dc.StateDir)
	}
	fmt.Fprintf(&b, "\n0. Open the page and log in: %s\n   or log in from the terminal (device code):\n\n  eval \"$(%s login --oidc-issuer %s --client-id %s --oidc-audience %s --output env)\"\n\n",
		d.UIURL(), d.self, d.issuer.Issuer(), demoCLIClient, demoAudience)
	fmt.Fprintf(&b, "   For a token bound to a key (DPoP), add --dpop --key k.pem, and call A with a proof by it:\n\n  curl -s -H \"Authorization: DPoP $TOKEN\" -H \"DPoP: $(%s proof --key k.pem --method GET --url %s/products --token \"$TOKEN\")\" %s/products\n\n", d.self, a, a)
	fmt.Fprintf(&b, "1. Or get a machine's token (client-credentials grant, like Auth0):\n\n  %s\n\n", tokenCmd)
	fmt.Fprintf(&b, "2. Call A with it:\n\n  curl -s -H \"Authorization: Bearer $TOKEN\" %s/products\n\n", a)
	fmt.Fprintf(&b, "   One product, and a page of one with its Link to the next:\n\n  curl -s -H \"Authorization: Bearer $TOKEN\" %s/products/1\n  curl -si -H \"Authorization: Bearer $TOKEN\" '%s/products?limit=1'\n\n", a, a)
	fmt.Fprintf(&b, "3. Without a token, A refuses (401, WWW-Authenticate: Bearer):\n\n  curl -i %s/products\n\n", a)
	if d.dc.PeerAuth == app.PeerAuthMTLS {
		fmt.Fprintf(&b, "4. Even with a valid token, C and B refuse a caller without the right workload certificate\n   (the TLS handshake fails: only A may call C, only C may call B):\n\n")
		fmt.Fprintf(&b, "  curl -sk -H \"Authorization: Bearer $TOKEN\" %s/products\n", d.chain.URL(domain.RoleC))
		fmt.Fprintf(&b, "  curl -sk -H \"Authorization: Bearer $TOKEN\" %s/products\n\n", d.chain.URL(domain.RoleB))
	} else {
		fmt.Fprintf(&b, "4. Peer authentication is off: C and B accept any caller with a valid token.\n\n")
	}
	fmt.Fprintf(&b, "Press Ctrl-C to stop.\n")
	_, _ = io.WriteString(out, b.String())
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
