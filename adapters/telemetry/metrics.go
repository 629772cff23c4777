package telemetry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uptrace/bun"

	"github.com/trustchain/trustchain/adapters/httpin"
	"github.com/trustchain/trustchain/domain"
)

const namespace = "trustchain"

// RouteOther is the route label for requests that matched no known route:
// the name the API handler gives its catch-all, so scanners' 404s are
// counted, and their spans named, without raw paths.
const RouteOther = httpin.RouteOther

// Token check results and the reasons that are not domain refusal reasons.
const (
	TokenOK       = "ok"
	TokenRejected = "rejected"

	ReasonOK                = "ok"
	ReasonMissing           = "missing"
	ReasonInsufficientScope = "insufficient_scope"
	ReasonNotReady          = "not_ready"
	reasonOther             = "other"
)

// JWKS refresh results, as the OIDC verifier's hook reports them.
const (
	JWKSOK          = "ok"
	JWKSError       = "error"
	JWKSRateLimited = "rate_limited"
)

// knownTokenReasons bounds the reason label: a caller that passes something
// else (say, an error string) gets "other" instead of a new series.
var knownTokenReasons = []string{
	ReasonOK, ReasonMissing, ReasonInsufficientScope, ReasonNotReady,
	domain.ReasonMalformed, domain.ReasonBadAlgorithm, domain.ReasonUnknownKID,
	domain.ReasonBadSignature, domain.ReasonWrongIssuer, domain.ReasonWrongAudience,
	domain.ReasonExpired, domain.ReasonMissingExpiry, domain.ReasonNotYetValid,
	domain.ReasonKeysUnavailable,
}

// BuildInfo identifies the running binary in trustchain_build_info.
type BuildInfo struct {
	Version string
	Commit  string
}

// Metrics owns one process role's Prometheus registry and the instruments on
// it. The registry is private so that tests and the demo's three in-process
// roles never collide on the global default registry.
type Metrics struct {
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
}

// NewMetrics builds the registry for one role. Every trustchain_* series
// carries role as a constant label, so dashboards can tell A, B and C apart
// even when one Prometheus scrapes all three.
func NewMetrics(role string, build BuildInfo) *Metrics {
	reg := prometheus.NewRegistry()
	roleLabel := prometheus.Labels{"role": role}
	f := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: namespace, Name: name, Help: help, ConstLabels: roleLabel}
	}
	h := func(name, help string) prometheus.HistogramOpts {
		return prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, ConstLabels: roleLabel, Buckets: prometheus.DefBuckets}
	}

	m := &Metrics{
		reg: reg,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts(f("http_requests_total",
			"Inbound HTTP requests by matched route and status class.")), []string{"route", "code_class"}),
		httpDuration: prometheus.NewHistogramVec(h("http_request_duration_seconds",
			"Time to serve inbound HTTP requests."), []string{"route", "code_class"}),
		upstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts(f("upstream_requests_total",
			"Requests to the next hop by outcome.")), []string{"upstream", "code_class", "error"}),
		upstreamDuration: prometheus.NewHistogramVec(h("upstream_request_duration_seconds",
			"Time until the next hop's response headers arrived or the call failed."), []string{"upstream", "code_class", "error"}),
		tokenChecks: prometheus.NewCounterVec(prometheus.CounterOpts(f("token_checks_total",
			"Bearer token checks by result and refusal reason.")), []string{"result", "reason"}),
		jwksRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts(f("jwks_refreshes_total",
			"Attempts to refresh the issuer's signing keys.")), []string{"result"}),
		peerRefusals: prometheus.NewCounterVec(prometheus.CounterOpts(f("peer_refusals_total",
			"Requests refused because the calling workload is not allowed.")), []string{"mode"}),
		dbQueryDuration: prometheus.NewHistogramVec(h("db_query_duration_seconds",
			"Time spent in SQL queries by operation."), []string{"operation"}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{
			"role": role, "version": build.Version, "commit": build.Commit, "goversion": runtime.Version(),
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
		m.dbQueryDuration,
	)

	// Series that exist from the start make rate() and alerts work before the
	// first event; the sets are small and fixed.
	m.tokenChecks.WithLabelValues(TokenOK, ReasonOK)
	for _, r := range knownTokenReasons {
		if r != ReasonOK {
			m.tokenChecks.WithLabelValues(TokenRejected, r)
		}
	}
	for _, r := range []string{JWKSOK, JWKSError, JWKSRateLimited} {
		m.jwksRefreshes.WithLabelValues(r)
	}

	// InstrumentMetricHandler registers promhttp's own counters once, here,
	// so Handler can be called any number of times.
	m.handler = promhttp.InstrumentMetricHandler(reg,
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return m
}

// Handler serves the registry in the Prometheus exposition format; mount it
// at /metrics on the admin server.
func (m *Metrics) Handler() http.Handler { return m.handler }

// RegisterDB exports the pool's sql.DBStats as go_sql_* series with
// db_name="trustchain". It fails if the pool was already registered.
func (m *Metrics) RegisterDB(db *sql.DB) error {
	if err := m.reg.Register(collectors.NewDBStatsCollector(db, namespace)); err != nil {
		return fmt.Errorf("register db stats collector: %w", err)
	}
	return nil
}

// TokenCheck records the outcome of checking one request's bearer token. Pass
// the error the auth middleware got (nil when the token was accepted); the
// reason label comes from the domain error, so it stays bounded.
func (m *Metrics) TokenCheck(err error) {
	result, reason := TokenRejected, tokenReason(err)
	if err == nil {
		result = TokenOK
	}
	m.tokenChecks.WithLabelValues(result, reason).Inc()
}

func tokenReason(err error) string {
	var te *domain.TokenError
	switch {
	case err == nil:
		return ReasonOK
	case errors.Is(err, domain.ErrTokenMissing):
		return ReasonMissing
	case errors.Is(err, domain.ErrInsufficientScope):
		return ReasonInsufficientScope
	case errors.Is(err, domain.ErrVerifierNotReady):
		return ReasonNotReady
	case errors.As(err, &te):
		for _, known := range knownTokenReasons {
			if te.Reason == known {
				return known
			}
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

// PeerRefused records a request refused by the peer allow-list. mode is the
// configured way of identifying peers, a value from config and never from the
// request.
func (m *Metrics) PeerRefused(mode string) {
	m.peerRefusals.WithLabelValues(mode).Inc()
}

// ObserveDBQuery records one SQL query's duration. operation is the SQL verb;
// anything unusual is counted as "other".
func (m *Metrics) ObserveDBQuery(operation string, d time.Duration) {
	m.dbQueryDuration.WithLabelValues(sqlOperation(operation)).Observe(d.Seconds())
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
// trustchain_db_query_duration_seconds:
//
//	db = db.WithQueryHook(metrics.QueryHook())
func (m *Metrics) QueryHook() bun.QueryHook { return dbQueryHook{m} }

type dbQueryHook struct{ m *Metrics }

func (h dbQueryHook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (h dbQueryHook) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	h.m.ObserveDBQuery(e.Operation(), time.Since(e.StartTime))
}
