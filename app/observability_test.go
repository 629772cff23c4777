package app_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/trustchain/trustchain/adapters/httpapi/server"
	"github.com/trustchain/trustchain/app"
	"github.com/trustchain/trustchain/domain"
)

func scrape(t testing.TB, c *chain, role domain.Role) string {
	t.Helper()
	resp, err := http.Get("http://" + c.svc(role).AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func TestMetricsMoveWithTheRightLabels(t *testing.T) {
	c := startChain(t, chainOptions{peerAuth: app.PeerAuthOff})
	if status, _, _ := get(t, nil, c.url(roleA)+"/products", c.token(nil), nil); status != 200 {
		t.Fatalf("valid request: %d", status)
	}
	bad := c.token(func(m map[string]any) { m["aud"] = "https://someone-else/api" })
	if status, _, _ := get(t, nil, c.url(roleA)+"/products", bad, nil); status != 401 {
		t.Fatalf("bad request: %d", status)
	}
	want := map[domain.Role][]string{
		roleA: {
			`trustchain_http_requests_total{code_class="2xx",role="a",route="` + server.RouteProducts + `"} 1`,
			`trustchain_http_requests_total{code_class="4xx",role="a",route="` + server.RouteProducts + `"} 1`,
			`trustchain_token_checks_total{reason="ok",result="ok",role="a"} 1`,
			`trustchain_token_checks_total{reason="wrong_audience",result="rejected",role="a"} 1`,
			`trustchain_upstream_requests_total{code_class="2xx",error="none",role="a",upstream="service-c"} 1`,
			`trustchain_jwks_refreshes_total{result="ok",role="a"}`,
			`trustchain_build_info{`,
			`go_goroutines`,
		},
		roleC: {
			// The bad token stopped at A: C counted exactly one request.
			`trustchain_http_requests_total{code_class="2xx",role="c",route="` + server.RouteProducts + `"} 1`,
			`trustchain_token_checks_total{reason="ok",result="ok",role="c"} 1`,
			`trustchain_upstream_requests_total{code_class="2xx",error="none",role="c",upstream="service-b"} 1`,
		},
		roleB: {
			`trustchain_http_requests_total{code_class="2xx",role="b",route="` + server.RouteProducts + `"} 1`,
		},
	}
	for role, lines := range want {
		metrics := scrape(t, c, role)
		for _, line := range lines {
			if !strings.Contains(metrics, line) {
				t.Errorf("role %s: /metrics lacks %s", role, line)
			}
		}
		if strings.Contains(metrics, `code_class="4xx",role="c"`) {
			t.Errorf("C counted a refused request it never saw")
		}
	}
}

func TestOneTraceAcrossTheChain(t *testing.T) {
	exporter := tracetest.NewInMemoryExporter()
	var mu sync.Mutex
	var atB http.Header
	c := startChain(t, chainOptions{peerAuth: app.PeerAuthOff, exporter: exporter, spyB: func(h http.Header) {
		mu.Lock()
		atB = h
		mu.Unlock()
	}})

	const (
		clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		clientSpan  = "00f067aa0ba902b7"
	)
	header := http.Header{
		"Traceparent":  {"00-" + clientTrace + "-" + clientSpan + "-01"},
		"X-Request-Id": {"req-7f3a"},
	}
	if status, _, body := get(t, nil, c.url(roleA)+"/products", c.token(nil), header); status != 200 {
		t.Fatalf("%d %s", status, body)
	}

	servers := map[string]trace.SpanContext{}
	for _, s := range exporter.GetSpans() {
		if s.SpanKind == trace.SpanKindServer {
			service := ""
			for _, kv := range s.Resource.Attributes() {
				if kv.Key == "service.name" {
					service = kv.Value.AsString()
				}
			}
			servers[service] = s.SpanContext
			if service == "service-a" && s.Parent.SpanID().String() != clientSpan {
				t.Errorf("A's server span has parent %s, want the client's %s", s.Parent.SpanID(), clientSpan)
			}
		}
	}
	for _, svc := range []string{"service-a", "service-c", "service-b"} {
		sc, ok := servers[svc]
		if !ok {
			t.Fatalf("no server span from %s; spans: %d", svc, len(exporter.GetSpans()))
		}
		if sc.TraceID().String() != clientTrace {
			t.Errorf("%s is in trace %s, want the client's %s", svc, sc.TraceID(), clientTrace)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if got := atB.Get("X-Request-Id"); got != "req-7f3a" {
		t.Errorf("x-request-id at B = %q, want it unchanged", got)
	}
	if got := atB.Get("X-B3-Traceid"); got != clientTrace {
		t.Errorf("x-b3-traceid at B = %q, want %s (Envoy joins on it)", got, clientTrace)
	}
	if got := atB.Get("X-B3-Spanid"); got == "" || got == clientSpan {
		t.Errorf("x-b3-spanid at B = %q, want C's client span", got)
	}
	if got := atB.Get("Traceparent"); !strings.Contains(got, clientTrace) {
		t.Errorf("traceparent at B = %q", got)
	}
}

func TestB3AndRequestIDPassThroughWithTracingOff(t *testing.T) {
	var mu sync.Mutex
	var atB http.Header
	c := startChain(t, chainOptions{peerAuth: app.PeerAuthOff, spyB: func(h http.Header) {
		mu.Lock()
		atB = h
		mu.Unlock()
	}})
	header := http.Header{
		"X-Request-Id": {"req-b3"},
		"X-B3-Traceid": {"80f198ee56343ba864fe8b2a57d3eff7"},
		"X-B3-Spanid":  {"e457b5a2e4d86bd1"},
		"X-B3-Sampled": {"1"},
	}
	if status, _, _ := get(t, nil, c.url(roleA)+"/products", c.token(nil), header); status != 200 {
		t.Fatal(status)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range []string{"X-Request-Id", "X-B3-Traceid", "X-B3-Sampled"} {
		if atB.Get(h) != header.Get(h) {
			t.Errorf("%s at B = %q, want %q", h, atB.Get(h), header.Get(h))
		}
	}
}

// TestKeepAlivePoolsHoldUnderLoad: 32 clients keep calling A, and no hop
// dials the next one per request: the connections each API port accepted
// stay near the clients' count while the requests run into the thousands.
// Near, not at: a connection whose answer was just read may still be on its
// way back to the pool when the next request leaves, and Go's transport then
// dials one more. Dialling per request would mean hundreds (320 for 640
// requests with a pool of 2).
func TestKeepAlivePoolsHoldUnderLoad(t *testing.T) {
	const clients, perClient = 32, 50
	const most = 2 * clients
	c := startChain(t, chainOptions{peerAuth: app.PeerAuthOff, quiet: true})
	token := c.token(nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				if err := getOK(client, c.url(roleA)+"/products", token); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, role := range []domain.Role{roleA, roleC, roleB} {
		accepted := metricValue(t, scrape(t, c, role), `trustchain_http_connections_accepted_total{role="`+string(role)+`"}`)
		if accepted < 1 || accepted > most {
			t.Errorf("%s accepted %v connections for %d requests from %d clients; want at most %d", role, accepted, clients*perClient, clients, most)
		}
	}
}

// metricValue reads one sample's value from an exposition.
func metricValue(t testing.TB, exposition, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.Fields(v)[0], 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in the exposition", series)
	return 0
}
