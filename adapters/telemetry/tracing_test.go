package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/uptrace/bun"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/trustchain/trustchain/adapters/telemetry"
)

const (
	inTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	inSpanID  = "00f067aa0ba902b7"
)

// newTracing returns tracing that records into an in-memory exporter, or
// tracing that is off when exp is nil.
func newTracing(tb testing.TB, exp sdktrace.SpanExporter) *telemetry.Tracing {
	tb.Helper()
	cfg := telemetry.TracingConfig{ServiceName: "trustchain-test"}
	if exp != nil {
		cfg.Exporter = exp
	}
	return startTracing(tb, cfg)
}

// startTracing builds tracing from cfg and shuts it down at cleanup.
func startTracing(tb testing.TB, cfg telemetry.TracingConfig) *telemetry.Tracing {
	tb.Helper()
	tr, err := telemetry.NewTracing(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("NewTracing: %v", err)
	}
	tb.Cleanup(func() {
		if err := tr.Shutdown(context.Background()); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
	})
	return tr
}

func get(tb testing.TB, client *http.Client, ctx context.Context, url string, header http.Header) {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func spanOfKind(tb testing.TB, spans tracetest.SpanStubs, kind trace.SpanKind) tracetest.SpanStub {
	tb.Helper()
	var found []tracetest.SpanStub
	for _, s := range spans {
		if s.SpanKind == kind {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("want exactly one %v span, got %d of %d spans", kind, len(found), len(spans))
	}
	return found[0]
}

func TestClientAndServerSpansShareOneTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := newTracing(t, exp)
	srv := httptest.NewServer(tr.ServerMiddleware(route("GET /products/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("[]"))
	}))))
	t.Cleanup(srv.Close)

	get(t, &http.Client{Transport: tr.ClientTransport(http.DefaultTransport)}, context.Background(), srv.URL+"/products/7", nil)

	spans := exp.GetSpans()
	client, server := spanOfKind(t, spans, trace.SpanKindClient), spanOfKind(t, spans, trace.SpanKindServer)
	if client.SpanContext.TraceID() != server.SpanContext.TraceID() {
		t.Errorf("trace IDs differ: client %s, server %s", client.SpanContext.TraceID(), server.SpanContext.TraceID())
	}
	if server.Parent.SpanID() != client.SpanContext.SpanID() || !server.Parent.IsRemote() {
		t.Errorf("server parent = %s (remote %v), want client span %s", server.Parent.SpanID(), server.Parent.IsRemote(), client.SpanContext.SpanID())
	}
	if server.Name != "GET /products/{id}" {
		t.Errorf("server span name %q, want the route, %q", server.Name, "GET /products/{id}")
	}
	if client.Name != "GET" {
		t.Errorf("client span name %q, want the method alone, as the HTTP conventions ask", client.Name)
	}
	if got := server.Resource.String(); !strings.Contains(got, "service.name=trustchain-test") {
		t.Errorf("resource %s lacks the service name", got)
	}
}

func TestServerContinuesIncomingTrace(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
	}{
		{"w3c traceparent", http.Header{"Traceparent": {"00-" + inTraceID + "-" + inSpanID + "-01"}}},
		{"b3 multi headers (envoy)", http.Header{
			"X-B3-Traceid": {inTraceID}, "X-B3-Spanid": {inSpanID}, "X-B3-Sampled": {"1"},
		}},
		{"b3 single header", http.Header{"B3": {inTraceID + "-" + inSpanID + "-1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tr := newTracing(t, exp)
			srv := httptest.NewServer(tr.ServerMiddleware(route("GET /products", http.NotFoundHandler())))
			t.Cleanup(srv.Close)

			get(t, http.DefaultClient, context.Background(), srv.URL+"/products", tc.header)

			server := spanOfKind(t, exp.GetSpans(), trace.SpanKindServer)
			if got := server.SpanContext.TraceID().String(); got != inTraceID {
				t.Errorf("trace ID %s, want the caller's %s", got, inTraceID)
			}
			if got := server.Parent.SpanID().String(); got != inSpanID {
				t.Errorf("parent span %s, want the caller's %s", got, inSpanID)
			}
		})
	}
}

