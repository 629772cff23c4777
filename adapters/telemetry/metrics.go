package telemetry

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uptrace/bun"
	"go.opentelemetry.io/otel/trace"

	"github.com/trustchain/trustchain/domain"
)

const namespace = "trustchain"

// Token check results.
const (
	TokenOK       = "ok"
	TokenRejected = "rejected"
	reasonOK      = "ok"
	reasonOther   = "other"
)

// JWKS refresh results, as the OIDC verifier's hook reports them.
const (
	JWKSOK          = "ok"
	JWKSError       = "error"
	JWKSRateLimited = "rate_limited"
)

// DurationBuckets are the bounds of every duration histogram: a fixed
// ladder plus each budget in the chain's table (domain.Chain), so "over
// budget" is a bucket boundary, not an interpolation, and a new budget
// brings its own bucket.
var DurationBuckets = durationBuckets(domain.Chain())

// bucketLadder spans a fast answer to a hung one; the budgets are merged
// into it.
var bucketLadder = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 10}

// durationBuckets merges the hops' budgets into the ladder, sorted and
// without duplicates, and keeps one bound above the largest budget so that
// time spent past it still lands in a bucket of its own.
func durationBuckets(hops []domain.Hop) []float64 {
	bounds := append([]float64(nil), bucketLadder...)
	largest := 0.0
	for _, h := range hops {
		b := h.Budget.Seconds()
		bounds = append(bounds, b)
		largest = max(largest, b)
	}
	if top := bucketLadder[len(bucketLadder)-1]; largest >= top {
		bounds = append(bounds, largest*1.25)
	}
	slices.Sort(bounds)
	return slices.Compact(bounds)
}

// BuildInfo identifies the running binary in trustchain_build_info.
type BuildInfo struct {
	Version string
	Commit  string
}

// MetricsConfig names what one role's registry reports on.
type MetricsConfig struct {
	Role  string
	Build BuildInfo
	// Routes and UpstreamKinds are the bounded label values of the
	// request and upstream series; anything else is counted as "other".
	Routes        []string
	UpstreamKinds []string
}

// Metrics owns one process role's Prometheus registry and the instruments on
// it. The registry is private so that tests and the demo's three in-process
// roles never collide on the global default registry.
type Metrics struct {
	role    string
	reg     *prometheus.Registry
	handler http.Handler

	httpRequests     *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec
	upstreamRequests *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec
	tokenChecks      *prometheus.CounterVec
	jwksRefreshes    *prometheus.CounterVec
	peerRefusals     *prometheus.CounterVec
	dbQueryDuration  *prometheus.HistogramVec
	dependencyUp     *prometheus.GaugeVec
	traceExportErrs  prometheus.Counter
	cacheRequests    *prometheus.CounterVec
	cacheEvictions   prometheus.Counter

	routes map[string]bool
	kinds  map[string]bool
	// The children touched on every request, resolved once per label set.
	requestSeries  memo[requestKey, seriesPair]
	upstreamSeries memo[upstreamKey, seriesPair]
	dbSeries       memo[string, prometheus.Observer]
	// tokenOK is the series of every accepted token, resolved once: it is
	// touched on every request of every hop.
	tokenOK prometheus.Counter
}

