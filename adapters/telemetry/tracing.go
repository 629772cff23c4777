package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// TracingConfig says where finished spans go and what they say about the
// process. The OpenTelemetry SDK reads the standard variables itself: the
// resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), the sampler
// (OTEL_TRACES_SAMPLER[_ARG]) and the exporter (OTEL_EXPORTER_OTLP_*
// endpoints, headers, timeout, certificate, compression). Flags carries
// what was given on the command line instead, which wins and is handed to
// the SDK as options. With no destination at all, tracing is off and costs
// almost nothing, but trace context still flows from inbound to outbound
// requests.
type TracingConfig struct {
	// ServiceName and ServiceVersion are trustchain's own service.name and
	// service.version; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override them.
	ServiceName    string
	ServiceVersion string
	// OTLP turns on export to an OTLP collector over Protocol; the
	// endpoint is the exporter's own reading of the environment unless
	// Flags names one.
	OTLP bool
	// Protocol is http/protobuf (the default) or grpc.
	Protocol string
	Flags    TracingFlags
	// Stdout, when set, receives each finished span as one JSON line.
	Stdout io.Writer
	// Exporter, when set, receives finished spans synchronously (tests).
	Exporter sdktrace.SpanExporter
	// Logger receives export failures, as structured records.
	Logger *slog.Logger
	// OnExportError, when set, counts each batch that failed to export.
	OnExportError func()
}

// TracingFlags are the tracing settings given on the command line, in the
// form of the variables they stand for. An empty group leaves the SDK's
// reading of the environment in place.
type TracingFlags struct {
	// Endpoint is the collector's base URL: with http/protobuf,
	// "/v1/traces" is appended, as the spec says. TracesEndpoint is used as
	// it is, and wins.
	Endpoint, TracesEndpoint string
	// Sampler and SamplerArg are a sampler's name as OTEL_TRACES_SAMPLER
	// spells it and its argument.
	Sampler, SamplerArg string
	// ServiceName and ResourceAttributes (key=value,… with percent-encoded
	// values) are applied over the environment's resource, the name last.
	ServiceName, ResourceAttributes string
}

// Enabled reports whether spans go anywhere.
func (c TracingConfig) Enabled() bool {
	return c.OTLP || c.Stdout != nil || c.Exporter != nil
}

// Tracing holds the tracer provider and propagator a process passes
// explicitly to its instrumentation; nothing here touches otel's globals.
type Tracing struct {
	on         bool
	tp         trace.TracerProvider
	propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// NewPropagator reads and writes W3C traceparent/tracestate and B3 (both the
// x-b3-* headers Envoy and Istio use and the single b3 header). On extract
// W3C wins when both are present. Only what parses strictly is extracted,
// and only the parsed context is injected, so garbage a client sends is not
// passed down the chain. Baggage is left out on purpose: nothing in
// trustchain reads it, and the gateway would otherwise forward whatever
// baggage an outside client sends to every hop behind it.
func NewPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(
		b3OnlyWithContext{withoutB3Debug{b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader | b3.B3SingleHeader))}},
		boundedTraceState{propagation.TraceContext{}},
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

// withoutB3Debug hides B3's debug flag from the B3 propagator, which
// would otherwise read "x-b3-flags: 1" or a "d" in the single b3 header as
// "sampled", overriding every hop's sampler, and write the flag on to
// every hop below. The trace and span ids are still read; a "d" counts as
// no sampling decision, as an absent flag does. So the flag never reaches
// the next hop either: nothing is extracted for Inject to write.
type withoutB3Debug struct{ propagation.TextMapPropagator }

func (p withoutB3Debug) Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	return p.TextMapPropagator.Extract(ctx, b3WithoutDebug{carrier})
}

type b3WithoutDebug struct{ propagation.TextMapCarrier }

func (c b3WithoutDebug) Get(key string) string {
	v := c.TextMapCarrier.Get(key)
	switch strings.ToLower(key) {
	case "x-b3-flags":
		return ""
	case "b3":
		return b3SingleWithoutDebug(v)
	}
	return v
}

