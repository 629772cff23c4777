package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

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

func TestMiddlewareCountsInboundByRouteAndClass(t *testing.T) {
	m := telemetry.NewMetrics("a", telemetry.BuildInfo{Version: "1.2.3", Commit: "abcdef"})
	products := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("[]"))
	})
	mux := http.NewServeMux()
	mux.Handle("GET /products", m.Middleware("/products", products))
	mux.Handle("/", m.Middleware(telemetry.RouteOther, http.NotFoundHandler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/products", "Bearer x", http.StatusOK},
		{"/products", "", http.StatusUnauthorized},
		{"/products/123?x", "Bearer x", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("GET %s: status %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}

	fams := scrape(t, m)
	want := map[string]float64{
		"code_class=2xx,role=a,route=/products": 1,
		"code_class=4xx,role=a,route=/products": 1,
		"code_class=4xx,role=a,route=other":     1,
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

func TestMiddlewareKeepsFlusherAndCountsPanics(t *testing.T) {
	m := telemetry.NewMetrics("c", telemetry.BuildInfo{})
	var flushed bool
	h := m.Middleware("/stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
		flushed = true
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stream", nil))
	if !flushed || !rec.Flushed {
		t.Fatalf("flush did not reach the recorder")
	}

	boom := m.Middleware("/boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic was swallowed")
			}
		}()
		boom.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/boom", nil))
	}()

	assertSeries(t, scrape(t, m), "trustchain_http_requests_total", map[string]float64{
		"code_class=2xx,role=c,route=/stream": 1,
		"code_class=5xx,role=c,route=/boom":   1,
	})
}

func TestTransportClassifiesOutcomes(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	status := func(code int) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
		t.Cleanup(s.Close)
		return s
	}
	closedAddr := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}()

	// opaque fails the way http.Transport sometimes does once the context
	// ends: with an error that wraps nothing.
	opaque := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		<-r.Context().Done()
		return nil, errors.New("net/http: request canceled")
	})
	deadline := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 50*time.Millisecond)
	}
	cancelSoon := func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		return ctx, cancel
	}

	tests := []struct {
		name string
		url  string
		ctx  func() (context.Context, context.CancelFunc)
		next http.RoundTripper
		want string
	}{
		{"ok", status(http.StatusOK).URL, nil, nil, "code_class=2xx,error=none"},
		{"503", status(http.StatusServiceUnavailable).URL, nil, nil, "code_class=5xx,error=bad_response"},
		{"504", status(http.StatusGatewayTimeout).URL, nil, nil, "code_class=5xx,error=timeout"},
		{"404", status(http.StatusNotFound).URL, nil, nil, "code_class=4xx,error=bad_response"},
		{"401", status(http.StatusUnauthorized).URL, nil, nil, "code_class=4xx,error=rejected"},
		{"403", status(http.StatusForbidden).URL, nil, nil, "code_class=4xx,error=rejected"},
		{"refused", closedAddr, nil, nil, "code_class=none,error=connection"},
		{"context deadline", slow.URL, deadline, nil, "code_class=none,error=timeout"},
		{"canceled", slow.URL, cancelSoon, nil, "code_class=none,error=canceled"},
		{"opaque error after deadline", slow.URL, deadline, opaque, "code_class=none,error=timeout"},
		{"opaque error after cancel", slow.URL, cancelSoon, opaque, "code_class=none,error=canceled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := telemetry.NewMetrics("a", telemetry.BuildInfo{})
			client := &http.Client{Transport: m.Transport("service-c", tc.next)}
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tc.url, nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}

			want := map[string]float64{tc.want + ",role=a,upstream=service-c": 1}
			fams := scrape(t, m)
			assertSeries(t, fams, "trustchain_upstream_requests_total", want)
			assertSeries(t, fams, "trustchain_upstream_request_duration_seconds", want)
		})
	}
}

func TestTokenCheckReasons(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"accepted", nil, "reason=ok,result=ok"},
		{"missing", domain.ErrTokenMissing, "reason=missing,result=rejected"},
		{"scope", fmt.Errorf("list: %w", domain.ErrInsufficientScope), "reason=insufficient_scope,result=rejected"},
		{"not ready", domain.ErrVerifierNotReady, "reason=not_ready,result=rejected"},
		{"expired, wrapped", fmt.Errorf("auth: %w", &domain.TokenError{Reason: domain.ReasonExpired, Err: errors.New("exp")}), "reason=expired,result=rejected"},
		{"bad signature", &domain.TokenError{Reason: domain.ReasonBadSignature}, "reason=bad_signature,result=rejected"},
		{"unknown reason", &domain.TokenError{Reason: "token abc.def was odd"}, "reason=other,result=rejected"},
		{"unrelated error", errors.New("boom"), "reason=other,result=rejected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := telemetry.NewMetrics("b", telemetry.BuildInfo{})
			before := series(t, scrape(t, m), "trustchain_token_checks_total")
			m.TokenCheck(tc.err)
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

func TestJWKSPeerAndDBCounters(t *testing.T) {
	m := telemetry.NewMetrics("b", telemetry.BuildInfo{})
	m.JWKSRefresh(telemetry.JWKSOK)
	m.JWKSRefresh(telemetry.JWKSRateLimited)
	m.JWKSRefresh("dial tcp 10.0.0.1: refused") // not a result: counted as error
	m.PeerRefused("spiffe")
	m.ObserveDBQuery("SELECT", 3*time.Millisecond)
	m.ObserveDBQuery("select", time.Millisecond)
	m.ObserveDBQuery("WITH", time.Millisecond)

	fams := scrape(t, m)
	assertSeries(t, fams, "trustchain_jwks_refreshes_total", map[string]float64{
		"result=ok,role=b": 1, "result=rate_limited,role=b": 1, "result=error,role=b": 1,
	})
	assertSeries(t, fams, "trustchain_peer_refusals_total", map[string]float64{"mode=spiffe,role=b": 1})
	assertSeries(t, fams, "trustchain_db_query_duration_seconds", map[string]float64{
		"operation=select,role=b": 2, "operation=other,role=b": 1,
	})
}

func TestRegisterDBExportsPoolStatsOnce(t *testing.T) {
	m := telemetry.NewMetrics("b", telemetry.BuildInfo{})
	db := openUnreachableDB(t)
	if err := m.RegisterDB(db.DB); err != nil {
		t.Fatalf("RegisterDB: %v", err)
	}
	if err := m.RegisterDB(db.DB); err == nil {
		t.Error("second RegisterDB succeeded; want an already-registered error")
	}
	assertSeries(t, scrape(t, m), "go_sql_max_open_connections", map[string]float64{"db_name=trustchain": 0})
}

func TestMetricsQueryHookTimesBunQueries(t *testing.T) {
	m := telemetry.NewMetrics("b", telemetry.BuildInfo{})
	db := openUnreachableDB(t).WithQueryHook(m.QueryHook())
	var n int
	// The server is not there; the hook still sees the attempt, which is
	// what an operator wants to time.
	if err := db.NewSelect().ColumnExpr("1").Scan(context.Background(), &n); err == nil {
		t.Fatal("query against a closed port succeeded")
	}
	assertSeries(t, scrape(t, m), "trustchain_db_query_duration_seconds", map[string]float64{"operation=select,role=b": 1})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