// NewMetrics builds the registry for one role. Every trustchain_* series
// carries role as a constant label, so dashboards can tell A, B and C apart
// even when one Prometheus scrapes all three.
func NewMetrics(cfg MetricsConfig) *Metrics {
	reg := prometheus.NewRegistry()
	roleLabel := prometheus.Labels{"role": cfg.Role}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help, ConstLabels: roleLabel}, labels)
	}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, ConstLabels: roleLabel, Buckets: DurationBuckets}, labels)
	}
	m := &Metrics{
		role: cfg.Role,
		reg:  reg,
		httpRequests: counter("http_requests_total",
			"Inbound HTTP requests by matched route and status class.", "route", "code_class"),
		httpDuration: histogram("http_request_duration_seconds",
			"Time to serve inbound HTTP requests.", "route", "code_class"),
		upstreamRequests: counter("upstream_requests_total",
			"Calls to the next hop by outcome.", "upstream", "code_class", "error"),
		upstreamDuration: histogram("upstream_request_duration_seconds",
			"Time a call to the next hop took, answer read.", "upstream", "code_class", "error"),
		tokenChecks: counter("token_checks_total",
			"Bearer token checks by result and refusal reason.", "result", "reason"),
		jwksRefreshes: counter("jwks_refreshes_total",
			"Attempts to refresh the issuer's signing keys.", "result"),
		peerRefusals: counter("peer_refusals_total",
			"Calls refused because the calling workload is not allowed, by how it was identified.", "mode"),
		dbQueryDuration: histogram("db_query_duration_seconds",
			"Time spent in SQL queries by operation.", "operation"),
		dependencyUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "dependency_up",
			Help: "1 when a dependency the role needs to serve answers, 0 when it does not.", ConstLabels: roleLabel}, []string{"dependency"}),
		traceExportErrs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "trace_export_errors_total",
			Help: "Batches of spans the trace exporter failed to send.", ConstLabels: roleLabel}),
		cacheRequests: counter("token_cache_requests_total",
			"Lookups in the verified-token cache by result.", "result"),
		cacheEvictions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "token_cache_evictions_total",
			Help: "Entries the verified-token cache dropped to stay within its size.", ConstLabels: roleLabel}),
		routes: set(cfg.Routes),
		kinds:  set(cfg.UpstreamKinds),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{
			"role": cfg.Role, "version": cfg.Build.Version, "commit": cfg.Build.Commit, "goversion": runtime.Version(),
		},
	})
	buildInfo.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		m.httpRequests, m.httpDuration,
		m.upstreamRequests, m.upstreamDuration,
		m.tokenChecks, m.jwksRefreshes, m.peerRefusals,
		m.dbQueryDuration, m.dependencyUp, m.traceExportErrs,
		m.cacheRequests, m.cacheEvictions,
	)
	// Series that exist from the start make rate() and alerts work before the
	// first event; the sets are small and fixed.
	m.tokenOK = m.tokenChecks.WithLabelValues(TokenOK, reasonOK)
	for _, r := range domain.TokenReasons() {
		m.tokenChecks.WithLabelValues(TokenRejected, r)
	}
	for _, r := range []string{JWKSOK, JWKSError, JWKSRateLimited} {
		m.jwksRefreshes.WithLabelValues(r)
	}
	m.cacheRequests.WithLabelValues("hit")
	m.cacheRequests.WithLabelValues("miss")
	m.requestSeries.make = func(k requestKey) seriesPair {
		return seriesPair{m.httpRequests.WithLabelValues(k.route, k.class), m.httpDuration.WithLabelValues(k.route, k.class)}
	}
	m.upstreamSeries.make = func(k upstreamKey) seriesPair {
		return seriesPair{m.upstreamRequests.WithLabelValues(k.upstream, k.class, k.kind), m.upstreamDuration.WithLabelValues(k.upstream, k.class, k.kind)}
	}
	m.dbSeries.make = func(op string) prometheus.Observer { return m.dbQueryDuration.WithLabelValues(op) }
	// OpenMetrics carries the exemplars that link a slow bucket to its trace.
	m.handler = promhttp.InstrumentMetricHandler(reg,
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true}))
	return m
}

