package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/trustchain/trustchain/adapters/devca"
	"github.com/trustchain/trustchain/adapters/devissuer"
	"github.com/trustchain/trustchain/adapters/httpin"
	"github.com/trustchain/trustchain/adapters/memory"
	"github.com/trustchain/trustchain/adapters/spiffetls"
	"github.com/trustchain/trustchain/adapters/telemetry"
	"github.com/trustchain/trustchain/domain"
)

// DemoConfig configures `trustchain demo`.
type DemoConfig struct {
	Listen   string // A's address
	MySQLDSN string // empty: B serves the in-memory sample catalogue
	PeerAuth string // mtls or off, between the hops
	Trace    bool
	LogLevel string
}

// Demo identities: what a local Auth0 tenant would be configured with.
const (
	demoAudience    = "https://trustchain.example/api"
	demoClientID    = "trustchain-demo"
	demoScope       = "read:products"
	demoTrustDomain = "cluster.local"
	demoNamespace   = "default"
)

// Demo is the whole chain in one process: a local Auth0 look-alike and the
// three roles on loopback, wired exactly as in production.
type Demo struct {
	issuer       *devissuer.Issuer
	issuerServer *httpin.Server
	services     map[string]*Service // by role
	clientSecret string
	peerAuth     string
	mysql        bool
}

// NewDemo starts nothing yet but binds every port, so the printed
// instructions carry real addresses.
func NewDemo(ctx context.Context, dc DemoConfig, opts Options) (_ *Demo, err error) {
	if dc.PeerAuth != PeerAuthMTLS && dc.PeerAuth != PeerAuthOff {
		return nil, &ConfigError{Problems: []Problem{{Flag: "peer-auth", Message: fmt.Sprintf("%q is not one of: mtls, off", dc.PeerAuth)}}}
	}
	level, err := telemetry.ParseLevel(dc.LogLevel)
	if err != nil {
		return nil, &ConfigError{Problems: []Problem{{Flag: "log-level", Message: err.Error()}}}
	}
	logFor := func(role string) (*slog.Logger, error) {
		if opts.Logger != nil {
			return opts.Logger.With(slog.String("role", role)), nil
		}
		return telemetry.NewLogger(opts.Stderr, "text", level, role)
	}
	issuerLog, err := logFor("issuer")
	if err != nil {
		return nil, err
	}

	d := &Demo{services: map[string]*Service{}, clientSecret: randomHex(16), peerAuth: dc.PeerAuth, mysql: dc.MySQLDSN != ""}
	defer func() {
		if err != nil {
			d.close()
		}
	}()

	// The issuer's URL must be known before it mints a token, so bind first.
	d.issuerServer, err = httpin.NewServer("issuer", "127.0.0.1:0", nil, httpin.DefaultLimits(), nil, issuerLog)
	if err != nil {
		return nil, err
	}
	d.issuer, err = devissuer.New(devissuer.Config{
		URL:          "http://" + d.issuerServer.Addr(),
		Audience:     demoAudience,
		ClientID:     demoClientID,
		ClientSecret: d.clientSecret,
		Scopes:       []string{demoScope},
	})
	if err != nil {
		return nil, err
	}
	d.issuerServer.SetHandler(d.issuer)

	var ca *devca.DevCA
	if dc.PeerAuth == PeerAuthMTLS {
		td, err := spiffeid.TrustDomainFromString(demoTrustDomain)
		if err != nil {
			return nil, err
		}
		if ca, err = devca.NewDevCA(td, 24*time.Hour); err != nil {
			return nil, err
		}
	}

	var source *memory.Store
	if dc.MySQLDSN == "" {
		source = memory.New(domain.SampleCatalogue()...)
	} else {
		if err := Migrate(ctx, dc.MySQLDSN, MigrateUp, io.Discard); err != nil {
			return nil, err
		}
		if err := Seed(ctx, dc.MySQLDSN, io.Discard); err != nil {
			return nil, err
		}
	}

	scheme := "http"
	if ca != nil {
		scheme = "https"
	}
	upstream := ""
	// B first, then C, then A: each needs the address of the one below.
	for _, role := range []string{RoleB, RoleC, RoleA} {
		cfg := Defaults()
		cfg.Role = role
		cfg.Listen = "127.0.0.1:0"
		if role == RoleA {
			cfg.Listen = dc.Listen
		}
		cfg.AdminListen = "127.0.0.1:0"
		cfg.OIDCIssuer = d.issuer.Issuer()
		cfg.OIDCAudience = demoAudience
		cfg.RequiredScope = demoScope
		cfg.Upstream = upstream
		cfg.PeerAuth = dc.PeerAuth
		cfg.TrustDomain = demoTrustDomain
		cfg.Namespace = demoNamespace
		cfg.ShutdownTimeout = 5 * time.Second
		roleOpts := opts
		if roleOpts.Logger, err = logFor(role); err != nil {
			return nil, err
		}
		if role == RoleB {
			if source != nil {
				roleOpts.Source = source
			} else {
				cfg.MySQLDSN = dc.MySQLDSN
			}
		}
		if dc.Trace {
			roleOpts.TraceStdout = opts.Stdout
		}
		if ca != nil {
			if roleOpts.Identity, err = demoIdentity(ca, role); err != nil {
				return nil, err
			}
		}
		svc, err := New(ctx, cfg, roleOpts)
		if err != nil {
			return nil, fmt.Errorf("start role %s: %w", role, err)
		}
		d.services[role] = svc
		upstream = scheme + "://" + svc.APIAddr()
	}
	return d, nil
}

