package telemetry_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/trace"

	"github.com/trustchain/trustchain/adapters/httpapi/server"
	"github.com/trustchain/trustchain/adapters/httpapi/wire"
	"github.com/trustchain/trustchain/adapters/telemetry"
	"github.com/trustchain/trustchain/domain"
)

// scrape fetches /metrics over real HTTP and parses it the way Prometheus
// would, so the test covers the handler and the exposition format too.
func scrape(tb testing.TB, m *telemetry.Metrics) map[string]*dto.MetricFamily {
	tb.Helper()
	srv := httptest.NewServer(m.Handler())
	tb.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		tb.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("scrape: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("parse scrape: %v", err)
	}
	return fams
}

// series flattens one family to "label=value,..." -> value (the sample count
// for histograms). Labels are sorted, so keys are stable.
func series(tb testing.TB, fams map[string]*dto.MetricFamily, name string) map[string]float64 {
	tb.Helper()
	out := map[string]float64{}
	mf, ok := fams[name]
	if !ok {
		return out
	}
	for _, m := range mf.GetMetric() {
		var labels []string
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		slices.Sort(labels)
		key := strings.Join(labels, ",")
		switch {
		case m.Counter != nil:
			out[key] = m.GetCounter().GetValue()
		case m.Histogram != nil:
			out[key] = float64(m.GetHistogram().GetSampleCount())
		case m.Gauge != nil:
			out[key] = m.GetGauge().GetValue()
		default:
			tb.Fatalf("%s: unexpected metric type", name)
		}
	}
	return out
}

func assertSeries(tb testing.TB, fams map[string]*dto.MetricFamily, name string, want map[string]float64) {
	tb.Helper()
	got := series(tb, fams, name)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		tb.Errorf("%s:\n got  %v\n want %v", name, got, want)
	}
}

func newMetrics(role string) *telemetry.Metrics {
	return telemetry.NewMetrics(telemetry.MetricsConfig{
		Role:          role,
		Build:         telemetry.BuildInfo{Version: "1.2.3", Commit: "abcdef"},
		Routes:        server.Routes(),
		UpstreamKinds: []string{"none", "timeout", "connection"},
	})
}

func TestObserveRequestCountsByRouteAndClass(t *testing.T) {
	m := newMetrics("a")
	ctx := context.Background()
	m.ObserveRequest(ctx, server.RouteProducts, 200, time.Millisecond)
	m.ObserveRequest(ctx, server.RouteProducts, 401, time.Millisecond)
	m.ObserveRequest(ctx, server.RouteOther, 404, time.Millisecond)
	m.ObserveRequest(ctx, wire.ProductPath(123), 404, time.Millisecond) // a path, not a route name

	fams := scrape(t, m)
	want := map[string]float64{
		"code_class=2xx,role=a,route=" + server.RouteProducts: 1,
		"code_class=4xx,role=a,route=" + server.RouteProducts: 1,
		"code_class=4xx,role=a,route=" + server.RouteOther:    2,
	}
	assertSeries(t, fams, "trustchain_http_requests_total", want)
	assertSeries(t, fams, "trustchain_http_request_duration_seconds", want)
	assertSeries(t, fams, "trustchain_build_info", map[string]float64{
		"commit=abcdef,goversion=" + runtimeVersion() + ",role=a,version=1.2.3": 1,
	})
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "promhttp_metric_handler_requests_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("scrape lacks %s", name)
		}
	}
	for name, mf := range fams {
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if strings.Contains(l.GetValue(), "123") {
					t.Errorf("%s: raw path leaked into label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}

func TestBucketsFitTheBudgets(t *testing.T) {
	m := newMetrics("c")
	m.ObserveRequest(context.Background(), server.RouteProducts, 200, time.Second)
	mf := scrape(t, m)["trustchain_http_request_duration_seconds"]
	var bounds []float64
	for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	for _, h := range domain.Chain() {
		if !slices.Contains(bounds, h.Budget.Seconds()) {
			t.Errorf("no bucket ends at %s's %s budget: %v", h.Role, h.Budget, bounds)
		}
	}
	// The bounds the alerts' unit tests and the dashboard were written
	// against: deriving them from the table must not move them.
	want := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 6, 8, 10}
	if !slices.Equal(bounds, append(want, math.Inf(1))) || !slices.Equal(telemetry.DurationBuckets, want) {
		t.Errorf("bounds = %v, DurationBuckets = %v, want %v", bounds, telemetry.DurationBuckets, want)
	}
}

func TestExemplarsCarryTheTrace(t *testing.T) {
	m := newMetrics("b")
	tid, _ := trace.TraceIDFromHex(inTraceID)
	sid, _ := trace.SpanIDFromHex(inSpanID)
	sampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
	}))
	m.ObserveRequest(sampled, server.RouteProducts, 200, 2*time.Millisecond)

	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `# {trace_id="`+inTraceID+`"}`) {
		t.Fatalf("OpenMetrics scrape has no exemplar for the trace:\n%s", grep(string(body), "http_request_duration"))
	}
}