// b3SingleWithoutDebug drops the "d" from {trace}-{span}-d[-{parent}], or
// a lone "d", keeping the ids (the parent id is unused, and B3 has no form
// with it but no state). It finds the sampling state where the propagator
// reads it, by position: the propagator does not check the separators
// after the trace id, so "{trace}-{span}0d" is read as debug too.
func b3SingleWithoutDebug(v string) string {
	const spanWidth = 16
	if v == "d" {
		return ""
	}
	var traceWidth int
	switch {
	case len(v) > 16 && v[16] == '-':
		traceWidth = 16
	case len(v) > 32 && v[32] == '-':
		traceWidth = 32
	default:
		return v // no trace id the propagator would read
	}
	ids := traceWidth + 1 + spanWidth
	if state := ids + 1; state < len(v) && v[state] == 'd' {
		return v[:ids]
	}
	return v
}

// maxTraceState is the longest tracestate taken from a caller. W3C asks
// vendors to pass on at least 512 characters; beyond that the header only
// grows every hop's requests.
const maxTraceState = 512

// boundedTraceState drops an oversized tracestate before the W3C propagator
// reads it; the traceparent still counts.
type boundedTraceState struct{ propagation.TextMapPropagator }

func (p boundedTraceState) Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	if len(carrier.Get("tracestate")) > maxTraceState {
		carrier = withoutTraceState{carrier}
	}
	return p.TextMapPropagator.Extract(ctx, carrier)
}

type withoutTraceState struct{ propagation.TextMapCarrier }

func (c withoutTraceState) Get(key string) string {
	if strings.EqualFold(key, "tracestate") {
		return ""
	}
	return c.TextMapCarrier.Get(key)
}

// NewTracing builds the provider cfg asks for. ctx bounds only the setup.
func NewTracing(ctx context.Context, cfg TracingConfig) (*Tracing, error) {
	t := &Tracing{
		tp:         tracenoop.NewTracerProvider(),
		propagator: NewPropagator(),
		shutdown:   func(context.Context) error { return nil },
	}
	if !cfg.Enabled() {
		return t, nil
	}
	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	// Without this option the provider reads OTEL_TRACES_SAMPLER[_ARG]
	// itself; its default is parentbased_always_on, which follows the
	// mesh's sampling decision.
	if cfg.Flags.Sampler != "" {
		sampler, err := namedSampler(cfg.Flags.Sampler, cfg.Flags.SamplerArg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithSampler(sampler))
	}
	if cfg.OTLP {
		exp, err := newOTLPExporter(ctx, cfg.Protocol, cfg.Flags)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(reportingExporter{exp, cfg.Logger, cfg.OnExportError}))
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
	t.on, t.tp, t.shutdown = true, tp, tp.Shutdown
	return t, nil
}

