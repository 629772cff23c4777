package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/trustchain/trustchain/adapters/spiffetls"
	"github.com/trustchain/trustchain/domain"
)

// identities are the SPIFFE IDs one role deals with.
type identities struct {
	self     spiffeid.ID
	allowed  []spiffeid.ID
	upstream spiffeid.ID
	// proxies may write the XFCC element the app trusts: the workload's
	// own sidecar by default, an ambient waypoint when configured.
	proxies []spiffeid.ID
}

// resolveIdentities derives the chain's secure default from the topology,
// the trust domain and the namespace: each role admits the one role the
// chain says calls it (the edge admits the ingress gateway) and expects the
// one it calls. Flags replace any of them.
func resolveIdentities(cfg Config) (identities, error) {
	var ids identities
	var err error
	h := cfg.hop()
	sa := cfg.ServiceAccount
	if sa == "" {
		sa = h.ServiceAccount
	}
	if ids.self, err = spiffetls.ID(cfg.TrustDomain, cfg.Namespace, sa); err != nil {
		return ids, err
	}
	ids.proxies = []spiffeid.ID{ids.self}
	if len(cfg.XFCCTrustedProxies) > 0 {
		ids.proxies = nil
		for _, p := range cfg.XFCCTrustedProxies {
			ids.proxies = append(ids.proxies, spiffeid.RequireFromString(p)) // validated with the config
		}
	}
	switch {
	case cfg.UpstreamPeer != "":
		ids.upstream = spiffeid.RequireFromString(cfg.UpstreamPeer) // validated with the config
	case !h.ReadsStore():
		if ids.upstream, err = roleID(cfg, h.Calls); err != nil {
			return ids, err
		}
	}
	for _, p := range cfg.AllowedPeers {
		ids.allowed = append(ids.allowed, spiffeid.RequireFromString(p))
	}
	if len(ids.allowed) > 0 {
		return ids, nil
	}
	var caller spiffeid.ID
	if h.IsEdge() {
		caller, err = spiffetls.IngressGatewayID(cfg.TrustDomain)
	} else {
		caller, err = roleID(cfg, h.CalledBy)
	}
	ids.allowed = []spiffeid.ID{caller}
	return ids, err
}

// roleID is the SPIFFE ID of another role of the chain.
func roleID(cfg Config, role domain.Role) (spiffeid.ID, error) {
	h, ok := domain.HopOf(role)
	if !ok {
		return spiffeid.ID{}, fmt.Errorf("the chain has no role %q", role)
	}
	return spiffetls.ID(cfg.TrustDomain, cfg.Namespace, h.ServiceAccount)
}

// openIdentity returns this workload's SVID source for mtls, or nil when
// the role does not speak mtls, and makes its SVID a readiness check.
func (s *Service) openIdentity(ctx context.Context, cfg Config, deps Deps, self spiffeid.ID, tel telemetryParts) (spiffetls.Source, error) {
	if cfg.PeerAuth != PeerAuthMTLS {
		return nil, nil
	}
	m := tel.metrics.SVID()
	w := spiffetls.Workload{ID: self, Log: s.log, RotationFailed: m.RotationFailed}
	var src spiffetls.Source = deps.Identity
	var err error
	switch {
	case src != nil:
	case cfg.SPIFFESocket != "":
		src, err = spiffetls.NewWorkloadSource(ctx, cfg.SPIFFESocket, w)
	default:
		src, err = spiffetls.NewFileSource(spiffetls.Files{Cert: cfg.TLSCert, Key: cfg.TLSKey, Bundle: cfg.TLSBundle}, w)
		if errors.Is(err, spiffetls.ErrNotOwnSVID) {
			err = fmt.Errorf("--tls-cert: %w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	if c, ok := src.(io.Closer); ok && deps.Identity == nil {
		s.closers = append(s.closers, func(context.Context) error { return c.Close() })
	}
	// Always "up": the monitor checks the SVID live on every probe.
	mon := spiffetls.NewMonitor(src, self, spiffetls.MonitorHooks{SVID: m.Held, Rotated: m.Rotated}, s.log)
	s.deps = append(s.deps, &dependency{name: "svid", up: true, connect: func(context.Context) error { return nil },
		check: mon.Check, keep: mon.Run, onState: func(up bool) { tel.metrics.DependencyUp("svid", up) }})
	return src, nil
}
