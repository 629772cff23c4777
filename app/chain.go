package app

import (
	"context"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/sync/errgroup"

	"github.com/trustchain/trustchain/adapters/spiffetls"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

// ChainConfig describes a whole chain in one process: every role of the
// topology on loopback, against one issuer. The demo and the tests build
// their chains with it (the demo from package app/demo), so the tests
// exercise the demo's wiring.
type ChainConfig struct {
	// Issuer, Audience and Scope are every role's token settings.
	Issuer, Audience, Scope string
	// PeerAuth is every role's workload check: mtls or off. A test can
	// give one role another with Configure.
	PeerAuth string
	// Identity, when set and PeerAuth is mtls, gives each role the SVID
	// of its SPIFFE ID: the demo's and the tests' development CA. app
	// itself never holds a CA.
	Identity func(id spiffeid.ID) (spiffetls.Source, error)
	// EdgeListen is the edge's API address; default 127.0.0.1:0.
	EdgeListen string
	// Store serves the store role; without it, MySQLDSN does.
	Store    ports.ProductSource
	MySQLDSN string
	// Deps, when set, returns a role's deps (logger, trace exporter).
	Deps func(role domain.Role) Deps
	// Configure, when set, adjusts a role's config last.
	Configure func(role domain.Role, cfg *Config)
	// Upstream, when set, may replace the URL a role is given for the
	// role it calls (a test puts a recording proxy in between).
	Upstream func(role domain.Role, url string) string
}

// Chain is the roles of one ChainConfig.
type Chain struct {
	services map[domain.Role]*Service
	urls     map[domain.Role]string
}

// NewChain builds every role, the store's first: each role needs the
// address of the one it calls. Nothing serves until Run.
func NewChain(ctx context.Context, cc ChainConfig) (_ *Chain, err error) {
	c := &Chain{services: map[domain.Role]*Service{}, urls: map[domain.Role]string{}}
	defer func() {
		if err != nil {
			c.Close(ctx)
		}
	}()
	hops := domain.Chain()
	upstream := ""
	for i := len(hops) - 1; i >= 0; i-- {
		h := hops[i]
		cfg, deps, err := cc.role(h, upstream)
		if err != nil {
			return nil, err
		}
		svc, err := New(ctx, cfg, deps)
		if err != nil {
			return nil, fmt.Errorf("start role %s: %w", h.Role, err)
		}
		c.services[h.Role] = svc
		scheme := "http"
		if cfg.PeerAuth == PeerAuthMTLS && !h.IsEdge() {
			scheme = "https"
		}
		c.urls[h.Role] = scheme + "://" + svc.APIAddr()
		upstream = c.urls[h.Role]
		if cc.Upstream != nil {
			upstream = cc.Upstream(h.Role, upstream)
		}
	}
	return c, nil
}

// role is the config and deps of one role of the chain.
func (cc ChainConfig) role(h domain.Hop, upstream string) (Config, Deps, error) {
	cfg := Defaults()
	cfg.Role = string(h.Role)
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	if h.IsEdge() && cc.EdgeListen != "" {
		cfg.Listen = cc.EdgeListen
	}
	cfg.OIDCIssuer, cfg.OIDCAudience, cfg.RequiredScope = cc.Issuer, cc.Audience, cc.Scope
	cfg.Upstream = upstream
	cfg.PeerAuth = cc.PeerAuth
	var deps Deps
	if cc.Deps != nil {
		deps = cc.Deps(h.Role)
	}
	if h.ReadsStore() {
		if cc.Store != nil {
			deps.Source = cc.Store
		} else {
			cfg.MySQLDSN = cc.MySQLDSN
		}
	}
	if cc.Identity != nil && cc.PeerAuth == PeerAuthMTLS {
		id, err := spiffetls.ID(cfg.TrustDomain, cfg.Namespace, h.ServiceAccount)
		if err != nil {
			return cfg, deps, err
		}
		if deps.Identity, err = cc.Identity(id); err != nil {
			return cfg, deps, err
		}
	}
	if cc.Configure != nil {
		cc.Configure(h.Role, &cfg)
	}
	return cfg, deps, nil
}

// Run serves every role until ctx ends, or until one fails.
func (c *Chain) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, svc := range c.services {
		g.Go(func() error { return svc.Run(gctx) })
	}
	return g.Wait()
}

// WaitReady waits until every role's dependencies are up.
func (c *Chain) WaitReady(ctx context.Context, timeout time.Duration) error {
	for _, h := range domain.Chain() {
		if err := c.services[h.Role].WaitReady(ctx, timeout); err != nil {
			return err
		}
	}
	return nil
}

// Service returns a role's service.
func (c *Chain) Service(role domain.Role) *Service { return c.services[role] }

// URL is the base URL a caller uses for a role's API.
func (c *Chain) URL(role domain.Role) string { return c.urls[role] }

// Close stops every role that NewChain built, for a caller that will not
// Run the chain after all.
func (c *Chain) Close(ctx context.Context) {
	for _, svc := range c.services {
		svc.close(context.WithoutCancel(ctx))
	}
}