// newResource says which process the spans come from. Precedence, lowest
// first: trustchain's own values, OTEL_RESOURCE_ATTRIBUTES, then
// OTEL_SERVICE_NAME, as the spec orders them. The SDK reads the two
// variables itself; when the command line gave either, Flags holds both
// (the other one taken from the environment by the config) and replaces
// the SDK's reading.
func newResource(ctx context.Context, cfg TracingConfig) (*resource.Resource, error) {
	fromEnv := resource.WithFromEnv()
	if cfg.Flags.ServiceName != "" || cfg.Flags.ResourceAttributes != "" {
		// The variable's syntax is W3C Baggage's (key=value,… with
		// percent-encoded values), so OpenTelemetry's baggage parser reads
		// the flag.
		attrs, err := baggage.Parse(cfg.Flags.ResourceAttributes)
		if err != nil {
			return nil, fmt.Errorf("tracing: resource attributes %q: %w", cfg.Flags.ResourceAttributes, err)
		}
		var kvs []attribute.KeyValue
		for _, m := range attrs.Members() {
			kvs = append(kvs, attribute.String(m.Key(), m.Value()))
		}
		if cfg.Flags.ServiceName != "" {
			kvs = append(kvs, semconv.ServiceName(cfg.Flags.ServiceName))
		}
		fromEnv = resource.WithAttributes(kvs...)
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(
			semconv.ServiceName(cfg.ServiceName),
			semconv.ServiceVersion(cfg.ServiceVersion),
			// Replicas of one role must be told apart; a fresh UUID per
			// process is what the spec suggests when nothing better is
			// known.
			semconv.ServiceInstanceID(uuid.NewString()),
		),
		fromEnv,
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return res, nil
}

// namedSampler is the sampler OTEL_TRACES_SAMPLER names, for a name given
// on the command line; the SDK maps the variable itself but offers no
// function for a name from elsewhere. Config validation has vetted both.
func namedSampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := 1.0
	if arg != "" && strings.HasSuffix(name, "traceidratio") {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("tracing: sampler argument %q is not a ratio between 0 and 1", arg)
		}
		ratio = r
	}
	root, parentBased := strings.CutPrefix(name, "parentbased_")
	var s sdktrace.Sampler
	switch root {
	case "always_on":
		s = sdktrace.AlwaysSample()
	case "always_off":
		s = sdktrace.NeverSample()
	case "traceidratio":
		s = sdktrace.TraceIDRatioBased(ratio)
	default:
		return nil, fmt.Errorf("tracing: sampler %q is not one of always_on, always_off, traceidratio and their parentbased_ forms", name)
	}
	if parentBased {
		s = sdktrace.ParentBased(s)
	}
	return s, nil
}

// Protocols of OTEL_EXPORTER_OTLP_PROTOCOL.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// newOTLPExporter builds the exporter for protocol. Each exporter reads
// OTEL_EXPORTER_OTLP_* itself; an endpoint from the command line is handed
// over as an option, which wins.
func newOTLPExporter(ctx context.Context, protocol string, flags TracingFlags) (sdktrace.SpanExporter, error) {
	endpoint := flags.TracesEndpoint
	switch protocol {
	case "", ProtocolHTTP:
		var opts []otlptracehttp.Option
		if endpoint == "" && flags.Endpoint != "" {
			var err error
			if endpoint, err = url.JoinPath(flags.Endpoint, "v1/traces"); err != nil {
				return nil, fmt.Errorf("tracing: otlp endpoint %q: %w", flags.Endpoint, err)
			}
		}
		if endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("tracing: otlp/http exporter: %w", err)
		}
		return exp, nil
	case ProtocolGRPC:
		var opts []otlptracegrpc.Option
		if endpoint == "" {
			endpoint = flags.Endpoint
		}
		if endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("tracing: otlp/grpc exporter: %w", err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("tracing: otlp protocol %q is not %s or %s", protocol, ProtocolHTTP, ProtocolGRPC)
}

// reportingExporter turns an export failure into one structured log record
// and a count, instead of the plain-text line OpenTelemetry's global error
// handler would print. The error is not returned: the exporter has already
// retried, and the batch is gone either way.
type reportingExporter struct {
	sdktrace.SpanExporter
	log    *slog.Logger
	failed func()
}

func (e reportingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		return nil
	}
	if e.failed != nil {
		e.failed()
	}
	if e.log != nil {
		e.log.LogAttrs(ctx, slog.LevelWarn, "trace export failed",
			slog.Int("spans", len(spans)), slog.String("error", err.Error()))
	}
	return nil
}

// TracerProvider is the provider to pass to any further instrumentation.
func (t *Tracing) TracerProvider() trace.TracerProvider { return t.tp }

// Shutdown flushes buffered spans; call it once, after the servers stop.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if err := t.shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// instrumentation is the scope of the spans this package starts.
const instrumentation = "github.com/trustchain/trustchain/adapters/telemetry"