// TestContextCrossesAHop runs inbound -> handler -> outbound through the
// server middleware and client transport and looks at what the next hop
// receives. With tracing off the inbound context must come out unchanged:
// the mesh's trace keeps going even though we record nothing.
func TestContextCrossesAHop(t *testing.T) {
	traceparent := "00-" + inTraceID + "-" + inSpanID + "-01"
	tests := []struct {
		name    string
		on      bool
		in      http.Header
		check   func(t *testing.T, out http.Header)
		spansIn int // spans exported, when on
	}{
		{
			name: "off, traceparent passes through unchanged",
			in:   http.Header{"Traceparent": {traceparent}, "Tracestate": {"vendor=x"}},
			check: func(t *testing.T, out http.Header) {
				wantHeader(t, out, "Traceparent", traceparent)
				wantHeader(t, out, "Tracestate", "vendor=x")
				wantHeader(t, out, "X-B3-Traceid", inTraceID)
				wantHeader(t, out, "X-B3-Spanid", inSpanID)
				wantHeader(t, out, "X-B3-Sampled", "1")
			},
		},
		{
			name: "off, envoy's b3 headers pass through and gain traceparent",
			in:   http.Header{"X-B3-Traceid": {inTraceID}, "X-B3-Spanid": {inSpanID}, "X-B3-Sampled": {"1"}},
			check: func(t *testing.T, out http.Header) {
				wantHeader(t, out, "X-B3-Traceid", inTraceID)
				wantHeader(t, out, "X-B3-Spanid", inSpanID)
				wantHeader(t, out, "X-B3-Sampled", "1")
				wantHeader(t, out, "Traceparent", traceparent)
			},
		},
		{
			name: "off, a single b3 header passes through as both encodings",
			in:   http.Header{"B3": {inTraceID + "-" + inSpanID + "-1"}},
			check: func(t *testing.T, out http.Header) {
				wantHeader(t, out, "X-B3-Traceid", inTraceID)
				wantHeader(t, out, "Traceparent", traceparent)
			},
		},
		{
			name: "off, no inbound context invents none",
			in:   http.Header{},
			check: func(t *testing.T, out http.Header) {
				wantHeader(t, out, "Traceparent", "")
				wantHeader(t, out, "X-B3-Traceid", "")
				wantHeader(t, out, "X-B3-Sampled", "") // "0" would tell Envoy not to sample
				wantHeader(t, out, "B3", "")
			},
		},
		{
			name: "off, garbage trace headers are dropped, not passed on",
			in: http.Header{
				"Traceparent":  {"00-not-a-trace-01"},
				"Tracestate":   {"vendor=x"},
				"X-B3-Traceid": {"zzzz"},
				"X-B3-Spanid":  {"e457b5a2e4d86bd1"},
				"B3":           {strings.Repeat("a", 300)},
				"X-B3-Flags":   {"1; drop table"},
			},
			check: func(t *testing.T, out http.Header) {
				for _, h := range []string{"Traceparent", "Tracestate", "X-B3-Traceid", "X-B3-Spanid", "B3", "X-B3-Flags", "X-B3-Sampled"} {
					wantHeader(t, out, h, "")
				}
			},
		},
		{
			name: "off, an oversized tracestate is dropped and the trace kept",
			in:   http.Header{"Traceparent": {traceparent}, "Tracestate": {"v=" + strings.Repeat("x", 600)}},
			check: func(t *testing.T, out http.Header) {
				wantHeader(t, out, "Traceparent", traceparent)
				wantHeader(t, out, "Tracestate", "")
			},
		},
		{
			name: "on, our client span becomes the parent",
			on:   true,
			in:   http.Header{"Traceparent": {traceparent}},
			check: func(t *testing.T, out http.Header) {
				tp := out.Get("Traceparent")
				if !strings.HasPrefix(tp, "00-"+inTraceID+"-") || !strings.HasSuffix(tp, "-01") || tp == traceparent {
					t.Errorf("traceparent %q: want trace %s, a new span ID, sampled", tp, inTraceID)
				}
				wantHeader(t, out, "X-B3-Traceid", inTraceID)
			},
			spansIn: 2,
		},
		{
			name: "on, mesh said do not sample: nothing recorded, context still forwarded",
			on:   true,
			in:   http.Header{"Traceparent": {"00-" + inTraceID + "-" + inSpanID + "-00"}},
			check: func(t *testing.T, out http.Header) {
				tp := out.Get("Traceparent")
				if !strings.HasPrefix(tp, "00-"+inTraceID+"-") || !strings.HasSuffix(tp, "-00") {
					t.Errorf("traceparent %q: want trace %s, not sampled", tp, inTraceID)
				}
			},
			spansIn: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var exp *tracetest.InMemoryExporter
			var tr *telemetry.Tracing
			if tc.on {
				exp = tracetest.NewInMemoryExporter()
				tr = newTracing(t, exp)
			} else {
				tr = newTracing(t, nil)
			}

			out := relay(t, tr, tc.in)
			tc.check(t, out)
			if exp != nil {
				if got := len(exp.GetSpans()); got != tc.spansIn {
					t.Errorf("exported %d spans, want %d", got, tc.spansIn)
				}
			}
		})
	}
}