func demoIdentity(ca *devca.DevCA, role string) (spiffetls.Source, error) {
	id, err := spiffetls.ID(demoTrustDomain, demoNamespace, serviceName(role))
	if err != nil {
		return nil, err
	}
	return ca.Source(id)
}

// RunDemo runs the chain until ctx ends, after printing how to call it.
func RunDemo(ctx context.Context, dc DemoConfig, opts Options) error {
	d, err := NewDemo(ctx, dc, opts)
	if err != nil {
		return err
	}
	return d.Run(ctx, opts.Stdout)
}

// Run serves everything until ctx ends.
func (d *Demo) Run(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	launch := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel()
			}
		}()
	}
	launch(func(c context.Context) error { return d.issuerServer.Run(c, time.Second) })
	for _, svc := range d.services {
		launch(svc.Run)
	}
	if err := d.waitReady(ctx); err != nil {
		cancel()
		wg.Wait()
		return errors.Join(append(errs, err)...)
	}
	d.printInstructions(out)
	wg.Wait()
	return errors.Join(errs...)
}

// waitReady waits until every role has loaded the issuer's keys, so the
// first pasted curl succeeds.
func (d *Demo) waitReady(ctx context.Context) error {
	for _, svc := range d.services {
		if err := svc.WaitReady(ctx, 10*time.Second); err != nil {
			return err
		}
	}
	return nil
}

func (d *Demo) close() {
	for _, svc := range d.services {
		svc.close(context.Background())
	}
	if d.issuerServer != nil {
		_ = d.issuerServer.Close()
	}
}

// IssuerURL, APIAddr and ClientSecret expose the demo to tests.
func (d *Demo) IssuerURL() string          { return "http://" + d.issuerServer.Addr() }
func (d *Demo) APIAddr(role string) string { return d.services[role].APIAddr() }
func (d *Demo) ClientSecret() string       { return d.clientSecret }

func (d *Demo) printInstructions(out io.Writer) {
	a := "http://" + d.services[RoleA].APIAddr()
	hopScheme := "http"
	if d.peerAuth == PeerAuthMTLS {
		hopScheme = "https"
	}
	store := "in-memory sample catalogue"
	if d.mysql {
		store = "MySQL, migrated and seeded"
	}
	tokenCmd := fmt.Sprintf(`TOKEN=$(curl -s -X POST %s/oauth/token -H 'content-type: application/json' -d '{"grant_type":"client_credentials","client_id":"%s","client_secret":"%s","audience":"%s"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')`,
		d.IssuerURL(), demoClientID, d.clientSecret, demoAudience)

	var b strings.Builder
	fmt.Fprintf(&b, "trustchain demo is running (workload identity between hops: %s)\n\n", d.peerAuth)
	fmt.Fprintf(&b, "  issuer  %s   local Auth0 look-alike (discovery, JWKS, /oauth/token)\n", d.issuer.Issuer())
	fmt.Fprintf(&b, "  A       %s   gateway: checks the token, calls C\n", a)
	fmt.Fprintf(&b, "  C       %s://%s   checks the token again, calls B\n", hopScheme, d.services[RoleC].APIAddr())
	fmt.Fprintf(&b, "  B       %s://%s   checks the token a third time, reads the %s\n\n", hopScheme, d.services[RoleB].APIAddr(), store)
	fmt.Fprintf(&b, "1. Get an access token (client-credentials grant, like Auth0):\n\n  %s\n\n", tokenCmd)
	fmt.Fprintf(&b, "2. Call A with it:\n\n  curl -s -H \"Authorization: Bearer $TOKEN\" %s/products\n\n", a)
	fmt.Fprintf(&b, "3. Without a token, A refuses (401, WWW-Authenticate: Bearer):\n\n  curl -i %s/products\n\n", a)
	if d.peerAuth == PeerAuthMTLS {
		fmt.Fprintf(&b, "4. Even with a valid token, C and B refuse a caller without the right workload certificate\n   (the TLS handshake fails: only A may call C, only C may call B):\n\n")
		fmt.Fprintf(&b, "  curl -sk -H \"Authorization: Bearer $TOKEN\" https://%s/products\n", d.services[RoleC].APIAddr())
		fmt.Fprintf(&b, "  curl -sk -H \"Authorization: Bearer $TOKEN\" https://%s/products\n\n", d.services[RoleB].APIAddr())
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
