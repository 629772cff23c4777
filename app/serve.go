package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/trustchain/trustchain/adapters/httpin"
	"github.com/trustchain/trustchain/adapters/httpout"
	"github.com/trustchain/trustchain/adapters/mysql"
	"github.com/trustchain/trustchain/adapters/oidc"
	"github.com/trustchain/trustchain/adapters/spiffetls"
	"github.com/trustchain/trustchain/adapters/telemetry"
	"github.com/trustchain/trustchain/adapters/xfcc"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/ports"
)

// BuildInfo identifies the binary.
type BuildInfo struct {
	Version, Commit, GoVersion string
}

func (b BuildInfo) String() string {
	return fmt.Sprintf("trustchain %s (commit %s, %s)", b.Version, b.Commit, b.GoVersion)
}

// Options are the parts of a service that are not configuration: where
// output goes, and the substitutions the demo and the tests make.
type Options struct {
	Stdout, Stderr io.Writer
	Build          BuildInfo

	// Logger replaces the logger built from the config.
	Logger *slog.Logger
	// Source makes role b serve this store instead of MySQL.
	Source ports.ProductSource
	// Identity supplies the SVID and bundle for mtls instead of files or
	// the Workload API.
	Identity spiffetls.Source
	// TraceExporter and TraceStdout receive finished spans.
	TraceExporter sdktrace.SpanExporter
	TraceStdout   io.Writer
}