// relay sends a request carrying in through one traced hop, which calls a
// next server as httpapi's client does (injecting when the transport does
// not), and returns the headers the next server received.
func relay(tb testing.TB, tr *telemetry.Tracing, in http.Header) http.Header {
	tb.Helper()
	var (
		mu  sync.Mutex
		out http.Header
	)
	next := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		out = r.Header.Clone()
		mu.Unlock()
	}))
	tb.Cleanup(next.Close)
	client := &http.Client{Transport: tr.ClientTransport(http.DefaultTransport)}
	hop := httptest.NewServer(tr.ServerMiddleware(route("GET /products", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := http.Header{}
		if inject := tr.Inject(); inject != nil {
			inject(r.Context(), header)
		}
		get(tb, client, r.Context(), next.URL, header)
	}))))
	tb.Cleanup(hop.Close)

	get(tb, http.DefaultClient, context.Background(), hop.URL+"/products", in)
	mu.Lock()
	defer mu.Unlock()
	return out
}

func wantHeader(tb testing.TB, h http.Header, key, want string) {
	tb.Helper()
	if got := h.Get(key); got != want {
		tb.Errorf("%s = %q, want %q", key, got, want)
	}
}

func TestNewTracingConfig(t *testing.T) {
	type flags = telemetry.TracingFlags
	tests := []struct {
		name    string
		env     map[string]string
		cfg     telemetry.TracingConfig
		wantErr string
	}{
		{"nothing configured is off", nil, telemetry.TracingConfig{}, ""},
		{"stdout", nil, telemetry.TracingConfig{ServiceName: "a", Stdout: io.Discard}, ""},
		{"otlp/http", nil, telemetry.TracingConfig{ServiceName: "a", OTLP: true, Flags: flags{Endpoint: "http://127.0.0.1:4318"}}, ""},
		{"otlp/grpc", nil, telemetry.TracingConfig{ServiceName: "a", OTLP: true, Protocol: telemetry.ProtocolGRPC, Flags: flags{Endpoint: "http://127.0.0.1:4317"}}, ""},
		{"traces endpoint alone", nil, telemetry.TracingConfig{ServiceName: "a", OTLP: true, Flags: flags{TracesEndpoint: "https://collector/v1/traces"}}, ""},
		{"endpoint from the environment", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, telemetry.TracingConfig{ServiceName: "a", OTLP: true}, ""},
		{"unknown protocol", nil, telemetry.TracingConfig{ServiceName: "a", OTLP: true, Protocol: "http/json", Flags: flags{Endpoint: "http://c:4318"}}, "protocol"},
		{"unknown sampler", nil, telemetry.TracingConfig{ServiceName: "a", Stdout: io.Discard, Flags: flags{Sampler: "sometimes"}}, "sampler"},
		{"ratio out of range", nil, telemetry.TracingConfig{ServiceName: "a", Stdout: io.Discard, Flags: flags{Sampler: "traceidratio", SamplerArg: "2"}}, "ratio"},
		{"bad resource attributes", nil, telemetry.TracingConfig{ServiceName: "a", Stdout: io.Discard, Flags: flags{ResourceAttributes: "=novalue"}}, "resource attributes"},
		{"bad resource attributes in the environment", map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "novalue"}, telemetry.TracingConfig{ServiceName: "a", Stdout: io.Discard}, "resource"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			tr, err := telemetry.NewTracing(context.Background(), tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewTracing: %v", err)
			}
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

// The SDK reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES itself; the
// same settings from the command line go over them.
func TestResourceFollowsTheOTelVariables(t *testing.T) {
	tests := []struct {
		name                  string
		env                   map[string]string
		flags                 telemetry.TracingFlags
		wantName, wantEnviron string
	}{
		{"trustchain's own name by default", nil, telemetry.TracingFlags{}, "service-c", ""},
		{"OTEL_RESOURCE_ATTRIBUTES overrides it", map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,deployment.environment=prod%20eu"}, telemetry.TracingFlags{}, "from-attrs", "prod eu"},
		{"OTEL_SERVICE_NAME wins over both", map[string]string{"OTEL_SERVICE_NAME": "from-env", "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs"}, telemetry.TracingFlags{}, "from-env", ""},
		{"--otel-resource-attributes", nil, telemetry.TracingFlags{ResourceAttributes: "service.name=from-flag,deployment.environment=prod%20eu"}, "from-flag", "prod eu"},
		{"--otel-service-name wins over both", nil, telemetry.TracingFlags{ServiceName: "flag-name", ResourceAttributes: "service.name=from-flag"}, "flag-name", ""},
		{"the command line over the environment", map[string]string{"OTEL_SERVICE_NAME": "from-env", "OTEL_RESOURCE_ATTRIBUTES": "novalue"}, telemetry.TracingFlags{ServiceName: "flag-name", ResourceAttributes: "deployment.environment=flag"}, "flag-name", "flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			exp := tracetest.NewInMemoryExporter()
			tr, err := telemetry.NewTracing(context.Background(), telemetry.TracingConfig{
				ServiceName: "service-c", ServiceVersion: "1.2.3", Exporter: exp, Flags: tc.flags,
			})
			if err != nil {
				t.Fatal(err)
			}
			_, span := tr.TracerProvider().Tracer("x").Start(context.Background(), "s")
			span.End()
			attrs := map[string]string{}
			for _, kv := range exp.GetSpans()[0].Resource.Attributes() {
				attrs[string(kv.Key)] = kv.Value.String()
			}
			if attrs["service.name"] != tc.wantName || attrs["service.version"] != "1.2.3" || len(attrs["service.instance.id"]) != 36 {
				t.Errorf("resource = %v; want service.name %q, service.version and a service.instance.id", attrs, tc.wantName)
			}
			if attrs["deployment.environment"] != tc.wantEnviron {
				t.Errorf("deployment.environment = %q, want %q (resource %v)", attrs["deployment.environment"], tc.wantEnviron, attrs)
			}
		})
	}
}

// The SDK reads OTEL_TRACES_SAMPLER[_ARG] itself; --traces-sampler goes over
// it. The default follows the caller's decision.
func TestSamplerFollowsTheOTelVariables(t *testing.T) {
	unsampled := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1},
	}))
	tests := []struct {
		name        string
		env         map[string]string
		flags       telemetry.TracingFlags
		ctx         context.Context
		wantSampled bool
	}{
		{"default samples a new trace", nil, telemetry.TracingFlags{}, context.Background(), true},
		{"default follows an unsampled caller", nil, telemetry.TracingFlags{}, unsampled, false},
		{"OTEL_TRACES_SAMPLER=always_on", map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}, telemetry.TracingFlags{}, unsampled, true},
		{"OTEL_TRACES_SAMPLER=traceidratio, 0", map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, telemetry.TracingFlags{}, context.Background(), false},
		{"--traces-sampler over the environment", map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, telemetry.TracingFlags{Sampler: "always_on"}, unsampled, true},
		{"--traces-sampler parentbased_traceidratio 0", nil, telemetry.TracingFlags{Sampler: "parentbased_traceidratio", SamplerArg: "0"}, context.Background(), false},
		{"--traces-sampler parentbased_always_off", nil, telemetry.TracingFlags{Sampler: "parentbased_always_off"}, context.Background(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			tr, err := telemetry.NewTracing(context.Background(), telemetry.TracingConfig{
				ServiceName: "a", Exporter: tracetest.NewInMemoryExporter(), Flags: tc.flags,
			})
			if err != nil {
				t.Fatal(err)
			}
			_, span := tr.TracerProvider().Tracer("x").Start(tc.ctx, "s")
			defer span.End()
			if got := span.SpanContext().IsSampled(); got != tc.wantSampled {
				t.Errorf("sampled = %v, want %v", got, tc.wantSampled)
			}
		})
	}
}

