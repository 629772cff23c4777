package app

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"golang.org/x/sync/errgroup"

	"github.com/trustchain/trustchain/adapters/dpop"
	"github.com/trustchain/trustchain/adapters/goruntime"
	"github.com/trustchain/trustchain/adapters/httpapi/client"
	"github.com/trustchain/trustchain/adapters/httpapi/server"
	"github.com/trustchain/trustchain/adapters/httpapi/wire"
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

// Deps are the parts of a role that are not configuration: where output
// goes, and the parts the demo and the tests supply ready-made. A part
// left nil is built from the configuration.
type Deps struct {
	Stdout, Stderr io.Writer
	Build          BuildInfo

	// Logger replaces the logger built from the config.
	Logger *slog.Logger
	// Source makes the store role serve this store instead of MySQL.
	Source ports.ProductSource
	// Identity supplies the SVID and bundle for mtls instead of files or
	// the Workload API.
	Identity spiffetls.Source
	// TraceExporter and TraceStdout receive finished spans.
	TraceExporter sdktrace.SpanExporter
	TraceStdout   io.Writer
	// Clock stamps the envelope; default the system clock.
	Clock ports.Clock
	// runtime is what Serve fitted the process to; without it (the demo,
	// tests) New reads the limits in effect.
	runtime goruntime.Limits
}

// Serve runs one role until ctx ends.
func Serve(ctx context.Context, cfg Config, deps Deps) (err error) {
	if deps.runtime, err = goruntime.Fit(); err != nil {
		return err
	}
	svc, err := New(ctx, cfg, deps)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

// Service is one running role: its servers and what they depend on.
type Service struct {
	cfg     Config
	log     *slog.Logger
	api     *server.Server
	admin   *server.Server
	adminH  *server.Admin
	deps    []*dependency
	closers []func(context.Context) error
}

// telemetryParts are a role's metrics and tracing.
type telemetryParts struct {
	metrics *telemetry.Metrics
	tracing *telemetry.Tracing
}

// New builds a role from a config and binds its ports. It does no other
// I/O: dependencies come up in Run, so a role that cannot reach them yet
// still serves its admin port and stops on SIGTERM.
func New(ctx context.Context, cfg Config, deps Deps) (svc *Service, err error) {
	warnings, err := cfg.validate(deps)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg}
	defer func() {
		if err != nil {
			s.close(context.WithoutCancel(ctx))
		}
	}()
	if s.log, err = newLogger(cfg, deps); err != nil {
		return nil, err
	}
	for _, w := range warnings {
		s.log.Warn(w)
	}
	tel, err := s.newTelemetry(ctx, cfg, deps)
	if err != nil {
		return nil, err
	}
	ids, err := resolveIdentities(cfg)
	if err != nil {
		return nil, err
	}
	identity, err := s.openIdentity(ctx, cfg, deps, ids.self, tel)
	if err != nil {
		return nil, err
	}
	verifier, err := s.newVerifier(cfg, tel)
	if err != nil {
		return nil, err
	}
	source, err := s.newSource(cfg, deps, tel, identity, ids)
	if err != nil {
		return nil, err
	}
	peer, serverTLS := s.newPeerAuth(cfg, ids, identity, tel)
	rt := cmp.Or(deps.runtime, goruntime.Current())
	var adm *server.Admission
	shed := tel.metrics.Admission(server.ShedReasons(), func() (int, int64) { return adm.Inflight() }, func() (int, int64) { return adm.Bound() })
	adm = server.NewAdmission(server.AdmissionConfig{MemoryLimit: rt.MemoryBytes, MaxInflight: cfg.MaxInflight, MaxLimit: cfg.MaxPageSize, OnShed: shed})
	bound, _ := adm.Bound()
	s.log.Info("runtime limits", append(rt.Attrs(), slog.Int("max_inflight", bound))...)
	proofs, err := newDPoP(cfg, tel)
	if err != nil {
		return nil, err
	}
	api := server.NewAPI(server.APIConfig{
		Source:        source,
		Verifier:      verifier,
		RequiredScope: cfg.RequiredScope,
		Peer:          peer,
		Envelope:      cfg.hop().Envelope,
		Paging:        server.Paging{DefaultLimit: cfg.PageSize, MaxLimit: cfg.MaxPageSize},
		Clock:         orClock(deps.Clock),
		Logger:        s.log,
		Wrap:          tel.tracing.ServerMiddleware,
		Observe: func(ctx context.Context, o server.Outcome) {
			tel.metrics.ObserveRequest(ctx, o.Route, o.Status, o.Elapsed)
			tel.tracing.Annotate(ctx, o.Status, o.Reason, o.RequestID)
		},
		OnTokenCheck: tel.metrics.TokenCheck,
		OnPeerRefused: func() {
			tel.metrics.PeerRefused(cfg.PeerAuth)
		},
		Admission: adm,
		DPoP:      proofs,
	})
	return s, s.newServers(cfg, api, serverTLS, tel)
}