// Serve runs one role until ctx ends.
func Serve(ctx context.Context, cfg Config, opts Options) error {
	svc, err := New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

// Service is one running role: its servers and what they depend on.
type Service struct {
	cfg      Config
	log      *slog.Logger
	api      *httpin.Server
	admin    *httpin.Server
	adminH   *httpin.Admin
	verifier *oidc.Verifier
	closers  []func(context.Context) error
}

// New builds a role from a validated config and binds its ports. Nothing
// is served until Run.
func New(ctx context.Context, cfg Config, opts Options) (svc *Service, err error) {
	if err := cfg.validate(needs{store: opts.Source == nil, identity: opts.Identity == nil}); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg}
	defer func() {
		if err != nil {
			s.close(context.WithoutCancel(ctx))
		}
	}()

	s.log = opts.Logger
	if s.log == nil {
		level, err := telemetry.ParseLevel(cfg.LogLevel)
		if err != nil {
			return nil, err
		}
		if s.log, err = telemetry.NewLogger(opts.Stderr, cfg.LogFormat, level, cfg.Role); err != nil {
			return nil, err
		}
	}
	name := serviceName(cfg.Role)
	metrics := telemetry.NewMetrics(cfg.Role, telemetry.BuildInfo{Version: opts.Build.Version, Commit: opts.Build.Commit})
	tracing, err := telemetry.NewTracing(ctx, telemetry.TracingConfig{
		ServiceName:  name,
		OTLPEndpoint: cfg.OTLPEndpoint,
		Stdout:       opts.TraceStdout,
		Exporter:     opts.TraceExporter,
	})
	if err != nil {
		return nil, fmt.Errorf("set up tracing: %w", err)
	}
	s.closers = append(s.closers, tracing.Shutdown)

	s.verifier, err = oidc.New(oidc.Config{
		Issuer:    cfg.OIDCIssuer,
		Audience:  cfg.OIDCAudience,
		Logger:    s.log,
		OnRefresh: metrics.JWKSRefresh,
	})
	if err != nil {
		return nil, fmt.Errorf("set up token verifier: %w", err)
	}

	ids, err := resolveIdentities(cfg)
	if err != nil {
		return nil, err
	}
	var identity spiffetls.Source
	if cfg.PeerAuth == PeerAuthMTLS {
		if identity, err = s.openIdentity(ctx, cfg, opts); err != nil {
			return nil, err
		}
	}

	checks := map[string]httpin.ReadyCheck{"oidc": s.verifier.Ready}
	var source ports.ProductSource
	switch cfg.Role {
	case RoleB:
		if opts.Source != nil {
			source = opts.Source
			break
		}
		db, err := mysql.Open(ctx, cfg.MySQLDSN, mysql.PoolConfig{
			MaxOpenConns:    cfg.MySQLMaxOpen,
			MaxIdleConns:    cfg.MySQLMaxIdle,
			ConnMaxLifetime: mysql.DefaultPoolConfig().ConnMaxLifetime,
			ConnMaxIdleTime: mysql.DefaultPoolConfig().ConnMaxIdleTime,
		})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func(context.Context) error { return db.Close() })
		db.Bun().AddQueryHook(tracing.QueryHook())
		db.Bun().AddQueryHook(metrics.QueryHook())
		if err := metrics.RegisterDB(db.Bun().DB); err != nil {
			return nil, err
		}
		checks["mysql"] = db.Ping
		source = withTimeout{mysql.NewRepository(db), cfg.QueryTimeout}
	default:
		var clientTLS *tls.Config
		if identity != nil {
			clientTLS = spiffetls.ClientTLSConfig(identity, ids.upstream)
		}
		client, err := httpout.New(httpout.Config{
			URL:                 cfg.Upstream,
			Timeout:             cfg.EffectiveUpstreamTimeout(),
			MaxIdleConnsPerHost: cfg.UpstreamConns,
			TLS:                 clientTLS,
			WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
				return tracing.ClientTransport(metrics.Transport(upstreamName(cfg.Role), rt))
			},
		})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func(context.Context) error { client.CloseIdleConnections(); return nil })
		source = client
	}

	api := httpin.APIConfig{
		Source:        source,
		Verifier:      s.verifier,
		RequiredScope: cfg.RequiredScope,
		Gateway:       cfg.Role == RoleA,
		Clock:         ports.ClockFunc(time.Now),
		Logger:        s.log,
		Middleware: func(route string, next http.Handler) http.Handler {
			return tracing.ServerMiddleware(route, metrics.Middleware(route, next))
		},
		OnTokenCheck:  metrics.TokenCheck,
		OnPeerRefused: func(error) { metrics.PeerRefused(cfg.PeerAuth) },
	}
	var serverTLS *tls.Config
	switch {
	case cfg.PeerAuth == PeerAuthXFCC:
		authz := xfcc.Authorizer{Allowed: ids.allowed, Self: ids.self}
		api.Peer = func(r *http.Request) (string, error) {
			id, err := authz.Authorize(r)
			return id.String(), err
		}
	case cfg.PeerAuth == PeerAuthMTLS && cfg.Role != RoleA:
		// A's API port is public: clients reach it without SVIDs. Its
		// identity is used only outbound, towards C.
		serverTLS = spiffetls.ServerTLSConfig(identity, ids.allowed)
	case cfg.PeerAuth == PeerAuthOff:
		s.log.Warn("PEER AUTHENTICATION IS OFF: any workload that holds a user token can call this service; use --peer-auth=mtls or xfcc outside development")
	}

	if s.api, err = httpin.NewServer("api", cfg.Listen, httpin.NewAPI(api), httpin.DefaultLimits(), serverTLS, s.log); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func(context.Context) error { return s.api.Close() })
	s.adminH = httpin.NewAdmin(checks, metrics.Handler())
	if s.admin, err = httpin.NewServer("admin", cfg.AdminListen, s.adminH, httpin.DefaultLimits(), nil, s.log); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func(context.Context) error { return s.admin.Close() })
	return s, nil
}

// workloadAPIStartTimeout bounds the wait for the first SVID.
const workloadAPIStartTimeout = 30 * time.Second

// openIdentity returns this workload's SVID source for mtls.
func (s *Service) openIdentity(ctx context.Context, cfg Config, opts Options) (spiffetls.Source, error) {
	switch {
	case opts.Identity != nil:
		return opts.Identity, nil
	case cfg.SPIFFESocket != "":
		// The first SVID must arrive at startup; an agent that never
		// answers should fail the pod, not hang it.
		startCtx, cancel := context.WithTimeout(ctx, workloadAPIStartTimeout)
		defer cancel()
		src, err := spiffetls.NewWorkloadSource(startCtx, cfg.SPIFFESocket)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func(context.Context) error { return src.Close() })
		return src, nil
	default:
		src, err := spiffetls.NewFileSource(spiffetls.Files{Cert: cfg.TLSCert, Key: cfg.TLSKey, Bundle: cfg.TLSBundle}, s.log)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func(context.Context) error { return src.Close() })
		return src, nil
	}
}