func TestExportFailuresAreLoggedAsJSONAndCounted(t *testing.T) {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusBadRequest) // not retryable: one attempt
	}))
	t.Cleanup(collector.Close)
	log, buf := newJSONLogger(t)
	var failed atomic.Int32
	tr, err := telemetry.NewTracing(context.Background(), telemetry.TracingConfig{
		ServiceName: "a", OTLP: true, Flags: telemetry.TracingFlags{Endpoint: collector.URL}, Logger: log, OnExportError: func() { failed.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.TracerProvider().Tracer("x").Start(context.Background(), "s")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if failed.Load() != 1 {
		t.Fatalf("export failures counted: %d, want 1", failed.Load())
	}
	rec := records(t, buf)
	if len(rec) != 1 || rec[0]["msg"] != "trace export failed" || rec[0]["error"] == nil {
		t.Fatalf("log = %v, want one structured export failure", rec)
	}
}

func TestAnnotateMarksRefusalsAndServerErrors(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := newTracing(t, exp)
	for _, tc := range []struct {
		status int
		reason string
	}{{200, ""}, {401, "expired"}, {503, "unavailable"}} {
		h := tr.ServerMiddleware(route("GET /products", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			tr.Annotate(r.Context(), tc.status, tc.reason, "req-1")
		})))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/products", nil))
	}
	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans", len(spans))
	}
	for i, want := range []map[string]string{
		{"http.request.header.x-request-id": `["req-1"]`},
		{"trustchain.refusal.reason": "expired"},
		{"trustchain.refusal.reason": "unavailable", "error.type": "503"},
	} {
		got := map[string]string{}
		for _, kv := range spans[i].Attributes {
			got[string(kv.Key)] = kv.Value.String()
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("span %d: %s = %q, want %q (all: %v)", i, k, got[k], v, got)
			}
		}
		if _, ok := got["error.type"]; ok && spans[i].Name != "GET /products" || (i < 2 && got["error.type"] != "") {
			t.Errorf("span %d: error.type on a non-5xx answer: %v", i, got)
		}
	}
}