func set(values []string) map[string]bool {
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[v] = true
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format (or
// OpenMetrics, when the scraper asks for it); mount it at /metrics on the
// admin server.
func (m *Metrics) Handler() http.Handler { return m.handler }

// ObserveRequest counts and times one answered inbound request. route must
// be a route name (never a raw path); the trace in ctx, if sampled, becomes
// the duration's exemplar.
func (m *Metrics) ObserveRequest(ctx context.Context, route string, status int, elapsed time.Duration) {
	if !m.routes[route] {
		route = reasonOther
	}
	series := m.requestSeries.get(requestKey{route, codeClass(status)})
	series.count.Inc()
	observe(ctx, series.duration, elapsed)
}

type requestKey struct{ route, class string }

type upstreamKey struct{ upstream, class, kind string }

// seriesPair is a counter and the histogram beside it.
type seriesPair struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// UpstreamObserver returns the hook the client for upstream reports each
// call's outcome through: status 0 when no answer came, and the outcome
// kind ("none", "timeout", …).
func (m *Metrics) UpstreamObserver(upstream string) func(ctx context.Context, status int, kind string, elapsed time.Duration) {
	return func(ctx context.Context, status int, kind string, elapsed time.Duration) {
		class := "none"
		if status != 0 {
			class = codeClass(status)
		}
		if !m.kinds[kind] {
			kind = reasonOther
		}
		series := m.upstreamSeries.get(upstreamKey{upstream, class, kind})
		series.count.Inc()
		observe(ctx, series.duration, elapsed)
	}
}

// observe records d with the sampled trace in ctx as its exemplar.
func observe(ctx context.Context, o prometheus.Observer, d time.Duration) {
	sc := trace.SpanContextFromContext(ctx)
	if eo, ok := o.(prometheus.ExemplarObserver); ok && sc.IsSampled() {
		eo.ObserveWithExemplar(d.Seconds(), prometheus.Labels{"trace_id": sc.TraceID().String()})
		return
	}
	o.Observe(d.Seconds())
}

var codeClasses = [...]string{"", "1xx", "2xx", "3xx", "4xx", "5xx"}

// codeClass turns a status into "2xx" and friends.
func codeClass(code int) string {
	if code < 100 || code > 599 {
		return reasonOther
	}
	return codeClasses[code/100]
}

// TokenCheck records the outcome of checking one request's bearer token:
// reason is "" for an accepted token, else a domain refusal reason.
func (m *Metrics) TokenCheck(reason string) {
	if reason == "" {
		m.tokenOK.Inc()
		return
	}
	m.tokenChecks.WithLabelValues(TokenRejected, boundedReason(reason)).Inc()
}

func boundedReason(reason string) string {
	for _, known := range domain.TokenReasons() {
		if reason == known {
			return reason
		}
	}
	return reasonOther
}

// JWKSRefresh records one key refresh attempt; its signature matches the
// OIDC verifier's hook. Results outside JWKSOK, JWKSError and
// JWKSRateLimited are counted as JWKSError so the label stays bounded.
func (m *Metrics) JWKSRefresh(result string) {
	switch result {
	case JWKSOK, JWKSRateLimited:
	default:
		result = JWKSError
	}
	m.jwksRefreshes.WithLabelValues(result).Inc()
}

// PeerRefused records a caller refused by the workload allow-list. mode is
// how peers are identified (mtls or xfcc), a value from config and never
// from the request.
func (m *Metrics) PeerRefused(mode string) {
	m.peerRefusals.WithLabelValues(mode).Inc()
}

// DependencyUp records whether a dependency answers.
func (m *Metrics) DependencyUp(name string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.dependencyUp.WithLabelValues(name).Set(v)
}

// TraceExportFailed counts a batch of spans the exporter could not send.
func (m *Metrics) TraceExportFailed() { m.traceExportErrs.Inc() }

// TokenCache returns the hooks the verified-token cache reports hits,
// misses and evictions through.
func (m *Metrics) TokenCache() (hit, miss, evicted func()) {
	hits, misses := m.cacheRequests.WithLabelValues("hit"), m.cacheRequests.WithLabelValues("miss")
	return hits.Inc, misses.Inc, m.cacheEvictions.Inc
}

// TokenCacheSize reports the number of cached tokens at scrape time.
func (m *Metrics) TokenCacheSize(size func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "token_cache_entries",
		Help:        "Verified tokens the cache holds now.",
		ConstLabels: prometheus.Labels{"role": m.role},
	}, func() float64 { return float64(size()) }))
}

