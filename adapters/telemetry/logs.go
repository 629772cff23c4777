package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Log formats NewLogger accepts.
const (
	LogJSON = "json"
	LogText = "text"
)

// NewLogger returns a logger whose records all carry role and the trace and
// span IDs of the context's span. Context-derived fields only appear with
// the *Context logging methods (InfoContext and friends).
func NewLogger(w io.Writer, format string, level slog.Level, role string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	var base slog.Handler
	switch format {
	case LogJSON:
		base = slog.NewJSONHandler(w, opts)
	case LogText:
		base = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: want %q or %q", format, LogJSON, LogText)
	}
	return slog.New(NewLogHandler(base)).With(slog.String("role", role)), nil
}

// ParseLevel reads debug, info, warn or error (any case, with slog's
// optional offset such as "info+2").
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// logHandler decorates another handler with the context's trace.
type logHandler struct{ next slog.Handler }

// NewLogHandler wraps next so every record logged with a context gains
// trace_id and span_id when the context holds a valid span context, which
// is also true with tracing off if the caller sent traceparent or B3
// headers. Inside a WithGroup the added attributes land in that group, as
// any attribute would.
func NewLogHandler(next slog.Handler) slog.Handler { return logHandler{next: next} }

func (h logHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return h.next.Handle(ctx, r)
	}
	// The record may be shared with other handlers; adding to a copy that
	// shares its attribute array is not allowed.
	r = r.Clone()
	r.AddAttrs(
		slog.String("trace_id", sc.TraceID().String()),
		slog.String("span_id", sc.SpanID().String()),
	)
	return h.next.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{next: h.next.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{next: h.next.WithGroup(name)}
}