// route serves h at pattern behind a mux, as the API does, so the server
// span can be named after the route.
func route(pattern string, h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(pattern, h)
	return mux
}

func TestTracingOffRecordsNothing(t *testing.T) {
	tr := newTracing(t, nil)
	_, span := tr.TracerProvider().Tracer("x").Start(context.Background(), "s")
	defer span.End()
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("tracing off produced a real span")
	}
}

// TestOTLPExportGoesToTracesPath checks that the endpoint is treated as the
// spec's base URL, whether the exporter reads it from the environment or
// the command line hands it over: spans are POSTed to <base>/v1/traces on
// shutdown. A traces endpoint is used as it is, and wins.
func TestOTLPExportGoesToTracesPath(t *testing.T) {
	paths := make(chan string, 10)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths <- r.Method + " " + r.URL.Path
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(collector.Close)
	for _, tc := range []struct {
		name  string
		env   map[string]string
		flags telemetry.TracingFlags
		want  string
	}{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL + "/otlp/"}, telemetry.TracingFlags{}, "/otlp/v1/traces"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL + "/otlp/", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector.URL + "/t"}, telemetry.TracingFlags{}, "/t"},
		{"--otlp-endpoint", nil, telemetry.TracingFlags{Endpoint: collector.URL + "/otlp/"}, "/otlp/v1/traces"},
		{"--otlp-endpoint over the environment", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1/"}, telemetry.TracingFlags{Endpoint: collector.URL}, "/v1/traces"},
		{"--otlp-traces-endpoint", nil, telemetry.TracingFlags{Endpoint: collector.URL + "/otlp/", TracesEndpoint: collector.URL + "/t"}, "/t"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			tr, err := telemetry.NewTracing(context.Background(), telemetry.TracingConfig{
				ServiceName: "a", OTLP: true, Flags: tc.flags,
			})
			if err != nil {
				t.Fatal(err)
			}
			_, span := tr.TracerProvider().Tracer("x").Start(context.Background(), "s")
			span.End()
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			select {
			case got := <-paths:
				if got != "POST "+tc.want {
					t.Errorf("export went to %q, want POST %s", got, tc.want)
				}
			default:
				t.Fatal("no export reached the collector")
			}
		})
	}
}