func newLogger(cfg Config, deps Deps) (*slog.Logger, error) {
	if deps.Logger != nil {
		return deps.Logger, nil
	}
	level, err := telemetry.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	return telemetry.NewLogger(deps.Stderr, cfg.LogFormat, level, cfg.Role)
}

// parseLevel checks a log level for config validation.
func parseLevel(s string) error {
	_, err := telemetry.ParseLevel(s)
	return err
}

func orClock(c ports.Clock) ports.Clock {
	if c == nil {
		return ports.ClockFunc(time.Now)
	}
	return c
}

func (s *Service) newTelemetry(ctx context.Context, cfg Config, deps Deps) (telemetryParts, error) {
	metrics := telemetry.NewMetrics(telemetry.MetricsConfig{
		Role:          cfg.Role,
		Build:         telemetry.BuildInfo{Version: deps.Build.Version, Commit: deps.Build.Commit},
		Routes:        server.Routes(),
		UpstreamKinds: wire.UpstreamKinds(),
	})
	tracing, err := telemetry.NewTracing(ctx, telemetry.TracingConfig{
		ServiceName:    cfg.hop().ServiceAccount,
		ServiceVersion: deps.Build.Version,
		OTLP:           cfg.OTLPEndpoint != "" || cfg.OTLPTracesEndpoint != "",
		Protocol:       cfg.OTLPProtocol,
		Flags:          cfg.tracingFlags(),
		Stdout:         deps.TraceStdout,
		Exporter:       deps.TraceExporter,
		Logger:         s.log,
		OnExportError:  metrics.TraceExportFailed,
	})
	if err != nil {
		return telemetryParts{}, fmt.Errorf("set up tracing: %w", err)
	}
	s.closers = append(s.closers, tracing.Shutdown)
	return telemetryParts{metrics: metrics, tracing: tracing}, nil
}

// tracingFlags hands the SDK the tracing settings given on the command
// line; those from the environment the SDK reads itself. Each group goes
// whole, so that within it the spec's precedence holds as it does for the
// variables (the traces endpoint over the base one, the service name over
// the resource attributes).
func (c Config) tracingFlags() telemetry.TracingFlags {
	given := func(names ...string) bool {
		return slices.ContainsFunc(names, func(n string) bool { return c.CommandLine[n] })
	}
	var f telemetry.TracingFlags
	if given("otlp-endpoint", "otlp-traces-endpoint") {
		f.Endpoint, f.TracesEndpoint = c.OTLPEndpoint, c.OTLPTracesEndpoint
	}
	if given("traces-sampler", "traces-sampler-arg") {
		f.Sampler, f.SamplerArg = c.TracesSampler, c.TracesSamplerArg
	}
	if given("otel-service-name", "otel-resource-attributes") {
		f.ServiceName, f.ResourceAttributes = c.OTelServiceName, c.OTelResourceAttrs
	}
	return f
}

// newVerifier builds the token check and the dependency that loads the
// issuer's keys.
func (s *Service) newVerifier(cfg Config, tel telemetryParts) (*oidc.Verifier, error) {
	hit, miss, evict := tel.metrics.TokenCache()
	verifier, err := oidc.New(oidc.Config{
		Issuer:    cfg.OIDCIssuer,
		Audience:  cfg.OIDCAudience,
		CacheSize: cfg.TokenCacheSize,
		Cache:     oidc.CacheHooks{Hit: hit, Miss: miss, Evict: evict},
		Logger:    s.log,
		OnRefresh: tel.metrics.JWKSRefresh,

		ScopeClaims: cfg.ScopeClaims, RequireATJWT: cfg.RequireATJWT, ClockSkew: cfg.ClockSkew,
		SigningAlgs: cfg.SigningAlgs, RefreshInterval: cfg.JWKSRefresh,
	})
	if err != nil {
		return nil, fmt.Errorf("set up token verifier: %w", err)
	}
	tel.metrics.TokenCacheSize(verifier.CacheLen)
	if cfg.RequiredScope == "" {
		s.log.Warn("NO SCOPE IS REQUIRED: any token issued for the audience can call this service; set --required-scope outside development")
	}
	s.deps = append(s.deps, &dependency{
		name:    "oidc",
		connect: verifier.Start,
		keep:    verifier.Refresh,
		onState: func(up bool) { tel.metrics.DependencyUp("oidc", up) },
	})
	return verifier, nil
}