func grep(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestUpstreamObserverLabels(t *testing.T) {
	m := newMetrics("a")
	observe := m.UpstreamObserver("service-c")
	ctx := context.Background()
	observe(ctx, 200, "none", time.Millisecond)
	observe(ctx, 0, "connection", time.Millisecond)
	observe(ctx, 504, "timeout", time.Millisecond)
	observe(ctx, 502, "something new", time.Millisecond) // not a known kind
	want := map[string]float64{
		"code_class=2xx,error=none,role=a,upstream=service-c":        1,
		"code_class=none,error=connection,role=a,upstream=service-c": 1,
		"code_class=5xx,error=timeout,role=a,upstream=service-c":     1,
		"code_class=5xx,error=other,role=a,upstream=service-c":       1,
	}
	fams := scrape(t, m)
	assertSeries(t, fams, "trustchain_upstream_requests_total", want)
	assertSeries(t, fams, "trustchain_upstream_request_duration_seconds", want)
}

func TestTokenCheckReasons(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		want   string
	}{
		{"accepted", "", "reason=ok,result=ok"},
		{"missing", domain.ReasonMissing, "reason=missing,result=rejected"},
		{"scope", domain.ReasonInsufficientScope, "reason=insufficient_scope,result=rejected"},
		{"expired", domain.ReasonExpired, "reason=expired,result=rejected"},
		{"unknown reason", "token abc.def was odd", "reason=other,result=rejected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMetrics("b")
			before := series(t, scrape(t, m), "trustchain_token_checks_total")
			m.TokenCheck(tc.reason)
			after := series(t, scrape(t, m), "trustchain_token_checks_total")
			key := tc.want + ",role=b"
			if after[key]-before[key] != 1 {
				t.Fatalf("%s moved by %v, want 1 (after: %v)", key, after[key]-before[key], after)
			}
			var sum float64
			for _, v := range after {
				sum += v
			}
			if sum != 1 {
				t.Errorf("total token checks %v, want 1", sum)
			}
		})
	}
}

func TestCountersAndGauges(t *testing.T) {
	m := newMetrics("b")
	ctx := context.Background()
	m.JWKSRefresh(telemetry.JWKSOK)
	m.JWKSRefresh(telemetry.JWKSRateLimited)
	m.JWKSRefresh("dial tcp 10.0.0.1: refused") // not a result: counted as error
	m.PeerRefused("mtls")
	m.ObserveDBQuery(ctx, "SELECT", 3*time.Millisecond)
	m.ObserveDBQuery(ctx, "select", time.Millisecond)
	m.ObserveDBQuery(ctx, "WITH", time.Millisecond)
	m.DependencyUp("mysql", false)
	m.DependencyUp("oidc", true)
	m.TraceExportFailed()
	hit, miss, evict := m.TokenCache()
	hit()
	hit()
	miss()
	evict()
	m.TokenCacheSize(func() int { return 7 })

	fams := scrape(t, m)
	assertSeries(t, fams, "trustchain_jwks_refreshes_total", map[string]float64{
		"result=ok,role=b": 1, "result=rate_limited,role=b": 1, "result=error,role=b": 1,
	})
	assertSeries(t, fams, "trustchain_peer_refusals_total", map[string]float64{"mode=mtls,role=b": 1})
	assertSeries(t, fams, "trustchain_db_query_duration_seconds", map[string]float64{
		"operation=select,role=b": 2, "operation=other,role=b": 1,
	})
	assertSeries(t, fams, "trustchain_dependency_up", map[string]float64{"dependency=mysql,role=b": 0, "dependency=oidc,role=b": 1})
	assertSeries(t, fams, "trustchain_trace_export_errors_total", map[string]float64{"role=b": 1})
	assertSeries(t, fams, "trustchain_token_cache_requests_total", map[string]float64{"result=hit,role=b": 2, "result=miss,role=b": 1})
	assertSeries(t, fams, "trustchain_token_cache_evictions_total", map[string]float64{"role=b": 1})
	assertSeries(t, fams, "trustchain_token_cache_entries", map[string]float64{"role=b": 7})
}