// ServerConnections reports the API port's connections at scrape time:
// trustchain_http_connections_accepted_total and
// trustchain_http_connections_open.
func (m *Metrics) ServerConnections(stats func() (accepted uint64, open int)) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_connections_accepted_total",
			Help:        "Connections the API port accepted; a rate that follows the request rate means callers do not keep connections alive.",
			ConstLabels: prometheus.Labels{"role": m.role},
		}, func() float64 { a, _ := stats(); return float64(a) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "http_connections_open",
			Help:        "Connections open on the API port now; at --max-connections, idle ones are closed.",
			ConstLabels: prometheus.Labels{"role": m.role},
		}, func() float64 { _, o := stats(); return float64(o) }),
	)
}

// RegisterDB exports the pool's sql.DBStats as go_sql_* series with the
// real database name and the role.
func (m *Metrics) RegisterDB(db *sql.DB, dbName string) error {
	c := collectors.NewDBStatsCollector(db, dbName)
	if err := prometheus.WrapRegistererWith(prometheus.Labels{"role": m.role}, m.reg).Register(c); err != nil {
		return fmt.Errorf("register db stats collector: %w", err)
	}
	return nil
}

// ObserveDBQuery records one SQL query's duration. operation is the SQL verb;
// anything unusual is counted as "other".
func (m *Metrics) ObserveDBQuery(ctx context.Context, operation string, d time.Duration) {
	observe(ctx, m.dbSeries.get(sqlOperation(operation)), d)
}

func sqlOperation(op string) string {
	switch op = strings.ToLower(op); op {
	case "select", "insert", "update", "delete", "create", "drop", "alter",
		"truncate", "begin", "commit", "rollback":
		return op
	}
	return reasonOther
}

// QueryHook times every query bun runs into
// trustchain_db_query_duration_seconds.
func (m *Metrics) QueryHook() bun.QueryHook { return dbQueryHook{m} }

type dbQueryHook struct{ m *Metrics }

func (h dbQueryHook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (h dbQueryHook) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	h.m.ObserveDBQuery(ctx, e.Operation(), time.Since(e.StartTime))
}

// Admission reports a hop's admission: the shed counter
// trustchain_requests_shed_total{reason} (every reason in reasons exists
// from the start), and, read at scrape time, the requests in flight, their
// weight and the bound (trustchain_inflight_requests,
// trustchain_admission_inflight_bytes, trustchain_admission_bound_bytes and
// trustchain_admission_bound_requests). It returns the hook that counts a
// shed request.
func (m *Metrics) Admission(reasons []string, inflight func() (int, int64), bound func() (int, int64)) func(reason string) {
	label := prometheus.Labels{"role": m.role}
	shed := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "requests_shed_total",
		Help: "Requests refused with 503 overloaded because the hop had no room for them, by reason.", ConstLabels: label}, []string{"reason"})
	gauge := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help, ConstLabels: label}, v)
	}
	m.reg.MustRegister(shed,
		gauge("inflight_requests", "API requests admitted and not yet answered.",
			func() float64 { n, _ := inflight(); return float64(n) }),
		gauge("admission_inflight_bytes", "Worst-case bytes the admitted requests may hold, by their weights.",
			func() float64 { _, b := inflight(); return float64(b) }),
		gauge("admission_bound_bytes", "Admission's capacity: the worst-case bytes all requests in flight may hold.",
			func() float64 { _, b := bound(); return float64(b) }),
		gauge("admission_bound_requests", "Admission's capacity in requests for the largest page.",
			func() float64 { n, _ := bound(); return float64(n) }),
	)
	known := set(reasons)
	for _, r := range reasons {
		shed.WithLabelValues(r)
	}
	return func(reason string) {
		if !known[reason] {
			reason = reasonOther
		}
		shed.WithLabelValues(reason).Inc()
	}
}