// newDPoP is the edge's proof check, with its replay store in the metrics;
// the inner hops have none.
func newDPoP(cfg Config, tel telemetryParts) (server.DPoP, error) {
	if !cfg.hop().IsEdge() {
		return server.DPoP{}, nil
	}
	var v *dpop.Verifier
	evicted := tel.metrics.DPoPReplayStore(func() int { return v.ReplayLen() })
	v, err := dpop.New(dpop.Config{MaxAge: cfg.DPoPMaxAge, NonceSecret: []byte(cfg.DPoPNonce), OnExpire: evicted})
	return server.DPoP{Mode: cfg.DPoP, PublicURL: cfg.PublicURL, Proofs: v, Algs: dpop.AlgorithmsParam()}, err
}

// newSource is where the role's products come from: the store on the role
// that reads it, the next hop's client on the others.
func (s *Service) newSource(cfg Config, deps Deps, tel telemetryParts, identity spiffetls.Source, ids identities) (ports.ProductSource, error) {
	h := cfg.hop()
	if !h.ReadsStore() {
		return s.newUpstream(cfg, tel, identity, ids)
	}
	if deps.Source != nil {
		return withTimeout{source: deps.Source, timeout: cfg.QueryTimeout}, nil
	}
	db, err := mysql.Open(cfg.MySQLDSN, mysql.PoolConfig{MaxOpenConns: cfg.MySQLMaxOpen, MaxIdleConns: cfg.MySQLMaxIdle, Log: s.log})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func(context.Context) error { return db.Close() })
	host, port := splitHostPort(db.Addr())
	db = db.WithQueryHooks(tel.metrics.QueryHook(), tel.tracing.QueryHook(telemetry.DBInfo{Name: db.Name(), Address: host, Port: port}))
	if err := tel.metrics.RegisterDB(db.Bun().DB, db.Name()); err != nil {
		return nil, err
	}
	s.deps = append(s.deps, &dependency{
		name: "mysql",
		connect: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, mysqlConnectTimeout)
			defer cancel()
			version, err := db.Connect(ctx)
			if err == nil {
				s.log.Info("mysql answers", slog.String("version", version), slog.String("database", db.Name()))
				err = db.CheckSchema(ctx) // a missing schema is a readiness cause too
			}
			return err
		},
		check:   db.Ready,
		onState: func(up bool) { tel.metrics.DependencyUp("mysql", up) },
	})
	return withTimeout{source: mysql.NewRepository(db), timeout: cfg.QueryTimeout}, nil
}

// mysqlConnectTimeout bounds one attempt at reaching MySQL.
const mysqlConnectTimeout = 5 * time.Second

func splitHostPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

// newUpstream is the client for the next hop, which must present the
// next hop's identity when mtls is on.
func (s *Service) newUpstream(cfg Config, tel telemetryParts, identity spiffetls.Source, ids identities) (ports.ProductSource, error) {
	next, _ := domain.HopOf(cfg.hop().Calls)
	var clientTLS *tls.Config
	if identity != nil {
		clientTLS = spiffetls.ClientTLSConfig(identity, ids.upstream)
	}
	upstream, err := client.New(client.Config{
		URL:                 cfg.Upstream,
		Timeout:             cfg.EffectiveUpstreamTimeout(),
		MaxIdleConnsPerHost: cfg.UpstreamConns,
		TLS:                 clientTLS,
		WrapTransport:       tel.tracing.ClientTransport,
		Propagate:           tel.tracing.Inject(),
		Observe:             tel.metrics.UpstreamObserver(next.ServiceAccount),
	})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func(context.Context) error { upstream.CloseIdleConnections(); return nil })
	return upstream, nil
}