// ServerMiddleware continues the caller's trace around the whole API. With
// tracing on it is a server span named after the route the mux matched
// ("GET /products/{id}"), or the method alone for a path that matched none.
// With tracing off it only reads the caller's trace context into the
// request's context, so logs and the next hop still join the trace.
//
// The spans are made here with the OpenTelemetry API rather than otelhttp:
// otelhttp (with httpsnoop's writer wrappers, its own metrics and dual
// semantic conventions) is 1.7 MB of each role's mapped image for two spans
// per hop, and the API layer already reports the status through Annotate.
func (t *Tracing) ServerMiddleware(next http.Handler) http.Handler {
	if !t.on {
		// Most requests carry no trace headers at all; looking for the
		// propagator's fields first spares them the extraction, which
		// canonicalises every field name it tries.
		fields := make([]string, 0, len(t.propagator.Fields()))
		for _, f := range t.propagator.Fields() {
			fields = append(fields, http.CanonicalHeaderKey(f))
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if carriesAny(r.Header, fields) {
				ctx := t.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
				if trace.SpanContextFromContext(ctx).IsValid() {
					r = r.WithContext(ctx)
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	tracer := t.tp.Tracer(instrumentation)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := t.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(serverAttributes(r)...))
		defer span.End()
		r = r.WithContext(ctx)
		next.ServeHTTP(w, r)
		// The mux has matched by now, on this very request.
		if p := r.Pattern; p != "" && p != "/" {
			route := p
			if _, path, ok := strings.Cut(p, " "); ok {
				route = path
			} else {
				p = r.Method + " " + p
			}
			span.SetName(p)
			span.SetAttributes(semconv.HTTPRoute(route))
		}
	})
}

// serverAttributes are the HTTP server span's attributes known before the
// handler runs (the stable HTTP semantic conventions).
func serverAttributes(r *http.Request) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 9)
	attrs = append(attrs, methodAttributes(r.Method)...)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs = append(attrs, semconv.URLScheme(scheme), semconv.URLPath(r.URL.Path),
		semconv.NetworkProtocolVersion(fmt.Sprintf("%d.%d", r.ProtoMajor, r.ProtoMinor)))
	attrs = append(attrs, hostPort(r.Host, semconv.ServerAddress, semconv.ServerPort)...)
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		attrs = append(attrs, semconv.ClientAddress(host), semconv.NetworkPeerAddress(host))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(ua))
	}
	return attrs
}

// methodAttributes is http.request.method, with _OTHER and the original
// for a method outside the known set, as the conventions ask: a caller
// must not be able to mint attribute values.
func methodAttributes(method string) []attribute.KeyValue {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(method)}
	}
	return []attribute.KeyValue{semconv.HTTPRequestMethodOther, semconv.HTTPRequestMethodOriginal(method)}
}

// hostPort splits host[:port] into the two attributes made by address and
// port; the port is left out when there is none.
func hostPort(hostport string, address func(string) attribute.KeyValue, port func(int) attribute.KeyValue) []attribute.KeyValue {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return []attribute.KeyValue{address(hostport)}
	}
	if n, err := strconv.Atoi(p); err == nil {
		return []attribute.KeyValue{address(host), port(n)}
	}
	return []attribute.KeyValue{address(host)}
}

// Annotate adds what the API learned about a request to its server span:
// the status, the request id, the refusal reason, and error.type and an
// error status for a 5xx (a 4xx is the caller's error, not the server's).
func (t *Tracing) Annotate(ctx context.Context, status int, reason, requestID string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(status),
		attribute.StringSlice("http.request.header.x-request-id", []string{requestID}))
	if reason != "" {
		span.SetAttributes(attribute.String("trustchain.refusal.reason", reason))
	}
	if status >= 500 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		span.SetStatus(codes.Error, "")
	}
}

// ClientTransport starts a client span per outbound call, named after the
// method as the HTTP conventions ask, and injects its context into the
// request. The span ends when the answer's body is closed. With tracing
// off it returns next unchanged: Inject does the propagation then.
func (t *Tracing) ClientTransport(next http.RoundTripper) http.RoundTripper {
	if !t.on {
		return next
	}
	return &clientTransport{next: next, tracer: t.tp.Tracer(instrumentation), propagator: t.propagator}
}