// SilentConnectionsClosed returns the hook that counts, by port (api or
// admin), the connections closed at the cap for never having sent a
// complete request header: trustchain_silent_connections_closed_total.
func (m *Metrics) SilentConnectionsClosed(ports ...string) map[string]func() {
	closed := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "silent_connections_closed_total",
		Help:        "Connections closed at the port's cap for never sending a complete request header, by port.",
		ConstLabels: prometheus.Labels{"role": m.role}}, []string{"port"})
	m.reg.MustRegister(closed)
	hooks := make(map[string]func(), len(ports))
	for _, p := range ports {
		hooks[p] = closed.WithLabelValues(p).Inc
	}
	return hooks
}

// SVIDMetrics feed the metrics of the workload's own SPIFFE identity.
type SVIDMetrics struct {
	// Held sets the SVID in use: trustchain_svid_expiry_timestamp_seconds
	// and trustchain_svid_not_before_timestamp_seconds, each labelled with
	// the SPIFFE ID and only for the current one.
	Held func(spiffeID string, notBefore, notAfter time.Time)
	// Rotated counts trustchain_svid_rotations_total.
	Rotated func()
	// RotationFailed counts trustchain_svid_rotation_errors_total and sets
	// trustchain_svid_last_rotation_error_timestamp_seconds.
	RotationFailed func(at time.Time)
}

// SVID registers the SVID metrics, on roles that hold an SVID only: a role
// without one has no expiry to alert on. The time series exist once the
// first SVID is held, so an alert on them cannot fire on a role that has
// never had one (its readiness says so instead).
func (m *Metrics) SVID() SVIDMetrics {
	opts := func(name, help string) prometheus.GaugeOpts {
		return prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help, ConstLabels: prometheus.Labels{"role": m.role}}
	}
	expiry := prometheus.NewGaugeVec(opts("svid_expiry_timestamp_seconds",
		"When the SVID in use expires (unix seconds); the label names its SPIFFE ID."), []string{"spiffe_id"})
	notBefore := prometheus.NewGaugeVec(opts("svid_not_before_timestamp_seconds",
		"When the SVID in use became valid (unix seconds): with the expiry, its lifetime."), []string{"spiffe_id"})
	lastErr := prometheus.NewGauge(opts("svid_last_rotation_error_timestamp_seconds",
		"When getting a new SVID last failed (unix seconds); 0 if it never has."))
	rotations := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "svid_rotations_total",
		Help: "Times the SVID in use was replaced by a new one.", ConstLabels: prometheus.Labels{"role": m.role}})
	errs := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "svid_rotation_errors_total",
		Help: "Failed attempts at getting a new SVID: files that did not load, a Workload API stream that broke.", ConstLabels: prometheus.Labels{"role": m.role}})
	m.reg.MustRegister(expiry, notBefore, lastErr, rotations, errs)
	return SVIDMetrics{
		Held: func(id string, nb, na time.Time) {
			expiry.Reset()
			notBefore.Reset()
			expiry.WithLabelValues(id).Set(float64(na.Unix()))
			notBefore.WithLabelValues(id).Set(float64(nb.Unix()))
		},
		Rotated: rotations.Inc,
		RotationFailed: func(at time.Time) {
			errs.Inc()
			lastErr.Set(float64(at.Unix()))
		},
	}
}

// DPoPReplayStore reports the edge's DPoP jti store:
// trustchain_dpop_replay_entries at scrape time, and
// trustchain_dpop_replay_evictions_total, counted through the hook it
// returns. A store full of live jtis evicts nothing: it refuses, and
// token_checks_total counts those as dpop_replay_store_full.
func (m *Metrics) DPoPReplayStore(size func() int) (evicted func()) {
	evictions := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "dpop_replay_evictions_total",
		Help: "Expired DPoP proof ids the replay store dropped to make room.", ConstLabels: prometheus.Labels{"role": m.role}})
	m.reg.MustRegister(evictions, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "dpop_replay_entries",
		Help:        "DPoP proof ids the replay store holds now.",
		ConstLabels: prometheus.Labels{"role": m.role},
	}, func() float64 { return float64(size()) }))
	return evictions.Inc
}