// APIAddr is the API server's bound address.
func (s *Service) APIAddr() string { return s.api.Addr() }

// AdminAddr is the admin server's bound address.
func (s *Service) AdminAddr() string { return s.admin.Addr() }

// Run serves until ctx ends, then drains: readiness fails first, in-flight
// requests get the shutdown timeout to finish, and the process exits cleanly.
func (s *Service) Run(ctx context.Context) error {
	defer s.close(context.WithoutCancel(ctx))
	s.log.Info("starting", slog.String("api", s.APIAddr()), slog.String("admin", s.AdminAddr()))

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	start := func(f func(context.Context) error, c context.Context) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(c); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	// The admin server outlives the API's drain so probes see "draining".
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	start(s.verifier.Run, runCtx)
	start(func(c context.Context) error { return s.admin.Run(c, time.Second) }, adminCtx)
	start(func(c context.Context) error {
		err := s.api.Run(c, s.cfg.ShutdownTimeout)
		stopAdmin()
		return err
	}, runCtx)

	go func() {
		<-runCtx.Done()
		s.adminH.Drain()
	}()
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		return err
	}
	s.log.Info("stopped")
	return nil
}

func (s *Service) close(ctx context.Context) {
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](ctx); err != nil {
			s.log.Warn("close", slog.String("error", err.Error()))
		}
	}
	s.closers = nil
}

// identities are the SPIFFE IDs one role deals with.
type identities struct {
	self     spiffeid.ID
	allowed  []spiffeid.ID
	upstream spiffeid.ID
}

// resolveIdentities derives the chain's secure default from role, trust
// domain and namespace: C admits A, B admits C, A behind the mesh admits
// the ingress gateway; A expects C upstream, C expects B.
func resolveIdentities(cfg Config) (identities, error) {
	var ids identities
	var err error
	sa := cfg.ServiceAccount
	if sa == "" {
		sa = serviceName(cfg.Role)
	}
	if ids.self, err = spiffetls.ID(cfg.TrustDomain, cfg.Namespace, sa); err != nil {
		return ids, err
	}
	if cfg.UpstreamPeer != "" {
		if ids.upstream, err = spiffeid.FromString(cfg.UpstreamPeer); err != nil {
			return ids, fmt.Errorf("--upstream-peer: %w", err)
		}
	} else if next := upstreamName(cfg.Role); next != "" {
		if ids.upstream, err = spiffetls.ID(cfg.TrustDomain, cfg.Namespace, next); err != nil {
			return ids, err
		}
	}
	for _, p := range cfg.AllowedPeers {
		id, err := spiffeid.FromString(p)
		if err != nil {
			return ids, fmt.Errorf("--allow-peer %q: %w", p, err)
		}
		ids.allowed = append(ids.allowed, id)
	}
	if len(ids.allowed) > 0 {
		return ids, nil
	}
	var caller spiffeid.ID
	switch cfg.Role {
	case RoleA:
		caller, err = spiffetls.IngressGatewayID(cfg.TrustDomain)
	case RoleB:
		caller, err = spiffetls.ID(cfg.TrustDomain, cfg.Namespace, serviceName(RoleC))
	case RoleC:
		caller, err = spiffetls.ID(cfg.TrustDomain, cfg.Namespace, serviceName(RoleA))
	}
	ids.allowed = []spiffeid.ID{caller}
	return ids, err
}

// serviceName is a role's workload (and service account) name.
func serviceName(role string) string { return "service-" + role }

// upstreamName is the workload a role calls, or "" for B.
func upstreamName(role string) string {
	switch role {
	case RoleA:
		return serviceName(RoleC)
	case RoleC:
		return serviceName(RoleB)
	}
	return ""
}

// withTimeout bounds every call to a product source, so a stuck query
// cannot outlive the request budget of the hop above.
type withTimeout struct {
	ports.ProductSource
	timeout time.Duration
}

func (w withTimeout) ListProducts(ctx context.Context) ([]domain.Product, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	return w.ProductSource.ListProducts(ctx)
}

// WaitReady polls the role's readiness until it passes or timeout elapses.
func (s *Service) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := s.verifier.Ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("role %s not ready: %w", s.cfg.Role, err)
		case <-tick.C:
		}
	}
}
