package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/extra/bunotel"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// TracingConfig says where finished spans go. With no destination at all,
// tracing is off and costs (almost) nothing, but trace context still flows
// from inbound to outbound requests.
type TracingConfig struct {
	// ServiceName becomes service.name on every span; required when any
	// destination is set.
	ServiceName string
	// OTLPEndpoint is the OTLP/HTTP base URL (the value of
	// OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://collector:4318); "/v1/traces"
	// is appended as the OpenTelemetry spec says. Empty means no export.
	OTLPEndpoint string
	// Stdout, when set, receives each finished span as one JSON line.
	Stdout io.Writer
	// Exporter, when set, receives finished spans synchronously (tests).
	Exporter sdktrace.SpanExporter
}

// Tracing holds the tracer provider and propagator a process passes
// explicitly to its instrumentation; nothing here touches otel's globals.
type Tracing struct {
	tp         trace.TracerProvider
	propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// NewPropagator reads and writes W3C traceparent/tracestate and B3 (both the
// x-b3-* headers Envoy and Istio use and the single b3 header). On extract
// W3C wins when both are present. Baggage is left out on purpose: nothing in
// trustchain reads it, and the gateway would otherwise forward whatever
// baggage an outside client sends to every hop behind it.
func NewPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(
		b3OnlyWithContext{b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader | b3.B3SingleHeader))},
		propagation.TraceContext{},
	)
}

// b3OnlyWithContext stops the B3 propagator from injecting "b3: 0" and
// "x-b3-sampled: 0" when there is no trace at all: Envoy reads those as the
// caller deciding not to sample, which would switch off the mesh's tracing
// for every request that reached us without trace headers.
type b3OnlyWithContext struct{ propagation.TextMapPropagator }

func (p b3OnlyWithContext) Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		p.TextMapPropagator.Inject(ctx, carrier)
	}
}

// NewTracing builds the provider cfg asks for. ctx bounds only the setup.
func NewTracing(ctx context.Context, cfg TracingConfig) (*Tracing, error) {
	t := &Tracing{
		tp:         tracenoop.NewTracerProvider(),
		propagator: NewPropagator(),
		shutdown:   func(context.Context) error { return nil },
	}
	if cfg.OTLPEndpoint == "" && cfg.Stdout == nil && cfg.Exporter == nil {
		return t, nil
	}
	if cfg.ServiceName == "" {
		return nil, errors.New("tracing: service name is required when spans are exported")
	}

	// An explicit resource keeps the SDK from reading OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES behind the config's back.
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(cfg.ServiceName))),
		// Follow the caller's (usually Envoy's) sampling decision so our
		// spans land in the same traces the mesh keeps.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	}
	if cfg.OTLPEndpoint != "" {
		endpoint, err := otlpTracesURL(cfg.OTLPEndpoint)
		if err != nil {
			return nil, err
		}
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
		if err != nil {
			return nil, fmt.Errorf("tracing: otlp exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	if cfg.Stdout != nil {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(cfg.Stdout))
		if err != nil {
			return nil, fmt.Errorf("tracing: stdout exporter: %w", err)
		}
		// Synchronous so the demo prints each span as it ends.
		opts = append(opts, sdktrace.WithSyncer(exp))
	}
	if cfg.Exporter != nil {
		opts = append(opts, sdktrace.WithSyncer(cfg.Exporter))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	t.tp, t.shutdown = tp, tp.Shutdown
	return t, nil
}

// otlpTracesURL turns the generic OTLP base URL into the traces endpoint.
// The exporter silently falls back to localhost on a bad URL, so parse here
// and fail loudly instead.
func otlpTracesURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("tracing: otlp endpoint %q: want http(s)://host:port", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	return u.String(), nil
}

// TracerProvider is the provider to pass to any further instrumentation.
func (t *Tracing) TracerProvider() trace.TracerProvider { return t.tp }

// Propagator is the propagator to pass to any further instrumentation.
func (t *Tracing) Propagator() propagation.TextMapPropagator { return t.propagator }

// Shutdown flushes buffered spans; call it once, after the servers stop.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if err := t.shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// otelhttp records its own metrics through a meter provider; ours live in
// Prometheus, so give it a no-op one rather than letting it find the global.
func (t *Tracing) httpOptions() []otelhttp.Option {
	return []otelhttp.Option{
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithPropagators(t.propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
	}
}

// ServerMiddleware continues the caller's trace (or starts one) around a
// route's handler and puts the span in the request context, so the logs and
// outbound calls below it join the trace. route names the span the way
// Metrics.Middleware labels its series: "GET /products".
func (t *Tracing) ServerMiddleware(route string, next http.Handler) http.Handler {
	name := func(_ string, r *http.Request) string {
		if route == RouteOther {
			return r.Method
		}
		return r.Method + " " + route
	}
	return otelhttp.NewHandler(next, route, append(t.httpOptions(), otelhttp.WithSpanNameFormatter(name))...)
}

// ClientTransport starts a client span per outbound call and injects its
// context into the request headers. With tracing off, it re-injects the
// inbound context unchanged, so the next hop and Envoy still see the
// caller's trace.
func (t *Tracing) ClientTransport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return otelhttp.NewTransport(next, t.httpOptions()...)
}

// QueryHook makes a client span per SQL query, child of the request's span.
// Statements are recorded with placeholders, never with arguments.
//
//	db = db.WithQueryHook(tracing.QueryHook())
func (t *Tracing) QueryHook() bun.QueryHook {
	return bunTraceHook{bunotel.NewQueryHook(
		bunotel.WithTracerProvider(t.tp),
		bunotel.WithMeterProvider(metricnoop.NewMeterProvider()),
	)}
}

// bunTraceHook hides bunotel's Init method, which bun would call and which
// registers pool metrics on the global OpenTelemetry meter provider. Pool
// stats are already exported through Metrics.RegisterDB.
type bunTraceHook struct{ h *bunotel.QueryHook }

func (b bunTraceHook) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	return b.h.BeforeQuery(ctx, e)
}

func (b bunTraceHook) AfterQuery(ctx context.Context, e *bun.QueryEvent) { b.h.AfterQuery(ctx, e) }