func TestStdoutPrintsFinishedSpans(t *testing.T) {
	var buf strings.Builder
	tr, err := telemetry.NewTracing(context.Background(), telemetry.TracingConfig{ServiceName: "a", Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.TracerProvider().Tracer("x").Start(context.Background(), "list products")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"Name":"list products"`) {
		t.Errorf("stdout lacks the span:\n%s", buf.String())
	}
}

func TestTracingQueryHookSpansJoinTheRequest(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := newTracing(t, exp)
	hook := tr.QueryHook(telemetry.DBInfo{Name: "shop", Address: "db.internal", Port: 3306})
	if _, ok := hook.(interface{ Init(*bun.DB) }); ok {
		t.Fatal("query hook exposes Init; bun would register metrics on the global meter provider")
	}
	db := openUnreachableDB(t).WithQueryHook(hook)

	ctx, parent := tr.TracerProvider().Tracer("test").Start(context.Background(), "request")
	var n int
	err := db.NewSelect().ColumnExpr("?", 42).Scan(ctx, &n)
	parent.End()
	if err == nil {
		t.Fatal("query against a closed port succeeded")
	}

	q := spanOfKind(t, exp.GetSpans(), trace.SpanKindClient)
	if q.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("query span parent %s, want request span %s", q.Parent.SpanID(), parent.SpanContext().SpanID())
	}
	if q.Name != "SELECT" || q.Status.Code != codes.Error {
		t.Errorf("query span %q status %v, want SELECT with an error status", q.Name, q.Status.Code)
	}
	attrs := map[string]string{}
	for _, a := range q.Attributes {
		attrs[string(a.Key)] = a.Value.String()
	}
	want := map[string]string{
		"db.system.name":    "mysql",
		"db.namespace":      "shop",
		"db.operation.name": "SELECT",
		"db.query.text":     "SELECT 42", // what MySQL received: bun interpolates
		"server.address":    "db.internal",
		"server.port":       "3306",
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("%s = %q, want %q", k, attrs[k], v)
		}
	}
	for _, old := range []string{"db.statement", "db.system", "code.filepath", "code.function"} {
		if _, ok := attrs[old]; ok {
			t.Errorf("span carries the old or leaky attribute %s", old)
		}
	}
	if tr := newTracing(t, nil); tr.QueryHook(telemetry.DBInfo{}) != nil {
		t.Error("tracing off still hooks every query")
	}
}

func attrs(s tracetest.SpanStub) map[string]string {
	got := map[string]string{}
	for _, kv := range s.Attributes {
		got[string(kv.Key)] = kv.Value.String()
	}
	return got
}

// TestSpansFollowTheHTTPConventions: the server and client spans carry the
// stable HTTP attributes, a 5xx is an error on both sides, and the client
// span lasts until the answer's body is closed.
func TestSpansFollowTheHTTPConventions(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := newTracing(t, exp)
	srv := httptest.NewServer(tr.ServerMiddleware(route("GET /products/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		tr.Annotate(r.Context(), http.StatusServiceUnavailable, "unavailable", "req-9")
	}))))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: tr.ClientTransport(http.DefaultTransport)}
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/products/7?limit=2", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "trustchain-test")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Header) != 1 {
		t.Errorf("the caller's request was changed: %v", req.Header)
	}
	if n := len(exp.GetSpans()); n != 1 {
		t.Fatalf("%d spans ended before the body was closed, want only the server's", n)
	}
	_ = resp.Body.Close()

	spans := exp.GetSpans()
	server, client2 := spanOfKind(t, spans, trace.SpanKindServer), spanOfKind(t, spans, trace.SpanKindClient)
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	for _, tc := range []struct {
		span tracetest.SpanStub
		want map[string]string
	}{
		{server, map[string]string{
			"http.request.method": "GET", "url.scheme": "http", "url.path": "/products/7", "http.route": "/products/{id}",
			"server.address": "127.0.0.1", "server.port": port, "client.address": "127.0.0.1",
			"user_agent.original": "trustchain-test", "network.protocol.version": "1.1",
			"http.response.status_code": "503", "error.type": "503",
		}},
		{client2, map[string]string{
			"http.request.method": "GET", "url.full": srv.URL + "/products/7?limit=2",
			"server.address": "127.0.0.1", "server.port": port,
			"http.response.status_code": "503", "error.type": "503",
		}},
	} {
		got := attrs(tc.span)
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%v span: %s = %q, want %q (all: %v)", tc.span.SpanKind, k, got[k], v, got)
			}
		}
		if tc.span.Status.Code != codes.Error {
			t.Errorf("%v span status %v for a 503, want Error", tc.span.SpanKind, tc.span.Status)
		}
	}
}

// TestSpansOfOddRequests: a method outside the known set cannot mint
// attribute values, a failed call is an error with its type, and
// credentials in a URL never reach url.full.
func TestSpansOfOddRequests(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := newTracing(t, exp)
	srv := httptest.NewServer(tr.ServerMiddleware(http.NotFoundHandler()))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("BREW", srv.URL+"/pot", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	server := spanOfKind(t, exp.GetSpans(), trace.SpanKindServer)
	if got := attrs(server); got["http.request.method"] != "_OTHER" || got["http.request.method_original"] != "BREW" || server.Name != "BREW" {
		t.Errorf("span %q attributes %v, want _OTHER and the original", server.Name, got)
	}

	exp.Reset()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	client := &http.Client{Transport: tr.ClientTransport(http.DefaultTransport)}
	u := strings.Replace(closed.URL, "http://", "http://user:secret@", 1) + "/products"
	if _, err := client.Get(u); err == nil {
		t.Fatal("a call to a closed server succeeded")
	}
	span := spanOfKind(t, exp.GetSpans(), trace.SpanKindClient)
	got := attrs(span)
	if span.Status.Code != codes.Error || got["error.type"] == "" {
		t.Errorf("failed call: status %v, attributes %v; want an error with its type", span.Status, got)
	}
	if full := got["url.full"]; strings.Contains(full, "secret") || strings.Contains(full, "user") || !strings.Contains(full, "REDACTED:REDACTED@") {
		t.Errorf("url.full %q carries the credentials", full)
	}
}

// TestB3DebugDoesNotForceSampling runs a hop with parentbased_always_off,
// which records only what its caller sampled. B3's debug flag implies
// "sampled" and would make it record (and write the flag on to the next
// hop); it is ignored, while the trace ids it came with are still
// continued. A plain sampled flag is the caller's to set, as the README
// says, and is followed: the control case shows the setup records at all.
func TestB3DebugDoesNotForceSampling(t *testing.T) {
	tests := []struct {
		name      string
		in        http.Header
		wantSpans int
	}{
		{"x-b3-flags: 1", http.Header{"X-B3-Traceid": {inTraceID}, "X-B3-Spanid": {inSpanID}, "X-B3-Flags": {"1"}}, 0},
		{"x-b3-flags: 1 over x-b3-sampled: 0", http.Header{"X-B3-Traceid": {inTraceID}, "X-B3-Spanid": {inSpanID}, "X-B3-Sampled": {"0"}, "X-B3-Flags": {"1"}}, 0},
		{"b3 with d", http.Header{"B3": {inTraceID + "-" + inSpanID + "-d"}}, 0},
		{"b3 with d and a parent", http.Header{"B3": {inTraceID + "-" + inSpanID + "-d-" + inSpanID}}, 0},
		{"control: x-b3-sampled: 1", http.Header{"X-B3-Traceid": {inTraceID}, "X-B3-Spanid": {inSpanID}, "X-B3-Sampled": {"1"}}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tr := startTracing(t, telemetry.TracingConfig{
				ServiceName: "b3-test", Exporter: exp, Flags: telemetry.TracingFlags{Sampler: "parentbased_always_off"},
			})
			out := relay(t, tr, tc.in)
			if got := len(exp.GetSpans()); got != tc.wantSpans {
				t.Errorf("exported %d spans, want %d", got, tc.wantSpans)
			}
			wantHeader(t, out, "X-B3-Traceid", inTraceID)
			wantHeader(t, out, "X-B3-Flags", "")
			if b3 := out.Get("B3"); strings.HasSuffix(b3, "-d") || strings.Contains(b3, "-d-") {
				t.Errorf("b3 = %q passes the debug flag on", b3)
			}
		})
	}
}