type clientTransport struct {
	next       http.RoundTripper
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

func (c *clientTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	attrs := methodAttributes(r.Method)
	attrs = append(attrs, semconv.URLFull(redactedURL(r.URL)))
	attrs = append(attrs, hostPort(r.URL.Host, semconv.ServerAddress, semconv.ServerPort)...)
	ctx, span := c.tracer.Start(r.Context(), r.Method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	// A RoundTripper must not change the caller's request: the trace
	// headers go on a copy.
	r = r.Clone(ctx)
	c.propagator.Inject(ctx, propagation.HeaderCarrier(r.Header))
	resp, err := c.next.RoundTrip(r)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "")
		span.SetAttributes(semconv.ErrorTypeKey.String(fmt.Sprintf("%T", err)))
		span.End()
		return nil, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, "")
	}
	resp.Body = &spanBody{ReadCloser: resp.Body, span: span}
	return resp, nil
}

// redactedURL is url.full without credentials, user name included, the
// way the conventions ask: REDACTED:REDACTED@host.
func redactedURL(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = url.UserPassword("REDACTED", "REDACTED")
	return c.String()
}

// spanBody ends the client span once the caller is done with the answer.
type spanBody struct {
	io.ReadCloser
	span trace.Span
	once sync.Once
}

func (b *spanBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { b.span.End() })
	return err
}

// Inject writes the trace context of ctx into an outbound request's
// headers when tracing is off (with tracing on, the client span does it),
// so the next hop and Envoy still see the caller's trace. It returns nil
// when there is nothing for it to do.
func (t *Tracing) Inject() func(ctx context.Context, h http.Header) {
	if t.on {
		return nil
	}
	return func(ctx context.Context, h http.Header) {
		// Both propagators write nothing without a span context.
		if trace.SpanContextFromContext(ctx).IsValid() {
			t.propagator.Inject(ctx, propagation.HeaderCarrier(h))
		}
	}
}

// carriesAny reports whether h has any of the canonical keys.
func carriesAny(h http.Header, keys []string) bool {
	for _, k := range keys {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

// DBInfo names the database SQL spans talk to.
type DBInfo struct {
	Name    string // the schema, db.namespace
	Address string // server.address
	Port    int    // server.port
}

// QueryHook makes a client span per SQL query, child of the request's span,
// with the current database conventions: db.system.name, db.namespace,
// db.operation.name, db.query.text as MySQL received it, server.address and
// server.port. It returns nil with tracing off.
func (t *Tracing) QueryHook(db DBInfo) bun.QueryHook {
	if !t.on {
		return nil
	}
	return queryHook{
		tracer: t.tp.Tracer("github.com/trustchain/trustchain/adapters/telemetry"),
		attrs: []attribute.KeyValue{
			semconv.DBSystemNameMySQL,
			semconv.DBNamespace(db.Name),
			semconv.ServerAddress(db.Address),
			semconv.ServerPort(db.Port),
		},
	}
}

type queryHook struct {
	tracer trace.Tracer
	attrs  []attribute.KeyValue
}

func (h queryHook) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	op := e.Operation()
	name := op
	if table := queryTable(e); table != "" {
		name += " " + table
	}
	ctx, _ = h.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(h.attrs...),
		trace.WithAttributes(semconv.DBOperationName(op)))
	return ctx
}

func (h queryHook) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	span := trace.SpanFromContext(ctx)
	defer span.End()
	// The formatted query is the text the driver sent: bun interpolates
	// arguments itself, so MySQL gets no placeholders.
	span.SetAttributes(semconv.DBQueryText(e.Query))
	if table := queryTable(e); table != "" {
		span.SetAttributes(semconv.DBCollectionName(table))
	}
	if e.Err != nil && !errors.Is(e.Err, context.Canceled) {
		span.RecordError(e.Err)
		span.SetStatus(codes.Error, "")
		span.SetAttributes(semconv.ErrorTypeKey.String(fmt.Sprintf("%T", e.Err)))
	}
}

// queryTable is the table a model query reads, for span names.
func queryTable(e *bun.QueryEvent) string {
	if tm, ok := e.Model.(bun.TableModel); ok && tm.Table() != nil {
		return tm.Table().Name
	}
	return ""
}
