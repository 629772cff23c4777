// Package telemetry is how a trustchain process reports on itself: Prometheus
// metrics on a private registry, OpenTelemetry traces that join the mesh's
// (W3C and B3), and slog records that carry the trace and request IDs. Every
// piece wraps the core as HTTP middleware, a RoundTripper or a bun hook, so
// the core never imports it.
package telemetry