// newPeerAuth picks the one peer check for the identity mode: XFCC from the
// proxy in front, or native mTLS on the API port, whose handshake admits
// only allowed callers and whose check then names them (except at the
// edge, whose clients have no SVIDs: its identity is used only towards the
// next hop). With peer authentication off there is none.
func (s *Service) newPeerAuth(cfg Config, ids identities, identity spiffetls.Source, tel telemetryParts) (server.PeerCheck, *tls.Config) {
	switch {
	case cfg.PeerAuth == PeerAuthXFCC:
		return xfcc.Authorizer{Allowed: ids.allowed, TrustedProxies: ids.proxies}, nil
	case cfg.PeerAuth == PeerAuthMTLS && !cfg.hop().IsEdge():
		return spiffetls.VerifiedPeer{}, spiffetls.ServerTLSConfig(identity, ids.allowed, func(r spiffetls.Refusal) {
			tel.metrics.PeerRefused(PeerAuthMTLS)
			s.log.Warn("peer refused", slog.String("mode", PeerAuthMTLS), slog.String("peer", r.Peer), slog.String("error", r.Err.Error()))
		})
	case cfg.PeerAuth == PeerAuthOff:
		s.log.Warn("PEER AUTHENTICATION IS OFF: any workload that holds a user token can call this service; use --peer-auth=mtls or xfcc outside development")
	}
	return nil, nil
}

// adminMaxConns caps the admin port's connections on its own: probes and
// scrapes need few, and a flood on the API port must not take them.
const adminMaxConns = 64

func (s *Service) newServers(cfg Config, api http.Handler, serverTLS *tls.Config, tel telemetryParts) error {
	limits := server.DefaultLimits(cfg.budget())
	limits.MaxConns = cfg.MaxConns
	silent := tel.metrics.SilentConnectionsClosed("api", "admin")
	limits.OnSilentClosed = silent["api"]
	if limits.MaxConns == 0 {
		limits.MaxConns = server.DefaultMaxConns()
	}
	var err error
	if s.api, err = server.NewServer("api", cfg.Listen, api, limits, serverTLS, s.log); err != nil {
		return err
	}
	s.closers = append(s.closers, func(context.Context) error { return s.api.Close() })
	tel.metrics.ServerConnections(func() (uint64, int) {
		accepted, open, _ := s.api.Connections()
		return accepted, open
	})
	checks := map[string]server.ReadyCheck{}
	for _, d := range s.deps {
		checks[d.name] = d.ready
	}
	s.adminH = server.NewAdmin(server.AdminConfig{Checks: checks, Metrics: tel.metrics.Handler(), Pprof: cfg.Pprof})
	adminLimits := server.DefaultLimits(0)
	adminLimits.MaxConns, adminLimits.OnSilentClosed = adminMaxConns, silent["admin"]
	if s.admin, err = server.NewServer("admin", cfg.AdminListen, s.adminH, adminLimits, nil, s.log); err != nil {
		return err
	}
	s.closers = append(s.closers, func(context.Context) error { return s.admin.Close() })
	return nil
}

// APIAddr is the API server's bound address.
func (s *Service) APIAddr() string { return s.api.Addr() }

// AdminAddr is the admin server's bound address.
func (s *Service) AdminAddr() string { return s.admin.Addr() }

// Run serves until ctx ends, bringing dependencies up meanwhile, then
// drains: readiness fails first, in-flight requests get the shutdown
// timeout to finish, and the process exits cleanly.
func (s *Service) Run(ctx context.Context) error {
	defer s.close(context.WithoutCancel(ctx))
	s.log.Info("starting", slog.String("api", s.APIAddr()), slog.String("admin", s.AdminAddr()))

	// The admin server outlives the API's drain, so probes see "draining".
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	g, gctx := errgroup.WithContext(ctx)
	for _, d := range s.deps {
		g.Go(func() error { d.run(gctx, s.log); return nil })
	}
	g.Go(func() error {
		<-gctx.Done()
		s.adminH.Drain()
		return nil
	})
	g.Go(func() error {
		defer stopAdmin()
		return s.api.Run(gctx, s.cfg.ShutdownTimeout)
	})
	g.Go(func() error { return s.admin.Run(adminCtx, time.Second) })
	if err := g.Wait(); err != nil {
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

// Ready reports whether every dependency serves, and why not.
func (s *Service) Ready(ctx context.Context) error {
	var errs []error
	for _, d := range s.deps {
		if err := d.ready(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.name, err))
		}
	}
	return errors.Join(errs...)
}

// WaitReady polls the role's readiness until it passes or timeout elapses.
func (s *Service) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := s.Ready(ctx)
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

// withTimeout bounds every call to the store, so a stuck query cannot
// outlive the request budget of the hop above. Each port method is written
// out: a new one must choose its bound, not inherit none.
type withTimeout struct {
	source  ports.ProductSource
	timeout time.Duration
}

func (w withTimeout) ListProducts(ctx context.Context, req domain.PageRequest) (domain.Page, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	return w.source.ListProducts(ctx, req)
}

func (w withTimeout) GetProduct(ctx context.Context, id int64) (domain.Product, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	return w.source.GetProduct(ctx, id)
}