func TestRegisterDBExportsPoolStatsOnce(t *testing.T) {
	m := newMetrics("b")
	db := openUnreachableDB(t)
	if err := m.RegisterDB(db.DB, "shop"); err != nil {
		t.Fatalf("RegisterDB: %v", err)
	}
	if err := m.RegisterDB(db.DB, "shop"); err == nil {
		t.Error("second RegisterDB succeeded; want an already-registered error")
	}
	assertSeries(t, scrape(t, m), "go_sql_max_open_connections", map[string]float64{"db_name=shop,role=b": 0})
}

func TestMetricsQueryHookTimesBunQueries(t *testing.T) {
	m := newMetrics("b")
	db := openUnreachableDB(t).WithQueryHook(m.QueryHook())
	var n int
	// The server is not there; the hook still sees the attempt, which is
	// what an operator wants to time.
	if err := db.NewSelect().ColumnExpr("1").Scan(context.Background(), &n); err == nil {
		t.Fatal("query against a closed port succeeded")
	}
	assertSeries(t, scrape(t, m), "trustchain_db_query_duration_seconds", map[string]float64{"operation=select,role=b": 1})
}

// TestSVIDMetrics: only the SVID in use has an expiry series, labelled
// with its ID; rotations and failures are counted, the last failure timed.
func TestSVIDMetrics(t *testing.T) {
	m := newMetrics("c")
	if fams := scrape(t, m); len(series(t, fams, "trustchain_svid_rotations_total")) != 0 {
		t.Fatal("SVID metrics exist before SVID() registered them")
	}
	svid := m.SVID()
	if fams := scrape(t, m); len(series(t, fams, "trustchain_svid_expiry_timestamp_seconds")) != 0 {
		t.Fatal("an expiry series exists before any SVID is held")
	}
	start := time.Unix(1_800_000_000, 0)
	svid.Held("spiffe://td/ns/default/sa/service-a", start, start.Add(time.Hour))
	svid.Held("spiffe://td/ns/default/sa/service-c", start.Add(time.Minute), start.Add(2*time.Hour))
	svid.Rotated()
	svid.RotationFailed(start.Add(90 * time.Second))
	svid.RotationFailed(start.Add(100 * time.Second))

	fams := scrape(t, m)
	assertSeries(t, fams, "trustchain_svid_expiry_timestamp_seconds", map[string]float64{
		"role=c,spiffe_id=spiffe://td/ns/default/sa/service-c": 1_800_007_200})
	assertSeries(t, fams, "trustchain_svid_not_before_timestamp_seconds", map[string]float64{
		"role=c,spiffe_id=spiffe://td/ns/default/sa/service-c": 1_800_000_060})
	assertSeries(t, fams, "trustchain_svid_rotations_total", map[string]float64{"role=c": 1})
	assertSeries(t, fams, "trustchain_svid_rotation_errors_total", map[string]float64{"role=c": 2})
	assertSeries(t, fams, "trustchain_svid_last_rotation_error_timestamp_seconds", map[string]float64{"role=c": 1_800_000_100})
}
